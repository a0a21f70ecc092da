"""The image from torchtitan.Dockerfile holds what the launchers run (the build needs a Docker daemon)."""

from __future__ import annotations

import json
import re

import pytest
from titan_paths import FOLDER

DOCKERFILE = FOLDER / "torchtitan.Dockerfile"


def test_build_context_holds_what_slurm_and_kubernetes_run():
    """Both launchers run in /workspace/torchtitan: `-m torchtitan.train --module aws_llama3` (src/ on
    PYTHONPATH) and, on EKS, `source slurm/efa-env.sh`; the presets' relative assets/ is shared storage."""
    text = DOCKERFILE.read_text()
    assert re.findall(r"^WORKDIR\s+(\S+)", text, re.MULTILINE)[-1] == "/workspace/torchtitan"
    assert re.findall(r"^COPY\s+(\S+)\s+(\S+)", text, re.MULTILINE) == [
        ("src/", "src/"),
        ("slurm/", "slurm/"),
    ]
    assert "ENV PYTHONPATH=/workspace/torchtitan/src" in text
    assert "ln -s /fsx/torchtitan/assets assets" in text
    ignore = (FOLDER / ".dockerignore").read_text().splitlines()
    assert ignore[0] == "*" and {"!src/", "!slurm/"} <= set(ignore)
    command = json.loads(re.search(r"^CMD\s+(\[.*\])\s*$", text, re.MULTILINE).group(1))
    assert command[:2] == ["python", "src/check_config.py"]
    assert "python3.11 -m venv /opt/venv" in text  # torchtitan needs Python >= 3.11; Ubuntu 22.04 has 3.10


@pytest.mark.docker
@pytest.mark.slow
def test_image_builds_and_validates_a_preset(docker_build, docker_run, training_base):
    image = docker_build(
        FOLDER, "torchtitan.Dockerfile", "torchtitan:test", {"TRAINING_BASE_IMAGE": training_base}
    )
    code, logs = docker_run(image, ["python", "src/check_config.py", "--config", "llama3_70b_fsdp_tp"])
    assert code == 0 and "ok: llama3_70b_fsdp_tp: llama3 70B" in logs, logs[-3000:]
    code, logs = docker_run(
        image, ["python", "src/check_config.py", "--config", "tiny", "--training.stpes", "1"]
    )
    assert code == 2 and "did you mean --training.steps?" in logs
