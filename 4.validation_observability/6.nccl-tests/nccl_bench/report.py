"""Read nccl-tests logs (or collective_bench output): table, verdict, CSV, JSON and a busbw plot.

    python nccl_report.py all_reduce.log --instance-type p5.48xlarge [--csv out.csv] [--plot out.png]

Every nccl-tests table format since 2.0 is read by its column header; a ``.json`` file that nccl-tests
wrote with ``-J`` is read too, and a log that names one (``# Writing JSON output to ...``) takes its
numbers from it when the file is there (next to the log, or at the path printed).

The node count for the instance band comes from the hosts in the log's device lines (``--nodes``
overrides it). Exit status: 0 every log OK, 1 a log FAILED (truncated, wrong results, sockets instead
of EFA, peak busbw below the threshold), 2 bad input.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nccl_bench import __version__, formulas, inputs, instance_types, output_contract
from nccl_bench.nccl_output import NcclOutputError, NcclTestsOutput, parse, parse_json, with_json
from nccl_bench.verdict import (
    MIN_BUSBW_ENV,
    Thresholds,
    Verdict,
    band_applies,
    band_note,
    judge,
    resolve_min_busbw,
)

TOOL = "nccl-report"
CSV_COLUMNS = [
    "log",
    "size_bytes",
    "count",
    "type",
    "redop",
    "root",
    "oop_time_us",
    "oop_algbw_gbytes_per_s",
    "oop_busbw_gbytes_per_s",
    "oop_wrong",
    "ip_time_us",
    "ip_algbw_gbytes_per_s",
    "ip_busbw_gbytes_per_s",
    "ip_wrong",
    "oop_error",
    "ip_error",
]


class ReportError(ValueError):
    """Bad input to the report; the message names it and the fix."""


@dataclass
class Judged:
    """One log, parsed and judged."""

    path: Path
    run: NcclTestsOutput
    thresholds: Thresholds
    verdict: Verdict


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nccl_report.py", description=__doc__.split("\n")[0])
    parser.add_argument("logs", nargs="+", type=Path, help="nccl-tests or collective_bench output files")
    parser.add_argument(
        "--instance-type", default=None, help=f"judge against its band (env {instance_types.TYPE_ENV})"
    )
    parser.add_argument("--instance-types", default=None, help="path of instance-types.yaml")
    parser.add_argument("--nodes", type=int, default=None, help="node count (default: hosts in the log)")
    parser.add_argument(
        "--min-busbw",
        type=float,
        default=None,
        help=f"GB/s, wins over the band; env {MIN_BUSBW_ENV}",
    )
    parser.add_argument("--judge-min-bytes", default=None, help="judge the peak from this size (default 1G)")
    parser.add_argument("--csv", type=Path, default=None, help="write every row of every log to this CSV")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the tables")
    parser.add_argument("--plot", type=Path, default=None, help="write busbw by size as PNG")
    return parser


def _min_busbw(args: argparse.Namespace) -> float | None:
    return resolve_min_busbw(args.min_busbw, ReportError)


def thresholds_for(run: NcclTestsOutput, args: argparse.Namespace, path: Path) -> Thresholds:
    """The log's thresholds: --min-busbw and/or the named instance type's band for the log's node count."""
    judge_min = instance_types.DEFAULT_JUDGE_MIN_BYTES
    if args.judge_min_bytes is not None:
        judge_min = formulas.parse_size(args.judge_min_bytes)
    name = args.instance_type or os.environ.get(instance_types.TYPE_ENV)
    base = Thresholds(min_busbw=_min_busbw(args), judge_min_bytes=judge_min)
    if not name:  # this machine's DMI says nothing about where the log was recorded
        return base
    facts = instance_types.resolve(name, args.instance_types)
    if facts is None:
        return base
    if not band_applies(run.test):
        return Thresholds(base.min_busbw, judge_min_bytes=judge_min, note=band_note(run.test, facts.name))
    nodes = args.nodes or run.nodes
    if not nodes:
        raise ReportError(f"{path}: no device lines to count nodes from; pass --nodes")
    return Thresholds(
        min_busbw=base.min_busbw,
        band=facts.busbw_band(nodes),
        band_source=f"{facts.name}, {nodes} node(s)",
        judge_min_bytes=facts.judge_min_bytes if args.judge_min_bytes is None else judge_min,
        expect_efa=facts.efa_devices > 0,
    )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError as exc:
        raise ReportError(f"cannot read {path}: {exc.strerror}; pass an nccl-tests output file") from None


def json_beside(log: Path, printed: str) -> Path | None:
    """The JSON file a log names: next to the log (results copied together), else at the printed path."""
    for candidate in (log.parent / Path(printed).name, Path(printed)):
        if candidate.is_file():
            return candidate
    return None


