"""The README's local walkthrough, run as written in a copy of the repository."""

from __future__ import annotations

from pathlib import Path

from testbed.walkthrough import run_walkthrough

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_local_walkthrough(artifacts_root):
    result = run_walkthrough(README, "local", artifacts_root / "wt-nccl-tests", timeout=300)
    assert result.returncode == 0, result.output[-4000:]
    assert "# collective-bench 0.1.0" in result.output and "# Out of bounds values : 0 OK" in result.output
    assert "threshold  : 440 GB/s (band 440-490 GB/s of p5.48xlarge, 2 node(s))" in result.output
    assert "NCCL used TCP sockets (NET/Socket), not EFA" in result.output
    png = result.workdir / "4.validation_observability/6.nccl-tests/results/busbw.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
