"""The image builds from nemo-launcher.Dockerfile, and inside it the overrides compose against the
container's own launcher configs (needs a Docker daemon and access to nvcr.io)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from docker.errors import DockerException

TEST_CASE_DIR = Path(__file__).resolve().parents[1]
VERSIONS = TEST_CASE_DIR.parents[2] / "2.ami_and_containers" / "versions.yaml"
BASE_IMAGE = yaml.safe_load(VERSIONS.read_text())["images"]["nemo-launcher"]


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
def test_overrides_compose_against_the_image_launcher(base_image, docker_build, docker_run):
    image = docker_build(TEST_CASE_DIR, "nemo-launcher.Dockerfile", "nemo-launcher:test")
    conf = "/opt/NeMo-Framework-Launcher/launcher_scripts/conf"
    for preset in ("gpt3_5b", "llama3_70b"):
        code, logs = docker_run(
            image, ["python3", "src/launcher_overrides.py", "--preset", preset, "--conf", conf]
        )
        assert code == 0, logs[-3000:]
        assert "checked against" in logs
    code, logs = docker_run(
        image,
        [
            "python3",
            "src/launcher_overrides.py",
            "--preset",
            "gpt3_5b",
            "--conf",
            conf,
            "--",
            "training.trainer.num_node=2",
        ],
    )
    assert code == 2 and "error: Could not override 'training.trainer.num_node'" in logs
