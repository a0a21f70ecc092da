"""EFA/NCCL environment rules on host trees made here (sysfs, /dev, /opt) and instance facts."""

from __future__ import annotations

from pathlib import Path

import pytest
from env_validation.efa_env import HostFacts, findings, host_facts
from env_validation.instance_types import find_file, load

TYPES = load(find_file())
P5_HOST = HostFacts(efa_devices=32, uverbs_devices=32, ofi_nccl=True)
BARE = HostFacts(efa_devices=0, uverbs_devices=0, ofi_nccl=False)


def make_host(root: Path, devices: int, uverbs: int, ofi: bool) -> Path:
    """A tree shaped like an EFA host: sysfs devices bound to the efa driver, uverbs, aws-ofi-nccl."""
    driver = root / "sys/bus/pci/drivers/efa"
    driver.mkdir(parents=True)
    for index in range(devices):
        device = root / f"sys/class/infiniband/rdmap{79 + index}s0/device"
        device.mkdir(parents=True)
        (device / "driver").symlink_to(driver)
    (root / "dev/infiniband").mkdir(parents=True)
    for index in range(uverbs):
        (root / f"dev/infiniband/uverbs{index}").touch()
    if ofi:
        (root / "opt/amazon/ofi-nccl/lib").mkdir(parents=True)
        (root / "opt/amazon/ofi-nccl/lib/libnccl-net-ofi.so").touch()
    return root


def test_host_facts_from_a_tree(tmp_path):
    assert host_facts(make_host(tmp_path / "p5", 32, 32, True)) == P5_HOST
    assert host_facts(make_host(tmp_path / "container", 32, 0, True)) == HostFacts(32, 0, True)
    assert host_facts(tmp_path / "empty") == BARE  # this machine's case: nothing there at all


@pytest.mark.parametrize(
    ("env", "instance", "host", "expected"),
    [
        ({}, None, BARE, []),
        ({"FI_PROVIDER": "efa", "FI_EFA_USE_DEVICE_RDMA": "1"}, "p5.48xlarge", P5_HOST, []),
        (
            {"FI_EFA_USE_DEVICE_RDMA": "1"},
            "g5.48xlarge",
            HostFacts(1, 1, True),
            [("FAIL", "FI_EFA_USE_DEVICE_RDMA=1 on g5.48xlarge, which has no GPUDirect RDMA")],
        ),
        ({"FI_PROVIDER": "efa"}, None, BARE, [("FAIL", "FI_PROVIDER=efa but no EFA device is visible")]),
        (
            {},
            "p5.48xlarge",
            HostFacts(32, 0, True),
            [("FAIL", "/dev/infiniband/uverbs* is missing: NCCL falls back to TCP sockets")],
        ),
        ({}, "p4d.24xlarge", HostFacts(4, 4, False), [("FAIL", "aws-ofi-nccl not found")]),
        (
            {"NCCL_NET_PLUGIN": "/opt/aws-ofi-nccl/lib/libnccl-net.so"},
            "p4d.24xlarge",
            HostFacts(4, 4, False),
            [("FAIL", "NCCL_NET_PLUGIN=/opt/aws-ofi-nccl/lib/libnccl-net.so does not exist")],
        ),
        (
            {"NCCL_TUNER_PLUGIN": "/opt/amazon/ofi-nccl/lib/libnccl-ofi-tuner.so"},
            None,
            BARE,
            [("FAIL", "NCCL_TUNER_PLUGIN=/opt/amazon/ofi-nccl/lib/libnccl-ofi-tuner.so does not exist")],
        ),
        ({"NCCL_SOCKET_IFNAME": "lo"}, None, BARE, [("WARN", "NCCL_SOCKET_IFNAME=lo selects loopback")]),
        ({"NCCL_SOCKET_IFNAME": "^docker,lo,veth"}, None, BARE, []),
        (
            {"NCCL_P2P_DISABLE": "1"},
            "p5.48xlarge",
            P5_HOST,
            [("WARN", "NCCL_P2P_DISABLE=1 on p5.48xlarge bypasses NVLink")],
        ),
    ],
)
def test_rules(env, instance, host, expected, tmp_path):
    got = findings(env, TYPES[instance] if instance else None, host, root=tmp_path)
    assert [status for status, _ in got] == [status for status, _ in expected]
    for (_, text), (_, want) in zip(got, expected, strict=True):
        assert want in text


def test_tuner_plugin_that_exists_is_fine(tmp_path):
    root = make_host(tmp_path, 32, 32, True)
    (root / "opt/amazon/ofi-nccl/lib/libnccl-ofi-tuner.so").touch()
    env = {"NCCL_TUNER_PLUGIN": "/opt/amazon/ofi-nccl/lib/libnccl-ofi-tuner.so", "FI_PROVIDER": "efa"}
    assert findings(env, TYPES["p5.48xlarge"], host_facts(root), root=root) == []
