"""nemo-run with NeMo's real recipes (the nemo-run nox session): the Llama 3 recipe objects build on CPU,
and the Slurm dry run renders the sbatch we expect from the cluster file. (nemo-run's LocalExecutor running
our tiny task on 2 torchrun ranks: test_walkthrough.py, through `make local`.)"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FOLDER = Path(__file__).resolve().parents[1]
REPO_ROOT = FOLDER.parents[2]
# NeMo, megatron-core and lightning warn at import about GPU packages a CPU venv lacks (not our code).
pytestmark = [pytest.mark.framework, pytest.mark.filterwarnings("ignore")]
NEMO_RUN_TEMPLATE_FINDINGS = {2207, 2206, 2128}  # nemo-run's own slurm.sh.j2 (node list splitting)


@pytest.fixture(scope="module", autouse=True)
def nemo_run_home(artifacts_root):
    """nemo-run reads its home when first imported (in these tests): experiments go to the artifacts."""
    home = artifacts_root / "nemo-run-home"
    os.environ["NEMORUN_HOME"] = str(home)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return home


@pytest.fixture
def launch_module(monkeypatch):
    import launch  # noqa: PLC0415 - src/launch.py, on sys.path through conftest

    # nemo-run runs shell commands through invoke, which reads stdin: give it an empty one.
    with open(os.devnull) as devnull:
        monkeypatch.setattr(sys, "stdin", devnull)
        yield launch


@pytest.fixture
def cluster_file(tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_text(
        "partition: p5\naccount: ml-team\ncontainer_image: registry.example/nemo:25.11\n"
        f"container_mounts: ['/fsx:/fsx', '/opt/data:/data:ro']\njob_dir: {tmp_path / 'jobs'}\n"
        "gpus_per_node: 8\ntime: '02:00:00'\nexclusive: true\njob_name_prefix: aws-\n"
    )
    return path


@pytest.mark.parametrize(
    ("preset", "model", "function"),
    [
        ("llama3_8b_pretrain", "Llama3Config8B", "pretrain"),
        ("llama3_70b_pretrain", "Llama3Config70B", "pretrain"),
        ("llama3_8b_finetune", "Llama3Config8B", "finetune"),
        ("llama3_70b_finetune", "Llama3Config70B", "finetune"),
    ],
)
def test_real_nemo_recipes_build_on_cpu(preset, model, function):
    from nemo_llama.presets import build_task, get_preset  # noqa: PLC0415

    recipe = build_task(get_preset(preset), preset, "/fsx/logs", nodes=4, gpus_per_node=8, max_steps=50)
    assert recipe.__fn_or_cls__.__name__ == function
    assert type(recipe.model.config).__name__ == model or recipe.model.config.__fn_or_cls__.__name__ == model
    assert recipe.trainer.num_nodes == 4 and recipe.trainer.devices == 8 and recipe.trainer.max_steps == 50
    if function == "finetune":
        assert recipe.peft.__fn_or_cls__.__name__ == "LoRA"


def sbatch_lines(script: str) -> dict[str, str]:
    return dict(re.findall(r"^#SBATCH --([\w-]+)(?:=(.*))?$", script, re.MULTILINE))


def shellcheck_codes(path: Path) -> set[int]:
    shellcheck = shutil.which("shellcheck") or str(REPO_ROOT / ".venv" / "bin" / "shellcheck")
    result = subprocess.run(
        [shellcheck, "-S", "warning", "-f", "json", str(path)], capture_output=True, text=True, check=False
    )
    return {finding["code"] for finding in json.loads(result.stdout or "[]")}


def test_slurm_dryrun_renders_the_cluster_file(launch_module, cluster_file, tmp_path, capsys):
    out = tmp_path / "llama3_8b.sbatch"
    argv = [
        "--preset",
        "llama3_8b_pretrain",
        "--cluster",
        str(cluster_file),
        "--dryrun",
        "--sbatch-out",
        str(out),
    ]
    assert launch_module.main(argv) == 0
    script = out.read_text()
    assert script.strip() in capsys.readouterr().out
    flags = sbatch_lines(script)
    assert flags["nodes"] == "2" and flags["ntasks-per-node"] == "1" and flags["gpus-per-node"] == "8"
    assert flags["partition"] == "p5" and flags["account"] == "ml-team" and flags["time"] == "02:00:00"
    assert flags["job-name"] == "aws-llama3_8b_pretrain" and "exclusive" in flags
    srun = next(line for line in script.splitlines() if line.startswith("srun "))
    words = shlex.split(srun.replace("$", "\\$"))
    assert words[words.index("--container-image") + 1] == "registry.example/nemo:25.11"
    mounts = words[words.index("--container-mounts") + 1].split(",")
    assert mounts[:2] == ["/fsx:/fsx", "/opt/data:/data:ro"] and mounts[2].endswith(":/nemo_run")
    torchrun = words[words.index("torchrun") :]
    assert " ".join(torchrun[torchrun.index("--nnodes") :][:4]) == "--nnodes 2 --nproc-per-node 8"
    assert "-m" in torchrun and "nemo_run.core.runners.fdl_runner" in torchrun
    # The EFA/NCCL environment is sourced in the batch script, before srun passes it into the container.
    source = f"source {FOLDER / 'slurm' / 'efa-env.sh'}"
    assert script.index(source) < script.index(srun)
    assert "PYTHONPATH" not in script  # NeMo's recipe needs nothing from this folder in the container
    assert shellcheck_codes(out) <= NEMO_RUN_TEMPLATE_FINDINGS
    # The real recipe went in: nemo-run's serialized task names NeMo's model config and our node count.
    configs = list(
        Path(os.environ["NEMORUN_HOME"]).glob("experiments/llama3_8b_pretrain/*/*/configs/*_config.yaml")
    )
    text = max(configs, key=lambda p: p.stat().st_mtime).read_text()
    assert "Llama3Config8B" in text and "num_nodes: 2" in text


def test_slurm_dryrun_follows_node_and_step_overrides(launch_module, cluster_file, tmp_path):
    out = tmp_path / "llama3_70b.sbatch"
    argv = [
        "--preset",
        "llama3_70b_pretrain",
        "--cluster",
        str(cluster_file),
        "--nodes",
        "16",
        "--max-steps",
        "10",
    ]
    assert launch_module.main([*argv, "--dryrun", "--sbatch-out", str(out)]) == 0
    script = out.read_text()
    assert sbatch_lines(script)["nodes"] == "16" and "--nnodes 16 --nproc-per-node 8" in script
    configs = list(
        Path(os.environ["NEMORUN_HOME"]).glob("experiments/llama3_70b_pretrain/*/*/configs/*_config.yaml")
    )
    text = max(configs, key=lambda p: p.stat().st_mtime).read_text()
    assert "Llama3Config70B" in text and "num_nodes: 16" in text and "max_steps: 10" in text
