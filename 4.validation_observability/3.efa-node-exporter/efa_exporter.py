#!/usr/bin/env python3
"""Prometheus exporter for Amazon EFA devices: every hardware counter the driver exposes, per port.

Reads, under ``--sysfs-root`` (default ``/sys``), each RDMA device of ``class/infiniband`` whose
driver is ``efa``:

- ``<dev>/ports/<port>/hw_counters/<name>`` -> counter ``efa_<name>_total{device, port}``
- ``<dev>/hw_counters/<name>`` (device scope)  -> counter ``efa_device_<name>_total{device}``
- ``lifespan`` in either folder is the driver's counter refresh interval, not a counter:
  gauge ``efa_hw_counters_lifespan_seconds`` (``efa_device_...`` at device scope)
- ``ports/<port>/state``, ``phys_state``, ``rate`` -> gauges ``efa_port_state_id``,
  ``efa_port_active`` (1 when ACTIVE), ``efa_port_physical_state_id``, ``efa_port_rate_bytes_per_second``

Nothing is declared in advance: a counter appears when its file exists (the set differs by
kernel, driver and Nitro version) and only then. Every scrape also reports ``efa_devices``,
``efa_scrape_errors`` (files that could not be read or parsed in this scrape; each is logged once
to stderr) and ``efa_scrape_duration_seconds``, plus ``efa_exporter_info{version}``.

Usage::

    python3 efa_exporter.py [--listen-address 0.0.0.0] [--port 9109] [--sysfs-root /sys]
    python3 efa_exporter.py --once            # print the metrics once (text format) and exit

Exit status: 0 on SIGTERM/SIGINT; 2 on bad input (missing sysfs root, port in use), with one line
on stderr naming the value and the fix.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import start_http_server
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest

__version__ = "1.0.0"
DEFAULT_PORT = 9109
EFA_DRIVER = "efa"
# Files in hw_counters that are settings, not event counts: (name, help, scale to base unit).
GAUGE_COUNTERS = {
    "lifespan": ("hw_counters_lifespan_seconds", "Driver refresh interval of hw_counters", 1e-3)
}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*Gb/sec")
_STATE = re.compile(r"^\s*(\d+)\s*:\s*(\S+)")
_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")


@dataclass(frozen=True)
class Sample:
    """One value for one metric family."""

    family: str
    kind: str  # "counter" or "gauge"
    help: str
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass
class Snapshot:
    """Everything one scrape read: samples, the number of EFA devices, and what went wrong."""

    samples: list[Sample] = field(default_factory=list)
    devices: int = 0
    errors: list[str] = field(default_factory=list)


def metric_name(counter: str) -> str:
    """A sysfs file name as a Prometheus name fragment (anything unexpected becomes ``_``)."""
    return _UNSAFE.sub("_", counter)


def natural_key(path: Path) -> list[int | str]:
    """Sort key that orders rdmap16s27 before rdmap144s27 and port 2 before port 10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def is_efa(device_dir: Path) -> bool:
    """True when the RDMA device's driver (``device/driver`` link) is the EFA driver."""
    driver = device_dir / "device" / "driver"
    return driver.exists() and driver.resolve().name == EFA_DRIVER


def read_text(path: Path, snapshot: Snapshot) -> str | None:
    """The stripped content of a sysfs file, or None (and an error recorded) when unreadable."""
    try:
        return path.read_bytes().decode("utf-8").strip()
    except UnicodeDecodeError:
        snapshot.errors.append(f"{path}: not UTF-8 text")
        return None
    except OSError as exc:
        snapshot.errors.append(f"{path}: {exc.strerror or exc}")
        return None


def read_counters(folder: Path, scope: str, labels: tuple, snapshot: Snapshot) -> None:
    """Every file of a ``hw_counters`` folder (``scope`` "device" or "port") as a sample.

    A file that cannot be read or holds no integer is an error of this scrape, never a value.
    """
    prefix = "efa_device_" if scope == "device" else "efa_"
    for path in sorted(folder.iterdir()):
        text = read_text(path, snapshot)
        if text is None:
            continue
        try:
            value = int(text)
        except ValueError:
            snapshot.errors.append(f"{path}: not an integer: {text[:40]!r}")
            continue
        if value < 0:  # hardware counters only grow: a negative one is a driver or file fault
            snapshot.errors.append(f"{path}: negative counter {value}")
            continue
        if path.name in GAUGE_COUNTERS:
            name, help_text, scale = GAUGE_COUNTERS[path.name]
            snapshot.samples.append(Sample(f"{prefix}{name}", "gauge", help_text, labels, value * scale))
        else:
            help_text = f"EFA {scope} counter hw_counters/{path.name}"
            family = f"{prefix}{metric_name(path.name)}"
            snapshot.samples.append(Sample(family, "counter", help_text, labels, value))


def read_port_state(port_dir: Path, labels: tuple, snapshot: Snapshot) -> None:
    """Port state, physical state and rate as gauges (each only when its file exists)."""
    for filename, family, help_text in (
        ("state", "efa_port_state_id", "Port state number (4 = ACTIVE)"),
        ("phys_state", "efa_port_physical_state_id", "Physical port state number (5 = LinkUp)"),
    ):
        if not (port_dir / filename).exists():
            continue
        text = read_text(port_dir / filename, snapshot)
        match = _STATE.match(text or "")
        if text is not None and not match:
            snapshot.errors.append(f"{port_dir / filename}: expected '<n>: <NAME>', got {text[:40]!r}")
        if match:
            snapshot.samples.append(Sample(family, "gauge", help_text, labels, int(match.group(1))))
            if filename == "state":
                active = 1 if match.group(2) == "ACTIVE" else 0
                snapshot.samples.append(Sample("efa_port_active", "gauge", "1 when ACTIVE", labels, active))
    if (port_dir / "rate").exists():
        text = read_text(port_dir / "rate", snapshot)
        match = _RATE.match(text or "")
        if text is not None and not match:
            snapshot.errors.append(f"{port_dir / 'rate'}: expected '<n> Gb/sec ...', got {text[:40]!r}")
        if match:
            rate = float(match.group(1)) * 1e9 / 8
            snapshot.samples.append(
                Sample("efa_port_rate_bytes_per_second", "gauge", "Port line rate", labels, rate)
            )


