"""The README's Slurm walkthrough, run as written: cluster up, sbatch, output, cluster down."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.slurm import REQUIRED_PROGRAMS, cluster_processes
from testbed.system import require_programs
from testbed.walkthrough import run_walkthrough

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slurm
@pytest.mark.slow
def test_readme_slurm_walkthrough_trains_and_leaves_nothing_running(artifacts_root):
    require_programs("local Slurm", *REQUIRED_PROGRAMS)
    # A short path: Slurm's Unix socket paths live under the copy's .testbed/slurm.
    result = run_walkthrough(README, "slurm", artifacts_root / "wt-slurm", timeout=600)
    assert result.returncode == 0, result.output[-4000:]
    assert "LocalSlurm up: n1, n2" in result.output
    assert "rendezvous 127.0.0.1:" in result.output
    assert "held-out accuracy" in result.output
    assert "stopped and removed" in result.output
    conf = result.workdir / ".testbed" / "slurm" / "slurm.conf"
    assert not conf.exists()
    assert cluster_processes(conf) == []
    run_dirs = list((result.workdir / "3.test_cases/pytorch/cpu-ddp/runs").glob("cpu-ddp-*"))
    assert len(run_dirs) == 1 and (run_dirs[0] / "result.json").is_file()
