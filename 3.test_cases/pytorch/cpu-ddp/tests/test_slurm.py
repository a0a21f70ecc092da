"""The sbatch script on a real local Slurm (2 nodes x 1 task), plus its static checks.

The job is submitted from the test case folder exactly as the README says (``sbatch
slurm/cpu-ddp.sbatch``); the test only redirects outputs into its run folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testbed.ports import free_port
from testbed.system import require_programs

TEST_CASE_DIR = Path(__file__).resolve().parents[1]
SBATCH = "slurm/cpu-ddp.sbatch"
VENV = Path(sys.executable).parent.parent


def submit(cluster, run_dir: Path, *args: str, **env: str):
    job_env = {"VENV": str(VENV), "RUN_DIR": str(run_dir), "RDZV_PORT": str(free_port()), **env}
    return cluster.submit(
        SBATCH, args=args, env=job_env, sbatch_args=["--output", f"{run_dir}/slurm-%j.out"], cwd=TEST_CASE_DIR
    )


def failure_report(job) -> str:
    """What a failed job said: its error lines (a rank's own message comes before the launcher's long
    traceback, which would fill a plain tail), then the tail of its output."""
    lines = job.output().splitlines()
    markers = ("error", "terminate", "abort", "exception", "what()", "gloo", "signal", "traceback")
    errors = [line for line in lines if any(m in line.lower() for m in markers) and "step " not in line]
    return "\n".join(["error lines:", *errors[:60], "tail:", *lines[-40:]])


def wait_for_checkpoint(run_dir: Path, job, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not list((run_dir / "checkpoints").glob("step-*/COMPLETE")):
        assert time.monotonic() < deadline, (
            f"no checkpoint after {timeout}s; job {job.state}:\n{job.output()[-2000:]}"
        )
        assert job.state in {"PENDING", "RUNNING", "CONFIGURING"}, job.output()[-3000:]
        time.sleep(0.5)


@pytest.mark.slurm
def test_two_node_job_trains_across_both_nodes(local_slurm, run_dir):
    job = submit(local_slurm, run_dir, "--preset", "tiny", "--record-samples", "--min-accuracy", "0.8")
    assert job.wait(timeout=240) == "COMPLETED", failure_report(job)
    assert job.exit_code == 0
    assert job.nodes == ["n1", "n2"]
    ranks = [json.loads((run_dir / "ranks" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert {r["node"] for r in ranks} == {"n1", "n2"}  # one torchrun per node
    assert {r["world_size"] for r in ranks} == {2}
    assert ranks[0]["run_id"] == ranks[1]["run_id"] == str(job.id)  # one rendezvous: --rdzv-id=$SLURM_JOB_ID
    assert f"rendezvous {local_slurm.node_addr('n1')}:" in job.output()
    result = json.loads((run_dir / "result.json").read_text())
    assert result["world_size"] == 2 and result["accuracy"] >= 0.8


@pytest.mark.slurm
def test_requeued_job_resumes_from_checkpoint(local_slurm, run_dir):
    job = submit(
        local_slurm, run_dir, "--preset", "digits", "--step-delay-s", "0.05", "--min-accuracy", "0.9"
    )
    wait_for_checkpoint(run_dir, job)
    local_slurm.requeue(job)
    assert job.wait(timeout=300) == "COMPLETED", failure_report(job)
    assert job.restart_count == 1
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    resumes = [e for e in events if e.get("event") == "resume"]
    assert len(resumes) == 1 and resumes[0]["step"] >= 100
    final = [e for e in events if e.get("event") == "eval"]
    assert len(final) == 1 and final[0]["step"] == 400 and final[0]["accuracy"] >= 0.9
    steps = [e["step"] for e in events if "event" not in e]  # digits logs every 10th step
    assert steps[-1] == 400 and set(steps) == set(range(10, 401, 10))


@pytest.mark.slurm
def test_dry_run_inside_allocation_prints_the_final_command(local_slurm, run_dir):
    job = submit(local_slurm, run_dir, "--preset", "tiny", DRY_RUN="1", RDZV_PORT="29999")
    assert job.wait(timeout=60) == "COMPLETED", job.output()
    command = job.output().strip().splitlines()[-1]
    assert command.startswith("srun --nodes=2 --ntasks-per-node=1 ")
    assert f"{VENV}/bin/torchrun --nnodes=2 --nproc-per-node=1 --rdzv-backend=c10d" in command
    assert f"--rdzv-endpoint=127.0.0.1:29999 --rdzv-id={job.id}" in command
    assert not (run_dir / "metrics.jsonl").exists()


def dry_run(script: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    return subprocess.run(
        ["bash", script, *args],
        cwd=TEST_CASE_DIR,
        env={**clean, "DRY_RUN": "1", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_script_parses_and_passes_shellcheck():
    subprocess.run(["bash", "-n", SBATCH], cwd=TEST_CASE_DIR, check=True)
    shellcheck = require_programs("shellcheck", "shellcheck", how="install the lint group (`make setup`)")
    result = subprocess.run(
        [shellcheck["shellcheck"], SBATCH], cwd=TEST_CASE_DIR, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_dry_run_outside_slurm_and_hyperpod_detection(tmp_path):
    plain = dry_run(SBATCH, "--max-steps", "10", VENV="/opt/venv", HYPERPOD_MARKER=str(tmp_path / "absent"))
    assert plain.returncode == 0, plain.stderr
    assert "--auto-resume" not in plain.stdout
    assert "/opt/venv/bin/torchrun --nnodes=2" in plain.stdout
    assert plain.stdout.rstrip().endswith(
        f"{TEST_CASE_DIR}/src/train.py --preset digits --run-dir {TEST_CASE_DIR}/runs/cpu-ddp-0 "
        "--max-steps 10"
    )
    hyperpod = dry_run(SBATCH, HYPERPOD_MARKER=str(tmp_path))  # the marker folder exists
    assert hyperpod.stdout.startswith(
        "srun --nodes=2 --ntasks-per-node=1 --kill-on-bad-exit=1 --auto-resume=1 "
    )


def test_preset_comes_from_the_environment():
    result = dry_run(SBATCH, PRESET="wide")
    assert result.returncode == 0, result.stderr
    assert "/src/train.py --preset wide --run-dir " in result.stdout


def test_image_runs_the_same_script_in_a_container_with_pyxis_flags():
    result = dry_run(SBATCH, IMAGE="/fsx/images/cpu-ddp.sqsh", SHARED_DIR="/fsx")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "--container-image=/fsx/images/cpu-ddp.sqsh --container-mounts=/fsx:/fsx" in out
    assert "--container-workdir=/workspace/cpu-ddp torchrun --nnodes=2" in out  # the image's torchrun
    assert "/workspace/cpu-ddp/src/train.py --preset digits --run-dir /fsx/cpu-ddp/runs/cpu-ddp-0" in out
    assert "/bin/torchrun" not in out  # no venv in a container run


def test_image_without_pyxis_is_a_clear_error(tmp_path):
    """Pyxis ignores --container-image silently where its plugin is missing: the script refuses instead."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    srun = fake_bin / "srun"
    srun.write_text("#!/bin/sh\necho 'Usage: srun [OPTIONS(0)...]'\n")  # a Slurm without pyxis
    srun.chmod(0o755)
    inside = {"SLURM_JOB_ID": "7", "SLURM_JOB_NUM_NODES": "2", "SLURM_SUBMIT_DIR": str(TEST_CASE_DIR)}
    path = f"{fake_bin}:{os.environ['PATH']}"
    result = dry_run(SBATCH, DRY_RUN="0", IMAGE="/fsx/images/cpu-ddp.sqsh", PATH=path, **inside)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: IMAGE is set but this Slurm has no pyxis plugin; install pyxis/enroot or unset IMAGE"
    )


