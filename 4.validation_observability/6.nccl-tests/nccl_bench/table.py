"""Print rows in nccl-tests' own table format, so one parser reads nccl-tests and this benchmark alike."""

from __future__ import annotations

from nccl_bench.nccl_output import Measurement, Row

COLUMN_HEADER = [
    "#" + " " * 62 + "out-of-place" + " " * 23 + "in-place",
    "#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw"
    "   busbw #wrong",
    "#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)"
    "  (GB/s)",
]


def _group(measurement: Measurement | None) -> str:
    if measurement is None or measurement.time_us is None:
        return f"  {'N/A':>7}  {'N/A':>6}  {'N/A':>6}  {'N/A':>5}"
    time_us = measurement.time_us
    time_text = f"{time_us:7.1f}" if time_us < 1e5 else f"{time_us:7.0f}"
    wrong = "N/A" if measurement.wrong is None else str(measurement.wrong)
    return f"  {time_text}  {measurement.algbw or 0:6.2f}  {measurement.busbw or 0:6.2f}  {wrong:>5}"


def format_row(row: Row) -> str:
    """One table line: size, count, type, redop, root, then the out-of-place and in-place groups."""
    head = f"{row.size_bytes:12d}  {row.count:12d}  {row.dtype:>8}  {row.redop or 'none':>6}  {row.root:6d}"
    return head + _group(row.out_of_place) + _group(row.in_place)


def average_busbw(rows: list[Row]) -> float:
    """nccl-tests' "Avg bus bandwidth": the mean over every measured group of every row."""
    groups = (m for row in rows for m in (row.out_of_place, row.in_place) if m is not None)
    values = [m.busbw for m in groups if m.busbw is not None]
    return sum(values) / len(values) if values else 0.0


def footer(rows: list[Row], test: str) -> list[str]:
    """nccl-tests' footer: out-of-bounds count with OK/FAILED, average busbw, the concluding line."""
    wrong = sum(row.wrong for row in rows)
    average = average_busbw(rows)
    return [
        f"# Out of bounds values : {wrong} {'OK' if wrong == 0 else 'FAILED'}",
        f"# Avg bus bandwidth    : {average:g} ",
        "#",
        f"# Collective test concluded: {test}",
        "#",
    ]
