"""slurm/launch.sh: the command it gives the launcher's main.py (DRY_RUN), the EFA/NCCL variables it takes
from slurm/efa-env.sh per instance type, and (nemo-launcher session) its check against the launcher's
config tree before anything is submitted."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.system import require_programs

FOLDER = Path(__file__).resolve().parents[1]
VENDORED = FOLDER / "tests" / "launcher_scripts_24.12"


def launch(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "FI_", "NCCL_"))}
    return subprocess.run(
        ["bash", "slurm/launch.sh", *args],
        cwd=FOLDER,
        env={**clean, "DRY_RUN": "1", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_launch_script_passes_shellcheck():
    shellcheck = require_programs("shellcheck", "shellcheck", how="install the dev group (`make setup`)")
    result = subprocess.run(
        [shellcheck["shellcheck"], "slurm/launch.sh"], cwd=FOLDER, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_dry_run_prints_main_py_with_the_overrides():
    result = launch(
        "training.trainer.max_steps=100",
        PRESET="gpt3_40b",
        INSTANCE_TYPE="p5.48xlarge",
        LAUNCHER_DIR="/nonexistent/launcher_scripts",
    )
    assert result.returncode == 0, result.stderr
    words = shlex.split(result.stdout)
    assert words[:2] == ["python3", "/nonexistent/launcher_scripts/main.py"]
    assert words.index("training=gpt3/40b") < words.index("training.trainer.num_nodes=16")
    assert words[-1] == "training.trainer.max_steps=100"  # the user's overrides come last and win
    assert "container=nvcr.io/nvidia/nemo:24.09" in words and "stages=[training]" in words
    env = {w.split("=", 1)[0]: w.split("=", 1)[1] for w in words if w.startswith("++env_vars.")}
    assert env["++env_vars.FI_PROVIDER"] == '"efa"' and env["++env_vars.FI_EFA_USE_DEVICE_RDMA"] == '"1"'
    assert env["++env_vars.NCCL_SOCKET_IFNAME"] == '"^docker,lo,veth"'


def test_efa_variables_follow_the_instance_type():
    g5 = shlex.split(launch(INSTANCE_TYPE="g5.48xlarge").stdout)
    assert '++env_vars.FI_PROVIDER="efa"' in g5 and not any("FI_EFA_USE_DEVICE_RDMA" in w for w in g5)
    none = shlex.split(launch(EFA="0").stdout)
    assert not any(w.startswith("++env_vars.") for w in none)


def test_no_launcher_is_an_error_outside_dry_run():
    result = launch(DRY_RUN="0", LAUNCHER_DIR="/nonexistent")
    assert result.returncode == 2 and result.stderr.startswith("error: no launcher at /nonexistent/main.py")


@pytest.mark.framework
def test_launch_checks_against_the_launcher_configs_before_running():
    ok = launch(PRESET="llama3_70b", LAUNCHER_DIR=str(VENDORED), PYTHON=sys.executable)
    assert ok.returncode == 0, ok.stderr
    assert "checked against" in ok.stderr and "training llama3_70b on 8 nodes x 8 GPUs" in ok.stderr
    bad = launch("training.trainer.num_node=2", LAUNCHER_DIR=str(VENDORED), PYTHON=sys.executable)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip() == (
        "error: Could not override 'training.trainer.num_node'. "
        "To append to your config use +training.trainer.num_node=2"
    )