def test_make_slurm_passes_preset_image_and_args_to_the_script(tmp_path):
    """`make slurm` as a user types it; a stand-in sbatch previews the job (DRY_RUN), queues nothing."""
    require_programs("make slurm", "make")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    sbatch = fake_bin / "sbatch"
    sbatch.write_text('#!/bin/bash\nDRY_RUN=1 exec bash "$@"\n')
    sbatch.chmod(0o755)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "MAKE"))}
    result = subprocess.run(
        ["make", "slurm", "PRESET=tiny", "IMAGE=/fsx/images/cpu-ddp.sqsh", "ARGS=--max-steps 5"],
        cwd=TEST_CASE_DIR,
        env={**clean, "PATH": f"{fake_bin}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--container-image=/fsx/images/cpu-ddp.sqsh" in result.stdout
    expected = (
        "/workspace/cpu-ddp/src/train.py --preset tiny --run-dir /fsx/cpu-ddp/runs/cpu-ddp-0 --max-steps 5"
    )
    assert expected in result.stdout


def test_outside_slurm_without_dry_run_is_a_clear_error():
    result = dry_run(SBATCH, DRY_RUN="0")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: not inside a Slurm job; submit with 'sbatch slurm/cpu-ddp.sbatch' or preview with DRY_RUN=1"
    )
