"""The PyTorchJob template: rendered as `make k8s` renders it (the real envsubst), no variable left, valid
against the Kubernetes and training-operator (v1.9.2) schemas, GPUs and EFA devices requested."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from testbed.kube import render_manifest, validate_manifest

FOLDER = Path(__file__).resolve().parents[1]


def make_k8s(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "-s", "k8s", *args], cwd=FOLDER, capture_output=True, text=True, check=False
    )


def test_make_k8s_renders_a_valid_pytorchjob(tmp_path):
    result = make_k8s(
        "PRESET=llama3_1_70b", "NUM_NODES=8", "NPROC_PER_NODE=8", "JOB_NAME=llama3-70b",
        "IMAGE=repo/megatron-lm:1.0", f"BUILD_DIR={tmp_path}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "llama3-70b.yaml").read_text()
    assert "${" not in text and validate_manifest(text) == []
    job = yaml.safe_load(text)
    worker = job["spec"]["pytorchReplicaSpecs"]["Worker"]
    container = worker["template"]["spec"]["containers"][0]
    assert worker["replicas"] == 8 and job["spec"]["elasticPolicy"]["minReplicas"] == 8
    assert container["resources"]["limits"] == {"nvidia.com/gpu": 8, "vpc.amazonaws.com/efa": 32}
    assert container["command"][:5] == [
        "torchrun",
        "--nproc-per-node=8",
        "src/train.py",
        "--preset",
        "llama3_1_70b",
    ]


def test_template_with_the_makefile_defaults_validates():
    values = {
        "JOB_NAME": "megatron-lm", "IMAGE": "repo/megatron-lm:1.0", "NUM_NODES": "2",
        "NPROC_PER_NODE": "8", "PRESET": "tiny", "GPUS_PER_NODE": "8", "EFA_PER_NODE": "32",
        "SHARED_DATA_PREFIX": "/fsx/data/corpus",
    }  # fmt: skip
    text = render_manifest(FOLDER / "kubernetes" / "pytorchjob.yaml-template", values)
    assert validate_manifest(text) == []


def test_make_k8s_without_image_is_an_error():
    result = make_k8s()
    assert result.returncode == 2 and result.stderr.startswith("error: IMAGE is not set")
