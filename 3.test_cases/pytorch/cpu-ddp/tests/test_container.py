"""The image builds from cpu-ddp.Dockerfile with versions.yaml's pins and trains (needs a Docker daemon)."""

from __future__ import annotations

from pathlib import Path

import pytest

TEST_CASE_DIR = Path(__file__).resolve().parents[1]


@pytest.mark.docker
@pytest.mark.slow
def test_image_builds_and_trains_tiny_preset(docker_build, docker_run):
    image = docker_build(TEST_CASE_DIR, "cpu-ddp.Dockerfile", "cpu-ddp:test")
    code, logs = docker_run(image, ["python", "ddp.py", "--preset", "tiny", "--run-dir", "/tmp/run"])
    assert code == 0, logs[-3000:]
    assert "held-out accuracy" in logs
    code, logs = docker_run(image, ["python", "ddp.py", "--preset", "nope"])
    assert code == 2 and "error: unknown preset 'nope'" in logs
