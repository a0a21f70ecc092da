"""The nccl-tests image builds with versions.yaml's pins and runs all_reduce_perf (Docker and GPUs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from nccl_bench.nccl_output import parse

TOOL_DIR = Path(__file__).resolve().parents[1]


@pytest.mark.docker
@pytest.mark.gpu
@pytest.mark.slow
def test_image_builds_and_all_reduce_is_correct(docker_build, docker_run, training_base):
    image = docker_build(
        TOOL_DIR, "nccl-tests.Dockerfile", "nccl-tests:test", {"TRAINING_BASE_IMAGE": training_base}
    )
    code, logs = docker_run(image, ["all_reduce_perf", "-b", "8", "-e", "64M", "-f", "2", "-g", "1"])
    assert code == 0, logs[-3000:]
    run = parse(logs)
    assert run.complete and run.wrong == 0 and run.tests_version == "2.17.9"
