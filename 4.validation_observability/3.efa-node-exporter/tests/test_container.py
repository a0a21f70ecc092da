"""The image builds from efa-exporter.Dockerfile with versions.yaml's pins and exports (needs Docker)."""

from __future__ import annotations

from pathlib import Path

import pytest

FOLDER = Path(__file__).resolve().parents[1]


@pytest.mark.docker
def test_image_builds_and_reports_a_node_without_efa(docker_build, docker_run):
    image = docker_build(FOLDER, "efa-exporter.Dockerfile", "efa-exporter:test")
    code, logs = docker_run(image, ["--once", "--sysfs-root", "/app"])
    assert code == 0, logs[-3000:]
    assert "efa_devices 0.0" in logs and 'efa_exporter_info{version="' in logs
    code, logs = docker_run(image, ["--sysfs-root", "/nope"])
    assert code == 2 and "error: --sysfs-root /nope is not a folder" in logs
