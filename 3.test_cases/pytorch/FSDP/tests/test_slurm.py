"""Generated sbatch scripts (and manifests): no drift from their templates, lint clean, DRY_RUN, the EFA
environment per instance type. The generated tiny script trains on the local 2-node Slurm in
test_walkthrough.py, through the README's own commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.system import require_programs

FOLDER = Path(__file__).resolve().parents[1]
PRESET_NAMES = sorted(p.stem for p in (FOLDER / "kubernetes").glob("*.yaml"))
VENV = Path(sys.executable).parent.parent


def bash(script: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    return subprocess.run(
        ["bash", script, *args], cwd=FOLDER, env={**clean, **env}, capture_output=True, text=True, check=False
    )


def test_every_preset_has_its_generated_files():
    # That they equal what the generator writes: tests/test_sync.py, with every other generated file.
    assert len(PRESET_NAMES) == 11 and len(list((FOLDER / "slurm").glob("*.sbatch"))) == 11


def test_drift_is_reported(tmp_path, monkeypatch):
    sys.path.insert(0, str(FOLDER / "src"))
    import generate  # noqa: PLC0415 - the generator script, imported to point it at a copy

    monkeypatch.setattr(generate, "FOLDER", tmp_path)
    (tmp_path / "src" / "training").mkdir(parents=True)
    for relative in (
        "src/fsdp/presets.py",
        "templates/sbatch.template",
        "templates/pytorchjob.yaml.template",
    ):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text((FOLDER / relative).read_text())
    (tmp_path / "slurm").mkdir()
    (tmp_path / "kubernetes").mkdir()
    assert generate.main([]) == 0 and generate.main(["--check"]) == 0
    (tmp_path / "slurm" / "tiny.sbatch").write_text("edited by hand\n")
    assert generate.main(["--check"]) == 1


def test_sbatch_scripts_pass_shellcheck_and_dry_run():
    shellcheck = require_programs("shellcheck", "shellcheck", how="install the dev group (`make setup`)")
    scripts = sorted(str(p.relative_to(FOLDER)) for p in (FOLDER / "slurm").glob("*"))
    result = subprocess.run(
        [shellcheck["shellcheck"], *scripts], cwd=FOLDER, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout
    dry = bash(
        "slurm/llama3_1_70b.sbatch",
        DRY_RUN="1",
        VENV="/opt/venv",
        INSTANCE_TYPE="p5.48xlarge",
        EFA_SYSFS="/nonexistent",
    )
    assert dry.returncode == 0, dry.stderr
    assert "--nnodes=16 --nproc-per-node=8" in dry.stdout and "--preset llama3_1_70b" in dry.stdout
    container = bash("slurm/tiny.sbatch", DRY_RUN="1", IMAGE="/fsx/fsdp.sqsh", INSTANCE_TYPE="cpu")
    assert "--container-image=/fsx/fsdp.sqsh --container-mounts=/fsx:/fsx" in container.stdout
    assert "/workspace/fsdp/src/train.py --preset tiny --run-dir /fsx/fsdp/runs/tiny-0" in container.stdout


@pytest.mark.parametrize(
    ("instance", "devices", "expected"),
    [
        ("p5.48xlarge", True, {"FI_PROVIDER": "efa", "FI_EFA_USE_DEVICE_RDMA": "1"}),
        ("g5.48xlarge", True, {"FI_PROVIDER": "efa", "FI_EFA_USE_DEVICE_RDMA": ""}),  # no GPUDirect RDMA
        ("c5.xlarge", False, {"FI_PROVIDER": "", "FI_EFA_USE_DEVICE_RDMA": ""}),  # no EFA: nothing set
    ],
)
def test_efa_env_sets_only_what_the_instance_needs(tmp_path, instance, devices, expected):
    sysfs = tmp_path / "infiniband"
    sysfs.mkdir()
    if devices:
        (sysfs / "rdmap16s27").mkdir()
    probe = (
        'source slurm/efa-env.sh; echo "FI_PROVIDER=${FI_PROVIDER:-}"; '
        'echo "FI_EFA_USE_DEVICE_RDMA=${FI_EFA_USE_DEVICE_RDMA:-}"'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FI_", "NCCL_"))}
    result = subprocess.run(
        ["bash", "-c", probe],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        check=True,
        env={**env, "EFA_SYSFS": str(sysfs), "INSTANCE_TYPE": instance},
    )
    got = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert got == expected


def test_a_template_name_without_a_value_fails_the_generator(tmp_path, monkeypatch):
    sys.path.insert(0, str(FOLDER / "src"))
    import generate  # noqa: PLC0415 - the generator script, imported to point it at a copy
    import jinja2  # noqa: PLC0415

    monkeypatch.setattr(generate, "FOLDER", tmp_path)
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "sbatch.template").write_text("#SBATCH --nodes={{ nodes }} {{ nodse }}\n")
    with pytest.raises(jinja2.UndefinedError, match="'nodse' is undefined"):
        generate.render("sbatch.template", nodes=2)
