"""The picotron image: what the launchers run is in it (static, here), and built with Docker it holds the
pinned commit with that commit's torch and runs a launch (the `docker` marker; a daemon is needed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

FOLDER = Path(__file__).resolve().parents[1]
DOCKERFILE = FOLDER / "picotron.Dockerfile"
UPSTREAM = json.loads((FOLDER / "tests" / "upstream" / "picotron-59714b1.json").read_text())


def test_image_holds_what_the_sbatch_and_the_pytorchjob_run():
    text = DOCKERFILE.read_text()
    assert re.findall(r"^WORKDIR\s+(\S+)", text, re.MULTILINE)[-1] == "/workspace/picotron"
    assert ("configs/", "configs/") in re.findall(r"^COPY\s+(\S+)\s+(\S+)", text, re.MULTILINE)
    assert "WORKDIR /opt/picotron" in text  # /opt/picotron/train.py, the entry point
    assert "--no-build-isolation" in text  # flash-attn builds against the commit's torch
    ignore = (FOLDER / ".dockerignore").read_text().splitlines()
    assert ignore[0] == "*" and {"!configs/", "!src/", "!requirements.txt"} <= set(ignore)


@pytest.mark.docker
@pytest.mark.slow
def test_image_builds_with_the_pinned_commit_and_launches(docker_build, docker_run, training_base):
    image = docker_build(
        FOLDER, "picotron.Dockerfile", "picotron:test", {"TRAINING_BASE_IMAGE": training_base}
    )
    code, logs = docker_run(image, ["git", "-C", "/opt/picotron", "rev-parse", "HEAD"])
    assert code == 0 and logs.strip() == UPSTREAM["commit"]
    code, logs = docker_run(image, ["python3", "-c", "import torch, transformers; print(torch.__version__)"])
    assert code == 0 and logs.strip().startswith("2.1.0")
    code, logs = docker_run(image, ["python3", "src/picotron_config.py", "--check"])
    assert code == 0, logs
