#!/usr/bin/env python3
"""Training step metrics (``metrics.jsonl``) as a node-exporter textfile, so Prometheus scrapes them.

The training scripts of this repository write one JSON record per log step to ``<run_dir>/metrics.jsonl``
(the test-case contract's keys: ``step, loss, tokens_per_s`` or ``samples_per_s`` per device, ``tflops,
mfu_pct, mem_gib, step_time_s``, plus ``lr``, ``epoch`` or ``grad_norm``) and event records with an
``event`` key (``start``, ``checkpoint``, ``resume``, ``eval``/``val``, ``summary``). This tool turns
the newest of them into Prometheus gauges in the node exporter's textfile-collector format, written
atomically to ``<textfile-dir>/training_<run>.prom``:

- every numeric field of the newest step record -> ``training_<field>{run}``, with the unit in the
  field name turned into Prometheus base units (``_per_s`` -> ``_per_second``, ``_s`` -> ``_seconds``,
  ``_ms`` -> ``_seconds``, ``_gib``/``_mib`` -> ``_bytes``, ``_pct`` -> ``_ratio``), so
  ``samples_per_s`` is ``training_samples_per_second``, ``mem_gib`` is ``training_mem_bytes`` and
  ``mfu_pct`` 38.5 is ``training_mfu_ratio`` 0.385; fields it does not know pass through by name;
- every numeric field of the newest event of each kind -> ``training_<event>_<field>{run}``
  (``training_eval_accuracy``, ``training_checkpoint_step``; ``val_loss`` of a ``val`` event is
  ``training_val_loss``; the ``summary`` event is ``training_run_*``), and
  ``training_events_total{run, event}`` counts them;
- ``training_last_update_timestamp_seconds{run}`` (modification time of metrics.jsonl) and
  ``training_metrics_malformed_lines{run}`` (lines that are not JSON objects; a line still being
  written, without its newline, is not read yet).

Usage::

    python3 training_textfile.py RUN_DIR --textfile-dir /var/lib/node_exporter/textfile [--run NAME]
    python3 training_textfile.py RUN_DIR --textfile-dir DIR --follow [--interval 15]

``--follow`` rereads what was appended every ``--interval`` seconds until SIGTERM/SIGINT, then
removes its file (``--keep`` keeps it). Exit status 2 on bad input, with one line naming the fix.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest, write_to_textfile

PREFIX = "training"
METRICS_FILE = "metrics.jsonl"
# (suffix in the JSON field, suffix of the metric, factor to the base unit); first match wins.
# Event names that would put a Prometheus type word into metric names (promtool lint rejects them).
EVENT_ALIASES = {"summary": "run"}
UNIT_SUFFIXES = (
    ("_per_s", "_per_second", 1.0),
    ("_ms", "_seconds", 1e-3),
    ("_s", "_seconds", 1.0),
    ("_gib", "_bytes", 2.0**30),
    ("_mib", "_bytes", 2.0**20),
    ("_pct", "_ratio", 1e-2),
)


class InputError(ValueError):
    """Bad input; the message names the value and the fix."""


def metric_name(field_name: str, prefix: str = PREFIX) -> tuple[str, float]:
    """(name, scale) of a JSON field: ``samples_per_s`` -> (``training_samples_per_second``, 1.0)."""
    name = re.sub(r"[^a-z0-9_]+", "_", field_name.lower()).strip("_") or "value"
    scale = 1.0
    for suffix, replacement, factor in UNIT_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            name, scale = name[: -len(suffix)] + replacement, factor
            break
    return f"{prefix}_{name}", scale


def numeric_fields(record: dict) -> dict[str, float]:
    """The fields that are numbers (NaN and infinities included; booleans and strings are not)."""
    return {
        key: float(value)
        for key, value in record.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


@dataclass
class RunMetrics:
    """What the metrics file said so far: newest step, newest event of each kind, counts."""

    step: dict[str, float] = field(default_factory=dict)
    events: dict[str, dict[str, float]] = field(default_factory=dict)
    event_counts: dict[str, int] = field(default_factory=dict)
    malformed: int = 0
    mtime: float = 0.0

    def add_line(self, line: str) -> None:
        """Fold one complete line into the state."""
        if not line.strip():
            return
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            self.malformed += 1
            return
        if not isinstance(record, dict):
            self.malformed += 1
        elif isinstance(record.get("event"), str):
            event = record["event"]
            self.events[event] = numeric_fields(record)
            self.event_counts[event] = self.event_counts.get(event, 0) + 1
        elif "step" in record:
            self.step = numeric_fields(record)


class MetricsFollower:
    """Reads a growing metrics.jsonl incrementally: only complete lines, restarting if it shrinks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.state = RunMetrics()
        self._offset = 0

    def poll(self) -> bool:
        """Read what was appended since the last poll; True when anything changed."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return False
        if stat.st_size < self._offset:  # truncated or replaced: start over
            self.state, self._offset = RunMetrics(), 0
        if stat.st_size == self._offset and stat.st_mtime == self.state.mtime:
            return False
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        for line in complete.decode(errors="replace").splitlines():
            self.state.add_line(line)
        self.state.mtime = stat.st_mtime
        return True


class TrainingCollector:
    """prometheus_client collector over a RunMetrics state."""

    def __init__(self, state: RunMetrics, run: str) -> None:
        self.state = state
        self.run = run

    def collect(self) -> Iterator[Metric]:
        emitted: set[str] = set()
        for family in self._families():
            if family.name not in emitted:  # a step field and an event field may map to one name
                emitted.add(family.name)
                yield family

    def _families(self) -> Iterator[Metric]:
        for key, raw in self.state.step.items():
            name, scale = metric_name(key)
            yield self._gauge(name, f"newest step record: {key}", raw * scale)
        for event, values in sorted(self.state.events.items()):
            prefix = EVENT_ALIASES.get(event, event)
            for key, raw in values.items():
                name, scale = metric_name(key if key.startswith(f"{prefix}_") else f"{prefix}_{key}")
                yield self._gauge(name, f"newest {event} event: {key}", raw * scale)
        counts = CounterMetricFamily(f"{PREFIX}_events", "event records so far", labels=["run", "event"])
        for event, count in sorted(self.state.event_counts.items()):
            counts.add_metric([self.run, event], count)
        yield counts
        yield self._gauge(
            f"{PREFIX}_last_update_timestamp_seconds", "mtime of metrics.jsonl", self.state.mtime
        )
        yield self._gauge(
            f"{PREFIX}_metrics_malformed_lines", "lines that are not JSON objects", self.state.malformed
        )

    def _gauge(self, name: str, help_text: str, value: float) -> GaugeMetricFamily:
        gauge = GaugeMetricFamily(name, help_text, labels=["run"])
        gauge.add_metric([self.run], value)
        return gauge


def registry_for(state: RunMetrics, run: str) -> CollectorRegistry:
    """A registry holding only the training collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TrainingCollector(state, run))
    return registry


