"""The image builds from fsdp.Dockerfile with versions.yaml's pins and trains tiny (needs a Docker daemon)."""

from __future__ import annotations

from pathlib import Path

import pytest

TEST_CASE_DIR = Path(__file__).resolve().parents[1]


@pytest.mark.docker
@pytest.mark.slow
def test_image_builds_and_trains_tiny_preset(docker_build, docker_run, training_base):
    image = docker_build(
        TEST_CASE_DIR, "fsdp.Dockerfile", "fsdp:test", {"TRAINING_BASE_IMAGE": training_base}
    )
    command = ["python3", "src/train.py", "--preset", "tiny", "--max-steps", "5", "--run-dir", "/tmp/run"]
    code, logs = docker_run(image, command)
    assert code == 0, logs[-3000:]
    assert "summary: step 5" in logs
    code, logs = docker_run(image, ["python3", "src/train.py", "--preset", "nope"])
    assert code == 2 and "error: unknown preset 'nope'" in logs
