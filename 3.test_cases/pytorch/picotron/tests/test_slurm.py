"""slurm/picotron.sbatch: static checks, DRY_RUN previews, refusals, and a real 2-node launch on the local
Slurm cluster in which torchrun runs the stand-in entry point (testbed/launch_recorder.py) instead of
picotron's train.py (which needs CUDA and flash-attn)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.ports import free_port
from testbed.system import require_programs

FOLDER = Path(__file__).resolve().parents[1]
SBATCH = "slurm/picotron.sbatch"
VENV = Path(sys.executable).parent.parent
RECORDER = FOLDER.parents[2] / "testbed" / "launch_recorder.py"  # the shared stand-in entry point


def dry_run(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "FI_", "NCCL_", "HF_"))}
    base = {"DRY_RUN": "1", "INSTANCE_TYPE": "cpu", "EFA_SYSFS": "/nonexistent"}
    return subprocess.run(
        ["bash", SBATCH, *args],
        cwd=FOLDER,
        env={**clean, **base, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_script_parses_and_passes_shellcheck():
    subprocess.run(["bash", "-n", SBATCH], cwd=FOLDER, check=True)
    shellcheck = require_programs("shellcheck", "shellcheck", how="install the lint group (`make setup`)")
    result = subprocess.run(
        [shellcheck["shellcheck"], SBATCH, "slurm/efa-env.sh"],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_dry_run_in_the_container_takes_the_nodes_the_config_needs():
    result = dry_run("--extra", "1", PRESET="llama3_1_70b-16nodes", IMAGE="/fsx/images/picotron.sqsh")
    assert result.returncode == 0, result.stderr
    command = result.stdout.strip().splitlines()[-1]
    assert command.startswith("srun --nodes=16 --ntasks-per-node=1 --kill-on-bad-exit=1 ")
    assert "--container-image=/fsx/images/picotron.sqsh --container-mounts=/fsx:/fsx" in command
    assert "--container-workdir=/fsx/picotron/runs/llama3_1_70b-16nodes-0 torchrun --nnodes=16" in command
    assert command.endswith(
        "--nproc-per-node=8 --rdzv-backend=c10d --rdzv-endpoint=HEAD_NODE_ADDR:29500 --rdzv-id=0 "
        "--max-restarts=0 /opt/picotron/train.py "
        "--config /workspace/picotron/configs/llama3_1_70b-16nodes.json --extra 1"
    )
    assert "tp 8 x pp 4 x cp 1 x dp 4 = 128 ranks" in result.stdout


def test_dry_run_with_a_venv_runs_picotron_from_it():
    result = dry_run(VENV="/fsx/venvs/picotron", RUN_DIR="/fsx/runs/a")
    assert result.returncode == 0, result.stderr
    command = result.stdout.strip().splitlines()[-1]
    assert "--nodes=2 " in command and "--chdir=/fsx/runs/a /fsx/venvs/picotron/bin/torchrun" in command
    assert (
        f"/fsx/venvs/picotron/picotron/train.py --config {FOLDER}/configs/llama3_1_8b-2nodes.json" in command
    )


def test_a_job_whose_size_does_not_fit_the_config_is_refused():
    inside = {"SLURM_JOB_ID": "7", "SLURM_JOB_NUM_NODES": "4", "SLURM_SUBMIT_DIR": str(FOLDER)}
    result = dry_run(PRESET="llama3_1_8b-2nodes", **inside)
    assert result.returncode == 2 and "srun" not in result.stdout
    assert result.stderr.strip().startswith("error: ") and "but the job has 32 ranks" in result.stderr
    missing = dry_run(PRESET="llama3_1_8b-3nodes")
    assert missing.returncode == 2 and "no such config" in missing.stderr


def test_hf_token_and_slurm_are_required_outside_a_dry_run():
    inside = {"SLURM_JOB_ID": "7", "SLURM_JOB_NUM_NODES": "2", "SLURM_SUBMIT_DIR": str(FOLDER)}
    result = dry_run(DRY_RUN="0", **inside)
    assert result.returncode == 2 and "error: HF_TOKEN is not set" in result.stderr
    outside = dry_run(DRY_RUN="0")
    assert outside.returncode == 2 and outside.stderr.strip() == (
        "error: not inside a Slurm job; submit with 'sbatch slurm/picotron.sbatch' or preview with DRY_RUN=1"
    )


@pytest.mark.slurm
def test_two_node_launch_runs_one_torchrun_per_node(local_slurm, run_dir):
    """The sbatch as written, on 2 Slurm nodes x 1 rank: torchrun from the project venv runs the stand-in."""
    config = run_dir / "dp2.json"
    made = subprocess.run(
        [
            sys.executable,
            "src/picotron_config.py",
            "--model",
            "smollm_360m",
            "--nodes",
            "2",
            "--gpus-per-node",
            "1",
            "--out",
            str(config),
        ],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    env = {
        "VENV": str(VENV),
        "CONFIG": str(config),
        "RUN_DIR": str(run_dir / "work"),
        "NPROC_PER_NODE": "1",
        "ENTRY_POINT": str(RECORDER),
        "RDZV_PORT": str(free_port()),
        "HF_TOKEN": "hf_test_not_a_secret",
        "INSTANCE_TYPE": "cpu",
        "EFA_SYSFS": "/nonexistent",
    }
    job = local_slurm.submit(
        SBATCH,
        args=["--max-steps", "3"],
        env=env,
        sbatch_args=["--output", f"{run_dir}/slurm-%j.out"],
        cwd=FOLDER,
    )
    assert job.wait(timeout=240) == "COMPLETED", job.output()[-3000:]
    assert job.nodes == ["n1", "n2"]
    records = [json.loads(p.read_text()) for p in sorted((run_dir / "work").glob("launch-rank*.json"))]
    assert len(records) == 2, job.output()[-2000:]
    by_rank = {int(r["env"]["RANK"]): r for r in records}
    assert set(by_rank) == {0, 1}
    assert {r["env"]["SLURMD_NODENAME"] for r in records} == {"n1", "n2"}  # one torchrun per node
    assert {r["env"]["GROUP_RANK"] for r in records} == {"0", "1"}
    assert {r["env"]["WORLD_SIZE"] for r in records} == {"2"}
    assert {r["env"]["TORCHELASTIC_RUN_ID"] for r in records} == {str(job.id)}  # --rdzv-id=$SLURM_JOB_ID
    assert len({(r["env"]["MASTER_ADDR"], r["env"]["MASTER_PORT"]) for r in records}) == 1
    assert all(r["argv"] == ["--config", str(config), "--max-steps", "3"] for r in records)
    assert all(r["cwd"] == str(run_dir / "work") for r in records)  # picotron writes into its working folder
    assert all(r["env"]["CUDA_DEVICE_MAX_CONNECTIONS"] == "1" and r["hf_token_set"] for r in records)
    assert f"rendezvous {local_slurm.node_addr('n1')}:" in job.output()
    assert "dp2.json: tp 1 x pp 1 x cp 1 x dp 2 = 2 ranks" in job.output()
