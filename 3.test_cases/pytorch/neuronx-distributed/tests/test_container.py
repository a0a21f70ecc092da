"""neuronx-distributed.Dockerfile: FROM the pinned Neuron training DLC, the examples at the pinned tag,
this folder's glue where the launchers expect it (the build needs a Docker daemon and the registries)."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
import yaml

FOLDER = Path(__file__).resolve().parents[1]
ROOT = FOLDER.parents[2]
DOCKERFILE = FOLDER / "neuronx-distributed.Dockerfile"
VERSIONS = yaml.safe_load((ROOT / "2.ami_and_containers" / "versions.yaml").read_text())


def test_base_and_examples_are_the_pinned_ones():
    text = DOCKERFILE.read_text()
    args = dict(re.findall(r"^ARG ([A-Z_]+)=(\S+)", text, re.MULTILINE))
    assert args["NEURON_PYTORCH_TRAINING_IMAGE"] == VERSIONS["images"]["neuron-pytorch-training"]
    assert (
        args["NEURONX_DISTRIBUTED_EXAMPLES_VERSION"] == VERSIONS["components"]["neuronx-distributed-examples"]
    )
    sdk = re.search(r"-sdk(\d+\.\d+\.\d+)-", args["NEURON_PYTORCH_TRAINING_IMAGE"])[1]
    assert args["NEURONX_DISTRIBUTED_EXAMPLES_VERSION"] == f"v{sdk}"  # examples of the SDK in the image
    assert re.findall(r"^FROM (\S+)", text, re.MULTILINE) == ["${NEURON_PYTORCH_TRAINING_IMAGE}"]
    assert "examples/training/llama/requirements.txt" in text


def test_code_lands_where_the_sbatch_and_the_pytorchjob_run_it():
    text = DOCKERFILE.read_text()
    assert re.findall(r"^WORKDIR\s+(\S+)", text, re.MULTILINE)[-1] == "/workspace/nxd-llama"
    assert re.findall(r"^COPY\s+(\S+)\s+(\S+)", text, re.MULTILINE) == [
        ("src/", "src/"),
        ("configs/", "configs/"),
    ]
    assert (
        "git clone --depth 1 --branch" in text and " neuronx-distributed \\" in text
    )  # /workspace/neuronx-distributed
    command = json.loads(re.search(r"^CMD\s+(\[.*\])\s*$", text, re.MULTILINE)[1])
    assert (FOLDER / command[1]).is_file()
    assert "--container-workdir=/workspace/nxd-llama" in (FOLDER / "slurm" / "pretrain.sbatch").read_text()
    ignore = (FOLDER / ".dockerignore").read_text().splitlines()
    assert ignore[0] == "*" and {"!src/", "!configs/"} <= set(ignore)


@pytest.mark.docker
@pytest.mark.slow
def test_image_builds_and_prints_a_presets_command(docker_build, docker_run):
    try:
        socket.getaddrinfo("public.ecr.aws", 443)
    except OSError as exc:
        pytest.skip(f"the base image's registry public.ecr.aws is unreachable from here ({exc})")
    image = docker_build(FOLDER, "neuronx-distributed.Dockerfile", "neuronx-distributed:test")
    code, logs = docker_run(
        image,
        [
            "python3",
            "src/nxd_args.py",
            "args",
            "--preset",
            "llama3-8b",
            "--data-dir",
            "/d",
            "--run-dir",
            "/r",
            "--examples-dir",
            "/workspace/neuronx-distributed",
        ],
    )
    assert code == 0 and "tp_zero1_llama_hf_pretrain.py" in logs
    code, logs = docker_run(
        image, ["test", "-f", "/workspace/neuronx-distributed/examples/training/llama/training_utils.py"]
    )
    assert code == 0, logs
