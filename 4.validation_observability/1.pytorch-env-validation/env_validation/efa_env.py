"""EFA/NCCL environment sanity: the variables set against what the instance and this host have.

Rules come from field failures (FACTS §2): FI_EFA_USE_DEVICE_RDMA=1 where there is no GPUDirect RDMA
aborts libfabric; an EFA instance without /dev/infiniband in the container or without aws-ofi-nccl
silently falls back to TCP sockets; plugin paths that do not exist are ignored by NCCL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from env_validation.instance_types import InstanceType

OFI_NCCL_LIBS = ("opt/amazon/ofi-nccl/lib/libnccl-net.so", "opt/amazon/ofi-nccl/lib/libnccl-net-ofi.so")


@dataclass(frozen=True)
class HostFacts:
    """What this host (or container) shows of EFA."""

    efa_devices: int
    uverbs_devices: int
    ofi_nccl: bool


def host_facts(root: Path = Path("/")) -> HostFacts:
    """Count EFA devices (sysfs, driver efa), /dev/infiniband/uverbs*, and find aws-ofi-nccl."""
    efa = 0
    for device in sorted((root / "sys/class/infiniband").glob("*")):
        driver = device / "device" / "driver"
        if (driver.exists() and driver.resolve().name == "efa") or device.name.startswith("rdmap"):
            efa += 1
    uverbs = len(list((root / "dev/infiniband").glob("uverbs*")))
    ofi = any((root / path).exists() for path in OFI_NCCL_LIBS)
    return HostFacts(efa, uverbs, ofi)


def _plugin_paths(env: Mapping[str, str], root: Path) -> list[str]:
    missing = []
    for name in ("NCCL_NET_PLUGIN", "NCCL_TUNER_PLUGIN"):
        value = env.get(name, "")
        if value.startswith("/") and not (root / value.lstrip("/")).exists():
            missing.append(f"{name}={value} does not exist: NCCL ignores it; fix the path or unset it")
    return missing


def findings(
    env: Mapping[str, str], instance: InstanceType | None, host: HostFacts, root: Path = Path("/")
) -> list[tuple[str, str]]:
    """(FAIL or WARN, what and how to fix) for every rule the environment breaks."""
    found: list[tuple[str, str]] = []
    if env.get("FI_EFA_USE_DEVICE_RDMA") == "1" and instance is not None and not instance.device_rdma:
        found.append(
            (
                "FAIL",
                f"FI_EFA_USE_DEVICE_RDMA=1 on {instance.name}, which has no GPUDirect RDMA: "
                "libfabric aborts; unset it",
            )
        )
    if env.get("FI_PROVIDER") == "efa" and host.efa_devices == 0:
        found.append(
            (
                "FAIL",
                "FI_PROVIDER=efa but no EFA device is visible (/sys/class/infiniband): in a "
                "container pass /dev/infiniband, or run on an EFA instance",
            )
        )
    if instance is not None and instance.efa_devices and host.uverbs_devices == 0:
        found.append(
            (
                "FAIL",
                f"{instance.name} has {instance.efa_devices} EFA devices but /dev/infiniband/uverbs* "
                "is missing: NCCL falls back to TCP sockets; pass the devices into the container "
                "(docker --device, EKS vpc.amazonaws.com/efa)",
            )
        )
    if instance is not None and instance.efa_devices and not host.ofi_nccl and not env.get("NCCL_NET_PLUGIN"):
        found.append(
            (
                "FAIL",
                "aws-ofi-nccl not found (/opt/amazon/ofi-nccl): NCCL cannot use EFA and falls back "
                "to sockets; install it (EFA installer) or set NCCL_NET_PLUGIN",
            )
        )
    found += [("FAIL", text) for text in _plugin_paths(env, root)]
    interfaces = env.get("NCCL_SOCKET_IFNAME", "")
    if interfaces and not interfaces.startswith("^") and "lo" in interfaces.split(","):
        found.append(
            (
                "WARN",
                f"NCCL_SOCKET_IFNAME={interfaces} selects loopback: other nodes cannot connect; "
                "use ^docker,lo,veth (^lo on Kubernetes)",
            )
        )
    if instance is not None and instance.nvlink_gbytes_per_s_per_gpu:
        for name in ("NCCL_P2P_DISABLE", "NCCL_SHM_DISABLE"):
            if env.get(name) == "1":
                found.append(
                    ("WARN", f"{name}=1 on {instance.name} bypasses NVLink: collectives run far slower")
                )
    return found


def examined(env: Mapping[str, str]) -> list[str]:
    """The FI_* and NCCL_* variables set (what the check looked at)."""
    return sorted(name for name in env if name.startswith(("FI_", "NCCL_")))
