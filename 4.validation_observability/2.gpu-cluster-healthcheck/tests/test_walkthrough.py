"""The README's node walkthrough, run as written in a copy of the repository (this machine: all SKIP)."""

from __future__ import annotations

from pathlib import Path

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
