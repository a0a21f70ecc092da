"""Fake sysfs trees laid out like a p4d.24xlarge's, with the EFA driver's real counter names.

The names are those of the upstream Linux EFA driver (``drivers/infiniband/hw/efa/efa_verbs.c``:
device-scope admin and error counters, port-scope traffic, RDMA read/write and SRD network
counters) plus the ``lifespan`` file the RDMA core adds to every ``hw_counters`` folder. Device
names are the ``rdmap<bus>s<slot>`` names EFA devices get; ``device/driver`` links to the driver
folder as on a real host, which is how the exporter tells EFA devices from others.
"""

from __future__ import annotations

from pathlib import Path

DEVICE_COUNTERS = {
    "submitted_cmds": 1284,
    "completed_cmds": 1284,
    "cmds_err": 0,
    "no_completion_cmds": 0,
    "keep_alive_rcvd": 93611,
    "alloc_pd_err": 0,
    "create_qp_err": 0,
    "create_cq_err": 0,
    "reg_mr_err": 0,
    "alloc_ucontext_err": 0,
    "create_ah_err": 0,
    "mmap_err": 0,
    "lifespan": 10,
}
PORT_COUNTERS = {
    "tx_bytes": 9873105602560,
    "tx_pkts": 1120367117,
    "rx_bytes": 9873109961728,
    "rx_pkts": 1120371305,
    "rx_drops": 0,
    "send_bytes": 1602224128,
    "send_wrs": 391168,
    "recv_bytes": 1602228224,
    "recv_wrs": 391169,
    "rdma_read_wrs": 1207959,
    "rdma_read_bytes": 9871503376384,
    "rdma_read_wr_err": 0,
    "rdma_read_resp_bytes": 9871507734528,
    "rdma_write_wrs": 0,
    "rdma_write_bytes": 0,
    "rdma_write_wr_err": 0,
    "rdma_write_recv_bytes": 0,
    "retrans_bytes": 5836800,
    "retrans_pkts": 712,
    "retrans_timeout_events": 0,
    "unresponsive_remote_events": 0,
    "impaired_remote_conn_events": 0,
    "lifespan": 10,
}
# An older driver, from before RDMA write and the SRD network counters, has none of these files.
OLD_DRIVER_ABSENT = {name for name in PORT_COUNTERS if name.startswith(("rdma_write_", "retrans_"))} | {
    "unresponsive_remote_events",
    "impaired_remote_conn_events",
}
PORT_STATE = {"state": "4: ACTIVE", "phys_state": "5: LinkUp", "rate": "100 Gb/sec (4X EDR)"}


def write_device(
    root: Path,
    name: str,
    driver: str = "efa",
    port_counters: dict[str, object] | None = None,
    device_counters: dict[str, object] | None = None,
    port_state: dict[str, str] | None = None,
) -> Path:
    """One RDMA device: ``class/infiniband/<name>`` with its driver link, counters and port 1."""
    pci = root / "devices" / "pci0000:00" / f"0000:00:{len(list((root / 'devices').glob('*/*'))):02x}.0"
    driver_dir = root / "bus" / "pci" / "drivers" / driver
    driver_dir.mkdir(parents=True, exist_ok=True)
    pci.mkdir(parents=True)
    (pci / "driver").symlink_to(driver_dir)
    device = root / "class" / "infiniband" / name
    device.mkdir(parents=True)
    (device / "device").symlink_to(pci)
    if device_counters is not None:
        _write_files(device / "hw_counters", device_counters)
    port = device / "ports" / "1"
    _write_files(port / "hw_counters", PORT_COUNTERS if port_counters is None else port_counters)
    _write_files(port, PORT_STATE if port_state is None else port_state)
    return device


def _write_files(folder: Path, values: dict[str, object]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in values.items():
        (folder / name).write_text(f"{value}\n")
