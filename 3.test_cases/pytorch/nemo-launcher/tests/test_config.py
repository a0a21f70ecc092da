"""The overrides compose with hydra-core against the launcher's config tree (keys and defaults of launcher
24.12, vendored in launcher_scripts_24.12/conf; the nemo-launcher session), and bad ones fail in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FOLDER = Path(__file__).resolve().parents[1]
CONF = FOLDER / "tests" / "launcher_scripts_24.12" / "conf"
TOOL = FOLDER / "src" / "launcher_overrides.py"


def tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, check=False)


def compose(preset: str, *extra: str):
    sys.path.insert(0, str(FOLDER / "src"))
    import launcher_overrides  # noqa: PLC0415 - the tool, imported to inspect the composed config

    return launcher_overrides.compose(
        CONF, launcher_overrides.build(preset, ["FI_PROVIDER=efa"], list(extra))
    )


@pytest.mark.framework
@pytest.mark.parametrize(
    ("preset", "run_name", "nodes", "tp", "pp"),
    [
        ("gpt3_5b", "gpt3_5b", 4, 1, 1),
        ("gpt3_20b", "gpt3_20b", 8, 2, 1),
        ("gpt3_40b", "gpt3_40b", 16, 2, 4),
        ("llama3_8b", "llama3_8b", 2, 1, 1),
        ("llama3_70b", "llama3_70b", 8, 4, 4),
    ],
)
def test_every_preset_composes_with_the_launcher_configs(preset, run_name, nodes, tp, pp):
    cfg = compose(preset)
    assert cfg.training.run.name == run_name and cfg.training.trainer.num_nodes == nodes
    assert (
        cfg.training.model.tensor_model_parallel_size,
        cfg.training.model.pipeline_model_parallel_size,
    ) == (tp, pp)
    assert cfg.cluster.gpus_per_node == 8 and cfg.cluster.partition is None and cfg.cluster_type == "bcm"
    assert cfg.container == "nvcr.io/nvidia/nemo:24.09" and list(cfg.stages) == ["training"]
    assert cfg.env_vars.FI_PROVIDER == "efa" and cfg.env_vars.TRANSFORMERS_OFFLINE == 1
    assert cfg.training.run.results_dir == f"/fsx/nemo-launcher/results/{run_name}"  # interpolated paths
    if preset.startswith("llama"):
        assert cfg.training.model.tokenizer.type.startswith("/fsx/models/Meta-Llama-3-")


@pytest.mark.framework
def test_later_overrides_win_and_commas_stay_one_value():
    cfg = compose("gpt3_5b", "training.trainer.num_nodes=32", "cluster.partition=p5en")
    assert cfg.training.trainer.num_nodes == 32 and cfg.cluster.partition == "p5en"
    result = tool("--preset", "gpt3_5b", "--conf", str(CONF), "--env", "NCCL_SOCKET_IFNAME=^docker,lo,veth")
    assert result.returncode == 0, result.stderr
    assert '++env_vars.NCCL_SOCKET_IFNAME="^docker,lo,veth"' in result.stdout.splitlines()


@pytest.mark.framework
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.trainer.num_node=2", "error: Could not override 'training.trainer.num_node'."),
        ("training=gpt3/6b", "error: In 'config': Could not find 'training/gpt3/6b'"),
        ("cluster.partion=p5", "error: Could not override 'cluster.partion'."),
        ("launcher_scripts_path=???", "error: launcher_scripts_path not set"),
    ],
)
def test_misspelled_or_missing_keys_fail_in_one_line(override, message):
    result = tool("--preset", "gpt3_5b", "--conf", str(CONF), "--", override)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(message) and len(result.stderr.splitlines()) == 1, result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--preset", "gpt3_6b"],
            "error: unknown preset 'gpt3_6b'; choose one of gpt3_20b, gpt3_40b, gpt3_5b",
        ),
        (
            ["--preset", "gpt3_5b", "--env", "fi_provider=efa"],
            "error: --env 'fi_provider=efa': expected NAME=VALUE",
        ),
        (["--preset", "gpt3_5b", "--", "num_nodes"], "error: 'num_nodes' is not a Hydra override"),
        (["--preset", "gpt3_5b", "--conf", "/nonexistent"], "error: --conf /nonexistent: no config.yaml"),
    ],
)
def test_bad_input_without_hydra(args, message):
    result = tool(*args)
    assert result.returncode == 2 and result.stderr.startswith(message), result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_override_files_parse(tmp_path):
    sys.path.insert(0, str(FOLDER / "src"))
    import launcher_overrides  # noqa: PLC0415

    overrides = launcher_overrides.build("llama3_70b", ["FI_PROVIDER=efa"], ["training.trainer.max_steps=10"])
    assert overrides[0] == "cluster_type=bcm" and "training=llama/llama3_70b" in overrides
    assert overrides[-2:] == ['++env_vars.FI_PROVIDER="efa"', "training.trainer.max_steps=10"]
    bad = tmp_path / "bad.overrides"
    bad.write_text("# fine\ntraining gpt3/5b\n")
    with pytest.raises(
        launcher_overrides.OverrideError, match=r"bad.overrides:2: 'training gpt3/5b' is not KEY"
    ):
        launcher_overrides.read_overrides(bad)
