"""The image builds from nemo-run.Dockerfile (the NeMo container plus nemo-run) and runs the tiny task with
nemo-run's LocalExecutor on 2 ranks (needs a Docker daemon and access to nvcr.io)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from docker.errors import DockerException

TEST_CASE_DIR = Path(__file__).resolve().parents[1]
VERSIONS = TEST_CASE_DIR.parents[2] / "2.ami_and_containers" / "versions.yaml"
BASE_IMAGE = yaml.safe_load(VERSIONS.read_text())["images"]["nemo"]


@pytest.fixture
def base_image(docker_client):
    """NVIDIA's image, from the local store or nvcr.io; skipped with the reason where neither has it."""
    try:
        docker_client.images.get(BASE_IMAGE)
    except DockerException:
        try:
            docker_client.images.pull(BASE_IMAGE)
        except DockerException as exc:
            pytest.skip(
                f"{BASE_IMAGE} is neither local nor pullable ({str(exc).splitlines()[0][:120]}); "
                "run where nvcr.io is reachable, or load the image first"
            )
    return BASE_IMAGE


@pytest.mark.docker
@pytest.mark.slow
def test_image_builds_and_runs_the_tiny_task(base_image, docker_build, docker_run):
    image = docker_build(TEST_CASE_DIR, "nemo-run.Dockerfile", "nemo-run:test")
    command = [
        "python3",
        "src/launch.py",
        "--preset",
        "tiny",
        "--executor",
        "local",
        "--nproc-per-node",
        "2",
        "--log-dir",
        "/tmp/tiny",
    ]
    code, logs = docker_run(image, command)
    assert code == 0, logs[-3000:]
    assert "tiny: 2 ranks, 20 steps" in logs
    code, logs = docker_run(image, ["python3", "src/launch.py", "--preset", "nope"])
    assert code == 2 and "error: unknown preset 'nope'" in logs
