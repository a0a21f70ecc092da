"""slurm/torchtitan.sbatch: lint, DRY_RUN, bad input, and a real run on the local 2-node Slurm cluster.

The project venv (where these run) has no torchtitan, so the Slurm run launches tests/titan_standin.py
through the sbatch's ENTRY_POINT: the same srun -> one torchrun per node -> ``-m ENTRY_POINT --module
aws_llama3 --config PRESET --dump_folder RUN_DIR`` path, checked from inside the ranks. torchtitan's own
train loop is checked by test_training.py (CPU smoke, torchtitan nox session)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from titan_paths import FOLDER

from testbed.system import require_programs

SBATCH = "slurm/torchtitan.sbatch"
VENV = Path(sys.executable).parent.parent


def dry_run(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "FI_", "NCCL_"))}
    env = {**clean, "DRY_RUN": "1", "INSTANCE_TYPE": "cpu", "EFA_SYSFS": "/nonexistent", **env}
    return subprocess.run(
        ["bash", SBATCH, *args], cwd=FOLDER, env=env, capture_output=True, text=True, check=False
    )


def test_sbatch_passes_shellcheck():
    shellcheck = require_programs("shellcheck", "shellcheck", how="install the dev group (`make setup`)")
    result = subprocess.run(
        [shellcheck["shellcheck"], SBATCH, "slurm/efa-env.sh"],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_dry_run_prints_one_torchrun_per_node_running_torchtitan_train():
    result = dry_run("--training.steps", "200", PRESET="llama3_70b_fsdp_tp", VENV="/fsx/venv")
    assert result.returncode == 0, result.stderr
    command = result.stdout.strip()
    assert command.startswith(
        "srun --nodes=2 --ntasks-per-node=1 --kill-on-bad-exit=1 /fsx/venv/bin/torchrun"
    )
    assert "--nnodes=2 --nproc-per-node=8 --rdzv-backend=c10d --rdzv-endpoint=HEAD_NODE_ADDR:29500" in command
    assert command.endswith(
        f"-m torchtitan.train --module aws_llama3 --config llama3_70b_fsdp_tp --dump_folder "
        f"{FOLDER}/runs/llama3_70b_fsdp_tp-0 --training.steps 200"
    )
    container = dry_run(IMAGE="/fsx/torchtitan.sqsh", PRESET="llama3_8b_fsdp")
    assert "--container-image=/fsx/torchtitan.sqsh --container-mounts=/fsx:/fsx" in container.stdout
    assert " torchrun --nnodes=2" in container.stdout
    assert "--dump_folder /fsx/torchtitan/runs/llama3_8b_fsdp-0" in container.stdout


def test_bad_preset_and_outside_a_job_are_one_line_errors():
    bad = dry_run(PRESET="llama3 8b")
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1
    assert bad.stderr.startswith("error: PRESET='llama3 8b' is not a config name")
    outside = subprocess.run(
        ["bash", SBATCH],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("SLURM_")},
    )
    assert outside.returncode == 2 and "not inside a Slurm job" in outside.stderr


@pytest.mark.slurm
@pytest.mark.slow
def test_sbatch_launches_one_torchrun_per_node_on_local_slurm(local_slurm, tmp_path):
    run_dir = tmp_path / "run"
    env = {
        "TEST_CASE_DIR": str(FOLDER),
        "VENV": str(VENV),
        "PRESET": "tiny",
        "NPROC_PER_NODE": "1",
        "RUN_DIR": str(run_dir),
        "RDZV_PORT": "29611",
        "ENTRY_POINT": "titan_standin",
        "PYTHONPATH": str(FOLDER / "tests"),
        "INSTANCE_TYPE": "cpu",
        "EFA_SYSFS": "/nonexistent",
        "OMP_NUM_THREADS": "1",
    }
    job = local_slurm.submit(FOLDER / SBATCH, ["--training.steps", "3"], env=env, cwd=tmp_path)
    state = job.wait(timeout=240)
    assert state == "COMPLETED", job.output()[-3000:]
    records = [json.loads((run_dir / "ranks" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert {r["node"] for r in records} == {"n1", "n2"}  # one torchrun per node
    assert all(r["world_size"] == 2 and r["local_rank"] == 0 and r["rank_sum"] == 1.0 for r in records)
    assert records[0]["argv"] == [
        "--module",
        "aws_llama3",
        "--config",
        "tiny",
        "--dump_folder",
        str(run_dir),
        "--training.steps",
        "3",
    ]
    assert records[0]["pythonpath"].split(":")[0] == str(FOLDER / "src")  # where aws_llama3 is imported from
    assert "torchtitan tiny: job" in job.output()
