"""The README's node walkthrough, run as written in a copy of the repository."""

from __future__ import annotations

from pathlib import Path

from testbed.walkthrough import run_walkthrough

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_node_walkthrough(artifacts_root):
    result = run_walkthrough(README, "node", artifacts_root / "wt-env-validation", timeout=300)
    assert result.returncode == 0, result.output[-4000:]
    assert "ENV007  local collective      PASS    gloo all_reduce across 2 ranks correct" in result.output
    assert "# efa-versions 0.1.0" in result.output and "# Result : OK" in result.output


def test_readme_dry_run_prints_the_srun_and_summary_commands(artifacts_root):
    result = run_walkthrough(README, "dry-run", artifacts_root / "wt-env-validation-dry", timeout=120)
    assert result.returncode == 0, result.output[-4000:]
    lines = result.output.strip().splitlines()
    assert (
        lines[-2].startswith("srun --nodes=2 --ntasks-per-node=1 --label ")
        and "validate_env.py --json-dir" in lines[-2]
    )
    assert "validate_env.py --summarize" in lines[-1] and "--expect-nodes" in lines[-1]
    assert not (result.workdir / "4.validation_observability/1.pytorch-env-validation/results").exists()
