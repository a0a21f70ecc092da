"""Fixtures: fake sysfs trees (see ``efa_sysfs.py``); the exporter and helpers importable by name."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

for folder in (Path(__file__).resolve().parents[1], Path(__file__).resolve().parent):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from efa_sysfs import DEVICE_COUNTERS, OLD_DRIVER_ABSENT, PORT_COUNTERS, PORT_STATE, write_device  # noqa: E402


@pytest.fixture
def p4d_sysfs(tmp_path: Path) -> Path:
    """A p4d-like node: four EFA devices and one non-EFA RDMA device (ignored by the exporter).

    rdmap16s27: current driver, device and port counters.
    rdmap32s27: current driver; its port's ``rate`` is missing and ``rx_drops`` is ``N/A``.
    rdmap144s27: an older driver: no device-scope folder, no RDMA write or SRD counters.
    rdmap160s27: port DOWN, and ``tx_pkts`` unreadable (a folder where a file should be).
    mlx5_0: a Mellanox device (driver mlx5_core).
    """
    root = tmp_path / "sys"
    write_device(root, "rdmap16s27", device_counters=DEVICE_COUNTERS)
    write_device(
        root,
        "rdmap32s27",
        device_counters=DEVICE_COUNTERS,
        port_counters={**PORT_COUNTERS, "rx_drops": "N/A"},
        port_state={k: v for k, v in PORT_STATE.items() if k != "rate"},
    )
    old = {k: v for k, v in PORT_COUNTERS.items() if k not in OLD_DRIVER_ABSENT}
    write_device(root, "rdmap144s27", port_counters=old)
    down = write_device(
        root,
        "rdmap160s27",
        device_counters=DEVICE_COUNTERS,
        port_state={"state": "1: DOWN", "phys_state": "3: Disabled", "rate": "100 Gb/sec (4X EDR)"},
    )
    tx_pkts = down / "ports" / "1" / "hw_counters" / "tx_pkts"
    tx_pkts.unlink()
    tx_pkts.mkdir()
    write_device(
        root, "mlx5_0", driver="mlx5_core", port_counters={"out_of_buffer": 7, "rx_write_requests": 9}
    )
    return root


@pytest.fixture
def make_sysfs(tmp_path: Path) -> Callable[..., Path]:
    """Build a custom tree: ``make_sysfs(("rdmap0s6", {...port counters...}), ...)``."""

    def build(*devices: tuple[str, dict[str, object]]) -> Path:
        root = tmp_path / "custom-sys"
        root.mkdir(exist_ok=True)
        for name, counters in devices:
            write_device(root, name, port_counters=counters)
        return root

    return build