def read_log(path: Path) -> NcclTestsOutput:
    """Parse one log, with the numbers of the -J JSON it names when that reads; ReportError for the log.

    A JSON cut short (the run died while writing it) leaves the log to be judged on its own table.
    """
    try:
        run = parse(_read_text(path))
    except NcclOutputError as exc:
        raise ReportError(f"{path}: {exc}") from None
    found = json_beside(path, run.json_path) if run.json_path else None
    if found is None:
        return run
    try:
        return with_json(run, parse_json(_read_text(found)), found.name)
    except NcclOutputError as exc:
        run.source = f"text ({found.name} not read: {exc})"
        return run


def summary_lines(item: Judged) -> list[str]:
    """Header, compact table and verdict footer of one log."""
    run, threshold = item.run, item.thresholds.threshold
    models = sorted({device.name for device in run.devices})
    facts = {
        "log": item.path,
        "test": run.test,
        "nccl-tests": run.tests_version,
        "NCCL": run.nccl_version,
        "network": run.network,
        "ranks": f"{run.ranks} on {run.nodes} node(s)" if run.devices else None,
        "devices": ", ".join(models) or None,
        "threshold": f"{threshold[0]:g} GB/s ({threshold[1]})" if threshold else None,
        "read from": run.source,
    }
    rows = [
        (
            row.size_bytes,
            row.count,
            row.out_of_place.busbw,
            row.in_place.busbw if row.in_place else None,
            row.wrong if row.checked else None,
        )
        for row in run.rows
    ]
    lines = output_contract.header(TOOL, __version__, facts)
    lines += output_contract.table(["size(B)", "count", "oop busbw", "ip busbw", "#wrong"], rows)
    verdict = item.verdict
    peak = (
        "N/A"
        if verdict.peak_busbw is None
        else f"{verdict.peak_busbw:.2f} GB/s at {verdict.peak_size_bytes} B"
    )
    lines += [
        f"# Avg bus bandwidth : {run.avg_busbw if run.complete else 'N/A (no footer)'}",
        f"# Peak busbw : {peak}",
    ]
    lines += [f"# Note : {note}" for note in verdict.notes]
    return lines + output_contract.footer(verdict.failures, "Verdict")


def write_csv(path: Path, items: Sequence[Judged]) -> None:
    """Every row of every log, one CSV line each (N/A cells empty)."""
    handle = io.StringIO(newline="")
    writer = csv.writer(handle)
    writer.writerow(CSV_COLUMNS)
    for item in items:
        for row in item.run.rows:
            groups, errors = [], []
            for group in (row.out_of_place, row.in_place):
                values = (group.time_us, group.algbw, group.busbw, group.wrong) if group else (None,) * 4
                groups += ["" if value is None else value for value in values]
                errors.append("" if group is None or group.error is None else group.error)
            writer.writerow(
                [item.path, row.size_bytes, row.count, row.dtype, row.redop, row.root, *groups, *errors]
            )
    inputs.write_text(path, handle.getvalue(), "--csv")


def _judge_all(args: argparse.Namespace) -> list[Judged]:
    for flag, path in (("--csv", args.csv), ("--plot", args.plot)):
        if path is not None:  # before any work: a bad output path never costs a run's judging
            inputs.output_path(path, flag)
    items = []
    for path in args.logs:
        run = read_log(path)
        thresholds = thresholds_for(run, args, path)
        items.append(Judged(path, run, thresholds, judge(run, thresholds)))
    return items


def _outputs(args: argparse.Namespace, items: list[Judged]) -> None:
    if args.csv:
        write_csv(args.csv, items)
    if args.plot:
        _plot(args.plot, items)
    if args.json:
        documents = [
            {"log": str(item.path), **item.run.to_dict(), "verdict": item.verdict.to_dict()} for item in items
        ]
        sys.stdout.write(output_contract.to_json({"tool": TOOL, "version": __version__, "runs": documents}))
    else:
        for item in items:
            print("\n".join(summary_lines(item)))


def _plot(path: Path, items: list[Judged]) -> None:
    """The busbw plot; a missing matplotlib costs the picture, never the verdict."""
    try:
        from nccl_bench.plot import plot_busbw  # noqa: PLC0415 - matplotlib only when plotting

        band = next((item.thresholds.band for item in items if item.thresholds.band), None)
        # Drawn under a temporary name beside the target (same suffix: it picks the format), then renamed.
        temporary = path.with_name(f".{path.stem}.partial{path.suffix}")
        plot_busbw(
            [(item.path.stem, item.run) for item in items], temporary, band, title=items[0].run.test or ""
        )
        os.replace(temporary, path)
    except ImportError as exc:
        print(f"warning: no plot ({exc}); pip install matplotlib for {path}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 all OK, 1 a log FAILED, 2 bad input (one line on stderr)."""
    args = _parser().parse_args(argv)
    try:
        items = _judge_all(args)
        _outputs(args, items)
    except (ReportError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if all(item.verdict.ok for item in items) else 1
