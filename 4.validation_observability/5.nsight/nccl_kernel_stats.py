#!/usr/bin/env python3
"""NCCL kernel time and message sizes from Nsight Systems exports, as a table, JSON and a plot.

Inputs, one per rank (any mix):

- SQLite: ``nsys export --type sqlite --include-json true --output rank0.sqlite rank0.nsys-rep``.
  Kernels come from ``CUPTI_ACTIVITY_KIND_KERNEL`` (names in ``StringIds``); message sizes from
  NCCL's NVTX ranges (``ncclAllReduce``, ...) whose payload carries ``Message size [bytes]``, in
  ``NVTX_EVENTS.jsonText`` (NCCL builds with NVTX, the default, and ``--trace`` including ``nvtx``).
- CSV: ``nsys stats --report cuda_gpu_kern_sum --format csv --output rank0 rank0.nsys-rep``
  (per-kernel totals: no medians and no message sizes).

NCCL kernels are recognised by name (``ncclDevKernel_AllReduce_Sum_bf16_RING_LL`` from NCCL 2.19 on,
``ncclKernel_AllReduce_RING_LL_Sum_float`` before) and grouped by collective.

Output (the nccl-tests contract): a ``#`` header with the tool version and inputs, a fixed-width
table per collective (calls, total, mean, median, max, share of all GPU kernel time), a table per
input, message-size buckets, and an ``OK``/``FAILED`` footer. FAILED (exit 1) when no NCCL kernel
was found, or when NCCL's share of kernel time exceeds ``--max-nccl-share``. ``--json`` prints the
same as JSON; ``--plot out.png`` draws kernel time per collective and the message-size histogram.
Bad input exits 2 with one line naming the file and the fix.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import sqlite3
import statistics
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

__version__ = "1.0.0"
_KERNEL = re.compile(r"^(?:void\s+)?nccl(?:Dev)?Kernel_([A-Za-z]+)")
_NVTX_RANGE = re.compile(r"^nccl([A-Z][A-Za-z]+)$")
CSV_COLUMNS = {"Total Time (ns)", "Instances", "Avg (ns)", "Max (ns)", "Name"}


class InputError(ValueError):
    """An input that is not an nsys export this tool reads; the message names the file and the fix."""


@dataclass
class Profile:
    """What one input says: NCCL kernel durations (or CSV totals) by collective, sizes, all kernel time."""

    name: str
    durations_ns: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    totals_ns: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    calls: Counter = field(default_factory=Counter)
    max_ns: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    sizes: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    all_kernels_ns: int = 0

    def add_kernel(self, name: str, duration_ns: int, count: int = 1, max_ns: int | None = None) -> None:
        """One kernel (or, from CSV, ``count`` of them totalling ``duration_ns``)."""
        self.all_kernels_ns += duration_ns
        collective = collective_of(name)
        if collective is None:
            return
        self.calls[collective] += count
        self.totals_ns[collective] += duration_ns
        self.max_ns[collective] = max(self.max_ns[collective], max_ns if max_ns is not None else duration_ns)
        if count == 1 and max_ns is None:
            self.durations_ns[collective].append(duration_ns)

    @property
    def nccl_ns(self) -> int:
        return sum(self.totals_ns.values())


def collective_of(kernel_name: str) -> str | None:
    """``AllReduce`` for an NCCL all-reduce kernel name; None for any other kernel."""
    match = _KERNEL.match(kernel_name.strip())
    return match.group(1) if match else None


def message_size(json_text: str | None) -> int | None:
    """The ``Message size [bytes]`` of an NCCL NVTX payload (searched at any depth), or None."""
    if not json_text:
        return None
    try:
        payload = json.loads(json_text)
    except json.JSONDecodeError:
        return None
    stack = [payload]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if "size" in key.lower() and "byte" in key.lower() and isinstance(value, int | float):
                    return int(value)
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _tables(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def read_sqlite(path: Path) -> Profile:
    """Kernels and NCCL message sizes of one nsys SQLite export."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = _tables(db)
        if not {"CUPTI_ACTIVITY_KIND_KERNEL", "StringIds"} <= tables:
            raise InputError(
                f"{path}: no CUPTI_ACTIVITY_KIND_KERNEL table; profile with --trace=cuda and export "
                "with 'nsys export --type sqlite --include-json true'"
            )
        profile = Profile(path.stem)
        name_column = (
            "shortName" if "shortName" in _columns(db, "CUPTI_ACTIVITY_KIND_KERNEL") else "demangledName"
        )
        query = (
            f"SELECT s.value, k.end - k.start FROM CUPTI_ACTIVITY_KIND_KERNEL k "  # noqa: S608 (fixed names)
            f"JOIN StringIds s ON s.id = k.{name_column} ORDER BY k.start"
        )
        for name, duration in db.execute(query):
            profile.add_kernel(name, int(duration))
        if "NVTX_EVENTS" in tables and "jsonText" in _columns(db, "NVTX_EVENTS"):
            read_nvtx_sizes(db, profile)
        return profile
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{path}: not an SQLite export ({exc}); pass the .sqlite of 'nsys export'") from None
    finally:
        db.close()


