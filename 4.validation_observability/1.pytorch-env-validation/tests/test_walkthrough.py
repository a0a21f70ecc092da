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
