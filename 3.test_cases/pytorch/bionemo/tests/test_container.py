"""bionemo.Dockerfile: FROM the pinned BioNeMo container, EFA user space at the pinned installer, this
folder's glue where the launchers expect it (the build needs a Docker daemon that reaches NGC)."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
import yaml

FOLDER = Path(__file__).resolve().parents[1]
ROOT = FOLDER.parents[2]
DOCKERFILE = FOLDER / "bionemo.Dockerfile"
VERSIONS = yaml.safe_load((ROOT / "2.ami_and_containers" / "versions.yaml").read_text())
UPSTREAM = json.loads((FOLDER / "tests" / "upstream" / "bionemo-framework-v2.7.json").read_text())


def test_base_is_the_pinned_container_of_the_vendored_source():
    text = DOCKERFILE.read_text()
    args = dict(re.findall(r"^ARG ([A-Z_]+)=(\S+)", text, re.MULTILINE))
    assert args["BIONEMO_FRAMEWORK_IMAGE"] == VERSIONS["images"]["bionemo-framework"]
    assert args["EFA_INSTALLER_VERSION"] == VERSIONS["components"]["efa-installer"]
    tag = args["BIONEMO_FRAMEWORK_IMAGE"].rsplit(":", 1)[1]
    assert f"at tag v{tag} " in UPSTREAM["source"]  # the flags and data format are that release's
    assert re.findall(r"^FROM (\S+)", text, re.MULTILINE) == ["${BIONEMO_FRAMEWORK_IMAGE}"]
    assert "--skip-kmod" in text and "/opt/amazon/ofi-nccl/lib" in text


def test_code_lands_where_the_sbatch_and_the_pytorchjob_run_it():
    text = DOCKERFILE.read_text()
    assert re.findall(r"^WORKDIR\s+(\S+)", text, re.MULTILINE)[-1] == "/workspace/bionemo-aws"
    assert re.findall(r"^COPY\s+(\S+)\s+(\S+)", text, re.MULTILINE) == [
        ("src/", "src/"),
        ("configs/", "configs/"),
    ]
    assert "--container-workdir=/workspace/bionemo-aws" in (FOLDER / "slurm" / "train.sbatch").read_text()
    command = json.loads(re.search(r"^CMD\s+(\[.*\])\s*$", text, re.MULTILINE)[1])
    assert (FOLDER / command[1]).is_file()
    ignore = (FOLDER / ".dockerignore").read_text().splitlines()
    assert ignore[0] == "*" and {"!src/", "!configs/"} <= set(ignore)


@pytest.mark.docker
@pytest.mark.slow
def test_image_builds_and_has_the_training_modules(docker_build, docker_run):
    try:
        socket.getaddrinfo("nvcr.io", 443)
    except OSError as exc:
        pytest.skip(f"the base image's registry nvcr.io is unreachable from here ({exc})")
    image = docker_build(FOLDER, "bionemo.Dockerfile", "bionemo:test")
    code, logs = docker_run(
        image,
        [
            "python",
            "-c",
            "import bionemo.esm2.scripts.train_esm2, bionemo.geneformer.scripts.train_geneformer",
        ],
    )
    assert code == 0, logs[-2000:]
    code, logs = docker_run(
        image, ["python", "src/bionemo_args.py", "args", "--preset", "esm2-8m", "--result-dir", "/r"]
    )
    assert code == 0 and "bionemo.esm2.scripts.train_esm2" in logs
