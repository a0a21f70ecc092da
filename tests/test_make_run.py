"""`make run`, the main job, as the README shows it: trains, writes its run folder, says what is next."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from testbed.ports import free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_make_run_trains_and_prints_next_steps(artifacts_root):
    run_dir = artifacts_root / "make-run"
    # A free rendezvous port (command-line variables reach the sub-make): 29500 may be taken.
    command = [
        "make",
        "--no-print-directory",
        "run",
        f"RUN_DIR={run_dir}",
        f"RDZV_PORT={free_port()}",
        "ARGS=--max-steps 20",
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "summary: step 20, final loss" in result.stdout and "MFU" in result.stdout
    for line in (f"Run folder: {run_dir}", "Resume:", "Slurm:", "EKS:"):
        assert line in result.stdout
    result_json = json.loads((run_dir / "result.json").read_text())
    assert result_json["world_size"] == 2 and result_json["checkpoint"].endswith("step-00000020")
    more = [*command[:-1], "ARGS=--max-steps 30"]  # the resume command the summary prints
    again = subprocess.run(more, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resumed from {run_dir / 'checkpoints' / 'step-00000020'} at step 20" in again.stdout
    assert "summary: step 30" in again.stdout
