"""The README's node walkthrough, run as written in a copy of the repository (this machine: all SKIP)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from testbed.standins import run_with_standins
from testbed.walkthrough import run_walkthrough

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_node_walkthrough(artifacts_root):
    result = run_walkthrough(README, "node", artifacts_root / "wt-healthcheck", timeout=300)
    assert result.returncode == 0, result.output[-4000:]
    assert "GPU006  NCCL all-reduce in one node" in result.output
    assert "# Action : ok" in result.output and "# Cluster : OK" in result.output
    results = list(
        (result.workdir / "4.validation_observability/2.gpu-cluster-healthcheck/results").glob("*.json")
    )
    assert len(results) == 1


def test_readme_dry_run_prints_the_srun_and_aggregate_commands(artifacts_root):
    result = run_walkthrough(README, "dry-run", artifacts_root / "wt-healthcheck-dry", timeout=120)
    assert result.returncode == 0, result.output[-4000:]
    lines = result.output.strip().splitlines()
    assert (
        lines[-2].startswith("srun --nodes=2 --ntasks-per-node=1 --label ")
        and "healthcheck.py run" in lines[-2]
    )
    assert "healthcheck.py aggregate --expect-nodes" in lines[-1]


@pytest.mark.slurm
def test_readme_quarantine_walkthrough_drains_and_resumes_a_node(local_slurm, artifacts_root, tmp_path):
    """Section 2's quarantine commands as written, on the local 2-node Slurm: nothing is stood in for
    (no tools); n2 is drained with the reason, listed, and back in service at the end."""
    run = run_with_standins(
        README,
        "quarantine",
        artifacts_root / "wt-healthcheck-quarantine",
        tmp_path / "bin",
        tools=(),
        env={"SLURM_CONF": str(local_slurm.conf_path)},
    ).check()
    assert re.search(r"^# \d+ node\(s\) out of service$", run.output, re.M)  # list, before the drain
    assert "drained n2 (quarantine: Xid 79 seen by a user)" in run.output
    assert "resumed n2 (was drained: quarantine: Xid 79 seen by a user)" in run.output
    assert re.search(r"n2 is \w+, already in service\n$", run.output)  # --force on a node in service
    assert not local_slurm.node_state("n2").startswith(("DRAIN", "DOWN"))