def render(state: RunMetrics, run: str) -> str:
    """The textfile content for ``state`` (what ``write`` puts on disk)."""
    return generate_latest(registry_for(state, run)).decode()


def write(state: RunMetrics, run: str, path: Path) -> None:
    """Write the textfile atomically (a temporary file in the same folder, then a rename)."""
    write_to_textfile(str(path), registry_for(state, run))


def resolve_metrics_file(source: Path) -> Path:
    """A run folder (which may not exist yet) or a ``.jsonl`` file -> the metrics file."""
    return source if source.suffix == ".jsonl" or source.is_file() else source / METRICS_FILE


def check_textfile_dir(folder: Path) -> None:
    if not folder.is_dir():
        raise InputError(
            f"--textfile-dir {folder} is not a folder; pass the node exporter's "
            "--collector.textfile.directory (create it first)"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="run folder (holding metrics.jsonl) or the metrics file")
    parser.add_argument("--textfile-dir", type=Path, required=True, help="node exporter textfile folder")
    parser.add_argument("--run", help="value of the run label (default: the run folder's name)")
    parser.add_argument("--follow", action="store_true", help="keep updating until SIGTERM/SIGINT")
    parser.add_argument("--interval", type=float, default=15.0, help="seconds between updates (default 15)")
    parser.add_argument("--keep", action="store_true", help="with --follow: leave the file when stopped")
    return parser.parse_args(argv)


def run_label(args: argparse.Namespace, metrics_file: Path) -> str:
    return args.run or metrics_file.resolve().parent.name


def follow(follower: MetricsFollower, run: str, out: Path, interval: float, keep: bool) -> int:
    """Update ``out`` whenever the metrics file grows, until SIGTERM or SIGINT."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"training-textfile: following {follower.path} -> {out} every {interval:g}s", flush=True)
    while not stop.is_set():
        if follower.poll():
            write(follower.state, run, out)
        stop.wait(interval)
    if not keep:
        out.unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    metrics_file = resolve_metrics_file(args.source)
    try:
        check_textfile_dir(args.textfile_dir)
        if not math.isfinite(args.interval) or args.interval <= 0:
            raise InputError(f"--interval {args.interval:g} must be a positive number of seconds, e.g. 15")
        if not args.follow and not metrics_file.is_file():
            raise InputError(
                f"{metrics_file} does not exist; pass a run folder of a training run (its --run-dir), "
                "or --follow to wait for it"
            )
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    run = run_label(args, metrics_file)
    out = args.textfile_dir / f"{PREFIX}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', run)}.prom"
    follower = MetricsFollower(metrics_file)
    if args.follow:
        return follow(follower, run, out, args.interval, args.keep)
    follower.poll()
    state = follower.state
    if not state.step and not state.events:
        print(
            f"error: {metrics_file} holds no training records ({state.malformed} lines that are not); "
            "pass the metrics.jsonl of a training run, or --follow to wait for its first step",
            file=sys.stderr,
        )
        return 2
    write(state, run, out)
    print(f"training-textfile: wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
