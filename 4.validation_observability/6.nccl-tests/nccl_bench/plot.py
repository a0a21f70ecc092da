"""busbw against message size as a PNG, with the instance's expected band shaded."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nccl_bench.instance_types import Band
from nccl_bench.nccl_output import NcclTestsOutput

_UNITS = ((1 << 40, "T"), (1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K"))


def size_label(size_bytes: float) -> str:
    """1024 -> '1K', 1 << 30 -> '1G' (nccl-tests' powers of 1024)."""
    for factor, unit in _UNITS:
        if size_bytes >= factor:
            value = size_bytes / factor
            return f"{value:g}{unit}"
    return f"{size_bytes:g}"


def plot_busbw(
    runs: Sequence[tuple[str, NcclTestsOutput]], path: Path, band: Band | None = None, title: str = ""
) -> Path:
    """Draw one line per run (its best busbw per size) and save ``path``; returns it."""
    import matplotlib  # noqa: PLC0415 - only the plot needs matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.ticker import FuncFormatter  # noqa: PLC0415

    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    try:
        for label, run in runs:
            points = [(row.size_bytes, row.busbw) for row in run.rows if row.busbw is not None]
            if points:
                axes.plot(*zip(*points, strict=True), marker="o", markersize=3, label=label)
        if band is not None:
            axes.axhspan(band.low, band.high, alpha=0.15, color="tab:green", label=f"expected {band}")
        axes.set_xscale("log", base=2)
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: size_label(value)))
        axes.set_xlabel("message size (bytes)")
        axes.set_ylabel("bus bandwidth (GB/s)")
        axes.set_title(title or "busbw by message size")
        axes.grid(True, which="major", alpha=0.3)
        axes.legend(loc="upper left", fontsize="small")
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path)
    finally:
        plt.close(figure)
    return path
