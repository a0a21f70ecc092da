"""`make run`, the main job, as the README shows it: trains, writes its run folder, says what is next."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_make_run_trains_and_prints_next_steps(artifacts_root):
    run_dir = artifacts_root / "make-run"
    command = ["make", "--no-print-directory", "run", f"RUN_DIR={run_dir}"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "held-out accuracy" in result.stdout
    for line in (f"Run folder: {run_dir}", "Resume:", "Slurm:", "EKS:"):
        assert line in result.stdout
    assert json.loads((run_dir / "result.json").read_text())["world_size"] == 2
    assert (run_dir / "checkpoints").is_dir()
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0
    assert f"resumed from {run_dir / 'checkpoints' / 'step-00000400'} at step 400" in again.stdout
