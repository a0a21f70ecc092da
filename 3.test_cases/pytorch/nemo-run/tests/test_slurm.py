"""Slurm: our sbatch (DRY_RUN, shellcheck, container and venv variants, EFA env) in the project venv; and,
in the nemo-run session, the sbatch running tiny in-process on the local 2-node Slurm cluster. (nemo-run's
own SlurmExecutor submitting the CPU variant: README section 2 as written, tests/test_walkthrough.py.)"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.slurm import REQUIRED_PROGRAMS
from testbed.system import require_programs

FOLDER = Path(__file__).resolve().parents[1]


def bash(script: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "FI_", "NCCL_"))}
    return subprocess.run(
        ["bash", script],
        cwd=FOLDER,
        env={**clean, "EFA_SYSFS": "/nonexistent", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_sbatch_passes_shellcheck():
    shellcheck = require_programs("shellcheck", "shellcheck", how="install the dev group (`make setup`)")
    scripts = [str(p.relative_to(FOLDER)) for p in sorted((FOLDER / "slurm").iterdir())]
    result = subprocess.run(
        [shellcheck["shellcheck"], *scripts], cwd=FOLDER, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_dry_run_container_and_venv_commands():
    container = bash(
        "slurm/nemo-run.sbatch",
        DRY_RUN="1",
        INSTANCE_TYPE="p5.48xlarge",
        NPROC_PER_NODE="8",
        IMAGE="/fsx/nemo.sqsh",
        PRESET="llama3_8b_pretrain",
    )
    assert container.returncode == 0, container.stderr
    line = container.stdout.strip()
    assert line.startswith(
        "srun --nodes=2 --ntasks-per-node=1 --kill-on-bad-exit=1 --container-image=/fsx/nemo.sqsh"
    )
    assert "--container-mounts=/fsx:/fsx" in line and " torchrun --nnodes=2 --nproc-per-node=8" in line
    assert "/workspace/nemo-run/src/launch.py --preset llama3_8b_pretrain --direct --nodes 2" in line
    assert "--log-dir /fsx/nemo-run/runs/llama3_8b_pretrain-0" in line
    venv = bash("slurm/nemo-run.sbatch", DRY_RUN="1", INSTANCE_TYPE="cpu", VENV="/opt/venv")
    assert "/opt/venv/bin/torchrun --nnodes=2 --nproc-per-node=1" in venv.stdout
    assert "--preset tiny --direct" in venv.stdout


def test_outside_a_job_without_dry_run_is_an_error():
    result = bash("slurm/nemo-run.sbatch")
    assert result.returncode == 2 and result.stderr.startswith("error: not inside a Slurm job")


@pytest.mark.parametrize(("instance", "rdma"), [("p5.48xlarge", "1"), ("g5.48xlarge", "")])
def test_efa_env_for_the_instance(tmp_path, instance, rdma):
    (tmp_path / "rdmap0").mkdir()
    probe = 'source slurm/efa-env.sh; echo "${FI_PROVIDER:-}|${FI_EFA_USE_DEVICE_RDMA:-}"'
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FI_", "NCCL_"))}
    result = subprocess.run(
        ["bash", "-c", probe],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        check=True,
        env={**clean, "EFA_SYSFS": str(tmp_path), "INSTANCE_TYPE": instance},
    )
    assert result.stdout.strip() == f"efa|{rdma}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.framework
# Pipes nemo-run's in-process runs (test_launch.py) leave to the garbage collector may be reported here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.slurm
@pytest.mark.slow
def test_sbatch_runs_tiny_in_process_on_two_nodes(local_slurm, tmp_path):
    """slurm/nemo-run.sbatch without nemo-run's executor: one torchrun per node, --direct in each rank."""
    require_programs("local Slurm", *REQUIRED_PROGRAMS)
    venv = Path(sys.executable).parent.parent
    job = local_slurm.submit(
        FOLDER / "slurm" / "nemo-run.sbatch",
        args=["--max-steps", "5"],
        cwd=FOLDER,
        sbatch_args=[f"--output={tmp_path}/%x_%j.out", "--no-requeue"],
        env={
            "PRESET": "tiny",
            "VENV": str(venv),
            "RUN_DIR": str(tmp_path / "run"),
            "RDZV_PORT": str(free_port()),
            "OMP_NUM_THREADS": "1",
            "INSTANCE_TYPE": "cpu",
        },
    )
    assert job.wait(timeout=240) == "COMPLETED", job.output()[-3000:]
    ranks = [json.loads(p.read_text()) for p in sorted((tmp_path / "run").glob("rank*.json"))]
    assert sorted(r["slurm_node"] for r in ranks) == ["n1", "n2"] and {r["world_size"] for r in ranks} == {2}