def read_nvtx_sizes(db: sqlite3.Connection, profile: Profile) -> None:
    """Message sizes from NCCL's NVTX ranges (their names: ``text``, or ``textId`` in StringIds)."""
    query = (
        "SELECT COALESCE(e.text, s.value), e.jsonText FROM NVTX_EVENTS e "
        "LEFT JOIN StringIds s ON s.id = e.textId WHERE e.jsonText IS NOT NULL"
    )
    for name, json_text in db.execute(query):
        match = _NVTX_RANGE.match(name or "")
        size = message_size(json_text)
        if match and size is not None:
            profile.sizes[match.group(1)].append(size)


def read_csv(path: Path) -> Profile:
    """Per-kernel totals of one ``nsys stats --report cuda_gpu_kern_sum --format csv`` file."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: not a cuda_gpu_kern_sum CSV ({exc}); is it the right file?") from None
    if not rows or not set(rows[0]) >= CSV_COLUMNS:
        raise InputError(
            f"{path}: not a cuda_gpu_kern_sum CSV (needs columns {', '.join(sorted(CSV_COLUMNS))}); "
            "make it with 'nsys stats --report cuda_gpu_kern_sum --format csv'"
        )
    profile = Profile(path.stem)
    for line, row in enumerate(rows, start=2):
        try:
            total = int(float(row["Total Time (ns)"]))
            count, max_ns = int(row["Instances"]), int(float(row["Max (ns)"]))
        except (TypeError, ValueError, OverflowError):
            raise InputError(
                f"{path}, line {line}: Total Time, Instances and Max must be numbers; is the export complete?"
            ) from None
        if total < 0 or count < 0 or max_ns < 0:
            raise InputError(f"{path}, line {line}: negative times or counts; is the export complete?")
        profile.add_kernel(row["Name"], total, count=count, max_ns=max_ns)
    return profile


def read_input(path: Path) -> Profile:
    if not path.is_file():
        raise InputError(f"{path} does not exist; pass .sqlite or .csv exports of nsys reports")
    if path.suffix == ".csv":
        return read_csv(path)
    return read_sqlite(path)


def summarize(profiles: list[Profile]) -> dict:
    """Everything the table, the JSON and the plot show."""
    all_kernels = sum(p.all_kernels_ns for p in profiles)
    collectives = sorted(
        {c for p in profiles for c in p.calls}, key=lambda c: -sum(p.totals_ns[c] for p in profiles)
    )
    rows = []
    for collective in collectives:
        total = sum(p.totals_ns[collective] for p in profiles)
        calls = sum(p.calls[collective] for p in profiles)
        durations = [d for p in profiles for d in p.durations_ns[collective]]
        rows.append(
            {
                "collective": collective,
                "calls": calls,
                "total_ms": total / 1e6,
                "mean_us": total / calls / 1e3,
                "median_us": statistics.median(durations) / 1e3 if len(durations) == calls else None,
                "max_us": max(p.max_ns[collective] for p in profiles) / 1e3,
                "share_pct": 100 * total / all_kernels if all_kernels else 0.0,
            }
        )
    sizes = defaultdict(Counter)
    for profile in profiles:
        for collective, values in profile.sizes.items():
            sizes[collective].update(size_bucket(v) for v in values)
    per_input = [
        {
            "input": p.name,
            "nccl_ms": p.nccl_ns / 1e6,
            "share_pct": 100 * p.nccl_ns / p.all_kernels_ns if p.all_kernels_ns else 0.0,
        }
        for p in profiles
    ]
    nccl = sum(p.nccl_ns for p in profiles)
    return {
        "collectives": rows,
        "inputs": per_input,
        "message_sizes": {c: dict(sorted(b.items())) for c, b in sorted(sizes.items())},
        "nccl_share_pct": 100 * nccl / all_kernels if all_kernels else 0.0,
    }


def size_bucket(size: int) -> int:
    """The power of two at or above ``size`` (bytes): the bucket of the message-size histogram."""
    return 1 << max(size - 1, 0).bit_length()


def human_bytes(size: int) -> str:
    for unit, factor in (("G", 2**30), ("M", 2**20), ("K", 2**10)):
        if size >= factor:
            return f"{size / factor:g}{unit}"
    return f"{size}B"


def render(summary: dict, inputs: list[Path], verdict: tuple[bool, str]) -> str:
    """The text report: header, tables, footer."""
    lines = [f"# nccl_kernel_stats {__version__}", f"# inputs: {' '.join(str(p) for p in inputs)}", "#"]
    lines.append(
        f"# {'collective':<16}{'calls':>9}{'total(ms)':>12}{'mean(us)':>11}{'median(us)':>12}"
        f"{'max(us)':>11}{'share(%)':>10}"
    )
    for row in summary["collectives"]:
        median = f"{row['median_us']:.1f}" if row["median_us"] is not None else "-"
        lines.append(
            f"  {row['collective']:<16}{row['calls']:>9}{row['total_ms']:>12.3f}{row['mean_us']:>11.1f}"
            f"{median:>12}{row['max_us']:>11.1f}{row['share_pct']:>10.2f}"
        )
    lines += ["#", f"# {'input':<30}{'nccl(ms)':>12}{'share(%)':>10}"]
    lines += [
        f"  {row['input']:<30}{row['nccl_ms']:>12.3f}{row['share_pct']:>10.2f}" for row in summary["inputs"]
    ]
    for collective, buckets in summary["message_sizes"].items():
        counts = ", ".join(f"<={human_bytes(size)}: {count}" for size, count in buckets.items())
        lines.append(f"# message sizes {collective}: {counts}")
    ok, reason = verdict
    lines.append(f"# NCCL share of GPU kernel time: {summary['nccl_share_pct']:.2f}%")
    lines.append(f"# {'OK' if ok else 'FAILED'}{': ' + reason if reason else ''}")
    return "\n".join(lines) + "\n"


def judge(summary: dict, max_share: float | None) -> tuple[bool, str]:
    """(ok, reason) of the footer."""
    if not summary["collectives"]:
        return False, "no NCCL kernels found (was NCCL used, and the profile taken with --trace=cuda?)"
    if max_share is not None and summary["nccl_share_pct"] > max_share:
        return False, f"NCCL share {summary['nccl_share_pct']:.2f}% > --max-nccl-share {max_share:g}%"
    return True, ""


def plot(summary: dict, out: Path) -> None:
    """Kernel time per collective (bars) beside the message-size histogram, as a PNG."""
    import matplotlib  # noqa: PLC0415 (only for --plot)

    matplotlib.use("Agg")
    from matplotlib import pyplot  # noqa: PLC0415

    figure, (left, right) = pyplot.subplots(1, 2, figsize=(12, 4.5))
    rows = summary["collectives"]
    left.bar([r["collective"] for r in rows], [r["total_ms"] for r in rows], color="tab:blue")
    left.set_title(f"NCCL kernel time ({summary['nccl_share_pct']:.1f}% of GPU kernel time)")
    left.set_ylabel("total time (ms), all inputs")
    buckets = sorted({size for b in summary["message_sizes"].values() for size in b})
    width = 0.8 / max(len(summary["message_sizes"]), 1)
    for index, (collective, counts) in enumerate(summary["message_sizes"].items()):
        offsets = [i - 0.4 + width * (index + 0.5) for i in range(len(buckets))]
        right.bar(offsets, [counts.get(size, 0) for size in buckets], width=width, label=collective)
    right.set_xticks(range(len(buckets)), [human_bytes(s) for s in buckets], rotation=45)
    right.set_title("NCCL message sizes" if buckets else "no NCCL NVTX payloads (sizes unknown)")
    right.set_xlabel("message size (up to)")
    right.set_ylabel("calls")
    if buckets:
        right.legend()
    figure.tight_layout()
    temporary = out.with_name(f".{out.stem}.partial{out.suffix}")  # same suffix: it picks the format
    figure.savefig(temporary, dpi=100)
    pyplot.close(figure)
    os.replace(temporary, out)


def share(text: str) -> float:
    """--max-nccl-share: a finite percentage from 0 to 100 (nan would make every profile pass)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (a percentage, 0-100)") from None
    if not math.isfinite(value) or not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{text} is not a percentage from 0 to 100")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("inputs", nargs="+", type=Path, help="nsys .sqlite or cuda_gpu_kern_sum .csv exports")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--plot", type=Path, help="write a PNG here")
    parser.add_argument(
        "--max-nccl-share", type=share, help="FAILED above this share of GPU kernel time (%%)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.plot is not None and (args.plot.is_dir() or not args.plot.parent.is_dir()):
            raise InputError(f"--plot {args.plot}: give a file name in an existing folder")
        profiles = [read_input(path) for path in args.inputs]
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = summarize(profiles)
    ok, reason = judge(summary, args.max_nccl_share)
    if args.json:
        print(json.dumps({"version": __version__, "ok": ok, "reason": reason, **summary}, indent=2))
    else:
        sys.stdout.write(render(summary, args.inputs, (ok, reason)))
    if args.plot:
        plot(summary, args.plot)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
