"""The image from cpu-ddp.Dockerfile: it holds src/ and trains (the build needs a Docker daemon)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

TEST_CASE_DIR = Path(__file__).resolve().parents[1]
DOCKERFILE = TEST_CASE_DIR / "cpu-ddp.Dockerfile"


def test_build_context_and_command_are_the_code_the_launchers_run():
    """What the Slurm container run and the PyTorchJob execute (/workspace/cpu-ddp/src/train.py) is in
    the image: .dockerignore lets src/ into the context, COPY puts it under WORKDIR, CMD runs it."""
    text = DOCKERFILE.read_text()
    assert re.findall(r"^WORKDIR\s+(\S+)", text, re.MULTILINE) == ["/workspace/cpu-ddp"]
    assert re.findall(r"^COPY\s+(\S+)\s+(\S+)", text, re.MULTILINE) == [("src/", "src/")]
    command = json.loads(re.search(r"^CMD\s+(\[.*\])\s*$", text, re.MULTILINE).group(1))
    assert command[0] == "torchrun" and "src/train.py" in command
    ignore = (TEST_CASE_DIR / ".dockerignore").read_text().splitlines()
    assert ignore[0] == "*" and "!src/" in ignore  # everything else (runs, venvs, checkpoints) stays out
    assert (TEST_CASE_DIR / "src" / "train.py").is_file() and (TEST_CASE_DIR / "src" / "cpu_ddp").is_dir()


@pytest.mark.docker
@pytest.mark.slow
def test_image_builds_and_trains_tiny_preset(docker_build, docker_run):
    image = docker_build(TEST_CASE_DIR, "cpu-ddp.Dockerfile", "cpu-ddp:test")
    code, logs = docker_run(image, ["python", "src/train.py", "--preset", "tiny", "--run-dir", "/tmp/run"])
    assert code == 0, logs[-3000:]
    assert "held-out accuracy" in logs
    code, logs = docker_run(image, ["python", "src/train.py", "--preset", "nope"])
    assert code == 2 and "error: unknown preset 'nope'" in logs
