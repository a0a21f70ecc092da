"""The Composer image: what the launchers run is in it (static, here); built with Docker it holds the pinned
torch, Composer and llm-foundry, and its real `composer` launcher sets the variables the stand-in launcher of
the Slurm test sets (the `docker` marker; a daemon with registry access is needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

FOLDER = Path(__file__).resolve().parents[1]
ROOT = FOLDER.parents[2]
DOCKERFILE = FOLDER / "composer.Dockerfile"
VERSIONS = yaml.safe_load((ROOT / "2.ami_and_containers" / "versions.yaml").read_text())


def test_image_holds_what_the_sbatch_and_the_pytorchjob_run():
    text = DOCKERFILE.read_text()
    assert re.findall(r"^WORKDIR\s+(\S+)", text, re.MULTILINE)[-1] == "/workspace/composer"
    assert ("yamls/", "yamls/") in re.findall(r"^COPY\s+(\S+)\s+(\S+)", text, re.MULTILINE)
    assert text.count("-c /tmp/torch-constraint.txt") == 3  # nothing installed after torch may move it
    assert '"llm-foundry[gpu]==${LLM_FOUNDRY_VERSION}"' in text and "--no-build-isolation" in text
    assert (
        VERSIONS["components"]["composer-torch"] != VERSIONS["python"]["torch"]
    )  # why the case is container-only
    ignore = (FOLDER / ".dockerignore").read_text().splitlines()
    assert ignore[0] == "*" and {"!yamls/", "!requirements.txt"} <= set(ignore)


@pytest.mark.docker
@pytest.mark.slow
def test_image_builds_with_the_pins_and_the_real_launcher_sets_ranks(docker_build, docker_run, training_base):
    image = docker_build(
        FOLDER, "composer.Dockerfile", "composer:test", {"TRAINING_BASE_IMAGE": training_base}
    )
    code, logs = docker_run(
        image,
        [
            "python3",
            "-c",
            "import torch, composer, llmfoundry; "
            "print(torch.__version__, composer.__version__, llmfoundry.__version__)",
        ],
    )
    assert code == 0, logs
    torch_version, composer_version, foundry_version = logs.split()[-3:]
    assert torch_version.startswith(VERSIONS["components"]["composer-torch"])
    assert (composer_version, foundry_version) == (
        VERSIONS["python"]["mosaicml"],
        VERSIONS["python"]["llm-foundry"],
    )
    script = (
        "NODE_RANK=1 composer --nproc 2 --world_size 4 --master_addr 127.0.0.1 --master_port 29500 "
        "-c bash -c 'echo rank=$RANK/$WORLD_SIZE node=$NODE_RANK local=$LOCAL_RANK >> /tmp/ranks' "
        "&& sort /tmp/ranks"
    )
    code, logs = docker_run(image, ["bash", "-c", script])
    assert code == 0, logs
    assert "rank=2/4 node=1 local=0" in logs and "rank=3/4 node=1 local=1" in logs
