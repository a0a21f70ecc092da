"""The image builds from efa-exporter.Dockerfile FROM the python base (python:slim, or the stand-in made from
Debian packages where Docker Hub is out of reach), runs as the DaemonSet runs it (host network, sysfs
mounted read-only) and serves a p4d-like node's counters on /metrics (needs a Docker daemon)."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest
from efa_sysfs import DEVICE_COUNTERS, PORT_COUNTERS, write_device

from testbed.ports import free_port

FOLDER = Path(__file__).resolve().parents[1]


def scrape(url: str, container, deadline_s: float = 60) -> str:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback URL we built
                return response.read().decode()
        except OSError:
            container.reload()
            if container.status == "exited" or time.monotonic() > deadline:
                raise AssertionError(f"no /metrics at {url}: {container.logs().decode()[-2000:]}") from None
            time.sleep(0.5)


@pytest.mark.docker
def test_image_builds_from_the_python_base_and_serves_sysfs_counters(
    docker_build, docker_run, docker_client, python_base, tmp_path
):
    image = docker_build(
        FOLDER, "efa-exporter.Dockerfile", "efa-exporter:test", {"PYTHON_SLIM_IMAGE": python_base}
    )
    code, logs = docker_run(image, ["--once", "--sysfs-root", "/app"])
    assert code == 0, logs[-3000:]
    assert "efa_devices 0.0" in logs and 'efa_exporter_info{version="' in logs
    code, logs = docker_run(image, ["--sysfs-root", "/nope"])
    assert code == 2 and "error: --sysfs-root /nope is not a folder" in logs

    # A fake node: its device links are absolute, so the tree is mounted at the path it was written at.
    sysfs = tmp_path / "sys"
    write_device(sysfs, "rdmap16s27", device_counters=DEVICE_COUNTERS)
    write_device(sysfs, "rdmap32s27", port_counters={**PORT_COUNTERS, "tx_bytes": 123456789})
    port = free_port()
    container = docker_client.containers.run(
        image,
        ["--listen-address", "127.0.0.1", "--port", str(port), "--sysfs-root", str(sysfs)],
        volumes={str(sysfs): {"bind": str(sysfs), "mode": "ro"}},
        network_mode="host",
        detach=True,
    )
    try:
        metrics = scrape(f"http://127.0.0.1:{port}/metrics", container)
        assert 'efa_tx_bytes_total{device="rdmap32s27",port="1"} 1.23456789e+08' in metrics, metrics
        assert 'efa_rx_pkts_total{device="rdmap16s27",port="1"} 1.120371305e+09' in metrics
        assert 'efa_device_submitted_cmds_total{device="rdmap16s27"} 1284.0' in metrics
        assert "efa_devices 2.0" in metrics
        assert container.attrs["Config"]["User"] == "65534:65534"
    finally:
        container.remove(force=True)
