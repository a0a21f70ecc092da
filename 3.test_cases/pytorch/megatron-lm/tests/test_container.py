"""The GPU image builds from megatron-lm.Dockerfile with versions.yaml's pins, imports megatron-core and
rejects bad input (needs a Docker daemon; the NVIDIA base image is large, so this runs where one is)."""

from __future__ import annotations

from pathlib import Path

import pytest

TEST_CASE_DIR = Path(__file__).resolve().parents[1]


@pytest.mark.docker
@pytest.mark.slow
def test_image_builds_and_checks_its_config(docker_build, docker_run):
    image = docker_build(TEST_CASE_DIR, "megatron-lm.Dockerfile", "megatron-lm:test")
    code, logs = docker_run(image, ["python3", "-c", "import megatron.core, transformer_engine; print('ok')"])
    assert code == 0 and "ok" in logs, logs[-3000:]
    code, logs = docker_run(image, ["python3", "src/train.py", "--preset", "nope"])
    assert code == 2 and "error: unknown preset 'nope'" in logs
