"""The README's walkthrough, run as written in a copy of the repository."""

from __future__ import annotations

from pathlib import Path

from testbed.walkthrough import run_walkthrough

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_walkthrough_previews_the_wrappers_and_analyses_exports(artifacts_root):
    result = run_walkthrough(README, "local", artifacts_root / "wt-nsight", timeout=300)
    assert result.returncode == 0, result.output[-4000:]
    assert "--no-python nsys profile" in result.output and "rank%q{SLURM_PROCID}" in result.output
    assert "  AllReduce               6       0.880" in result.output and result.output.rstrip().endswith(
        "# OK"
    )
    png = result.workdir / "4.validation_observability/5.nsight/demo/nccl.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