def read_device(device_dir: Path, snapshot: Snapshot) -> None:
    """Device-scope counters, then each port's counters and state."""
    device = (("device", device_dir.name),)
    if (device_dir / "hw_counters").is_dir():
        read_counters(device_dir / "hw_counters", "device", device, snapshot)
    ports = device_dir / "ports"
    port_dirs = sorted(ports.iterdir(), key=natural_key) if ports.is_dir() else []
    for port_dir in port_dirs:
        labels = (*device, ("port", port_dir.name))
        if (port_dir / "hw_counters").is_dir():
            read_counters(port_dir / "hw_counters", "port", labels, snapshot)
        read_port_state(port_dir, labels, snapshot)


def read_efa(sysfs_root: Path) -> Snapshot:
    """One scrape of every EFA device under ``sysfs_root/class/infiniband``."""
    snapshot = Snapshot()
    class_dir = sysfs_root / "class" / "infiniband"
    if not class_dir.is_dir():
        return snapshot  # no RDMA devices on this node: nothing to report, not an error
    for device_dir in sorted(class_dir.iterdir(), key=natural_key):
        try:
            if not is_efa(device_dir):
                continue
            snapshot.devices += 1
            read_device(device_dir, snapshot)
        except OSError as exc:  # a device removed or unreadable mid-scrape
            snapshot.errors.append(f"{device_dir}: {exc.strerror or exc}")
    return snapshot


class EfaCollector:
    """A prometheus_client collector that reads sysfs on every scrape."""

    def __init__(self, sysfs_root: Path, log=sys.stderr) -> None:
        self.sysfs_root = sysfs_root
        self._log = log
        self._logged: set[str] = set()

    def collect(self) -> Iterator[Metric]:
        started = time.monotonic()
        snapshot = read_efa(self.sysfs_root)
        yield from families(snapshot.samples)
        self._log_new_errors(snapshot.errors)
        yield _gauge("efa_devices", "EFA devices found", snapshot.devices)
        yield _gauge(
            "efa_scrape_errors", "sysfs files unreadable or unparsable in this scrape", len(snapshot.errors)
        )
        info = GaugeMetricFamily("efa_exporter_info", "Exporter version", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        yield _gauge("efa_scrape_duration_seconds", "Time to read sysfs", time.monotonic() - started)

    def _log_new_errors(self, errors: list[str]) -> None:
        """Each distinct error once per process, so a broken file does not flood the journal."""
        for error in errors:
            if error not in self._logged:
                self._logged.add(error)
                print(f"efa-exporter: warning: {error}", file=self._log, flush=True)


def families(samples: list[Sample]) -> Iterator[Metric]:
    """Group samples into metric families, in first-seen order."""
    grouped: dict[str, list[Sample]] = {}
    for sample in samples:
        grouped.setdefault(sample.family, []).append(sample)
    for name, members in grouped.items():
        first = members[0]
        label_names = [key for key, _ in first.labels]
        cls = CounterMetricFamily if first.kind == "counter" else GaugeMetricFamily
        family = cls(name, first.help, labels=label_names)
        for sample in members:
            family.add_metric([value for _, value in sample.labels], sample.value)
        yield family


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


def registry_for(sysfs_root: Path) -> CollectorRegistry:
    """A registry holding only the EFA collector (no process or platform metrics)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EfaCollector(sysfs_root))
    return registry


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listen-address", default="0.0.0.0", help="address to bind (default %(default)s)")  # noqa: S104
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="0 picks a free port (default %(default)s)"
    )
    parser.add_argument("--sysfs-root", type=Path, default=Path("/sys"), help="default %(default)s")
    parser.add_argument("--once", action="store_true", help="print the metrics once and exit")
    parser.add_argument("--version", action="version", version=f"efa-exporter {__version__}")
    return parser.parse_args(argv)


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def serve(args: argparse.Namespace, registry: CollectorRegistry) -> int:
    """Serve /metrics until SIGTERM or SIGINT."""
    try:
        server, _ = start_http_server(args.port, addr=args.listen_address, registry=registry)
    except OSError as exc:
        return fail(
            f"cannot listen on {args.listen_address}:{args.port} ({exc.strerror or exc}); "
            "pass a free --port or another --listen-address"
        )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    host, port = server.server_address[:2]
    devices = read_efa(args.sysfs_root).devices
    print(
        f"efa-exporter {__version__}: serving http://{host}:{port}/metrics "
        f"({devices} EFA devices under {args.sysfs_root / 'class' / 'infiniband'})",
        flush=True,
    )
    stop.wait()
    server.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.sysfs_root.is_dir():
        return fail(f"--sysfs-root {args.sysfs_root} is not a folder; pass the sysfs mount (default /sys)")
    if not 0 <= args.port <= 65535:
        return fail(f"--port {args.port} is out of range; pass 0..65535")
    registry = registry_for(args.sysfs_root)
    if args.once:
        sys.stdout.write(generate_latest(registry).decode())
        return 0
    return serve(args, registry)


if __name__ == "__main__":
    sys.exit(main())
