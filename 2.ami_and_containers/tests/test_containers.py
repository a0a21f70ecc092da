"""Images built here without Docker Hub: the python:slim stand-in that 2.containers/local-python-base.sh
makes from Debian packages, and the EFA exporter image built FROM it through the build argument the
test-case images take (PYTHON_SLIM_IMAGE); it starts and serves its metrics."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "2.ami_and_containers" / "2.containers" / "local-python-base.sh"
EXPORTER = ROOT / "4.validation_observability" / "3.efa-node-exporter"
LOCAL_PYTHON = "distributed-training-local/python:test"
METRICS = "http://127.0.0.1:9109/metrics"


def test_local_base_script_refuses_bad_input_with_one_line():
    result = subprocess.run([str(SCRIPT), "no-tag-here"], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("error: give the image tag") and result.stderr.count("\n") == 1


@pytest.fixture(scope="session")
def local_python_base(docker_client, minbase_rootfs: Path):
    """The stand-in, imported from the session's minbase tree (no second debootstrap)."""
    started = time.monotonic()
    subprocess.run(
        [str(SCRIPT), LOCAL_PYTHON, str(minbase_rootfs)], check=True, capture_output=True, text=True
    )
    print(f"\nlocal python base from the minbase tree: {time.monotonic() - started:.0f} s")
    yield LOCAL_PYTHON
    docker_client.images.remove(LOCAL_PYTHON, force=True)


@pytest.mark.docker
@pytest.mark.slow
def test_exporter_image_builds_from_the_local_base_and_serves_metrics(
    local_python_base, docker_build, docker_run, docker_client
):
    started = time.monotonic()
    arguments = {"PYTHON_SLIM_IMAGE": local_python_base}
    image = docker_build(EXPORTER, "efa-exporter.Dockerfile", "efa-exporter:local-base", arguments)
    print(f"\nefa-exporter image build: {time.monotonic() - started:.0f} s")
    code, logs = docker_run(image, ["--once", "--sysfs-root", "/app"])
    assert code == 0 and "efa_devices 0.0" in logs, logs[-3000:]
    container = docker_client.containers.run(image, ["--sysfs-root", "/app"], detach=True)
    try:
        fetch = f"import urllib.request as u; print(u.urlopen('{METRICS}', timeout=5).read().decode())"
        for _ in range(30):
            result = container.exec_run(["python", "-c", fetch])
            if result.exit_code == 0:
                break
            time.sleep(1)
        metrics = result.output.decode()
        assert result.exit_code == 0, metrics
        assert "efa_devices 0.0" in metrics and 'efa_exporter_info{version="' in metrics
        assert container.attrs["Config"]["User"] == "65534:65534"
    finally:
        container.remove(force=True)
