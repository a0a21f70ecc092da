"""The PyTorchJob template: rendered as `make k8s` renders it (the real envsubst), no variable left, valid
against the Kubernetes and training-operator v1.9.2 schemas; GPU and EFA requests as asked."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from testbed.kube import render_manifest, validate_manifest

FOLDER = Path(__file__).resolve().parents[1]
TEMPLATE = FOLDER / "kubernetes" / "nemo-run.yaml-template"
VALUES = {
    "JOB_NAME": "llama3-8b",
    "IMAGE": "repo/nemo-run:1.0",
    "NUM_NODES": "4",
    "NPROC_PER_NODE": "8",
    "PRESET": "llama3_8b_pretrain",
    "GPU_PER_NODE": "8",
    "EFA_PER_NODE": "32",
    "INSTANCE_TYPE": "p5.48xlarge",
}


def test_template_renders_and_validates():
    text = render_manifest(TEMPLATE, VALUES)
    assert "${" not in text and validate_manifest(text) == []
    job = yaml.safe_load(text)
    worker = job["spec"]["pytorchReplicaSpecs"]["Worker"]
    container = worker["template"]["spec"]["containers"][0]
    assert worker["replicas"] == 4 and job["spec"]["elasticPolicy"]["minReplicas"] == 4
    assert container["resources"]["limits"] == {"nvidia.com/gpu": 8, "vpc.amazonaws.com/efa": 32}
    command = container["command"][2]
    assert command.startswith("source slurm/efa-env.sh && exec torchrun --nproc-per-node=8 src/launch.py")
    assert "--preset llama3_8b_pretrain --direct --nodes 4" in command


def test_make_k8s_renders_and_needs_an_image():
    try:
        result = subprocess.run(
            ["make", "-s", "k8s", "IMAGE=repo/nemo-run:1.0", "PRESET=llama3_70b_pretrain", "NUM_NODES=8"],
            cwd=FOLDER,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        text = (FOLDER / "kubernetes" / "nemo-run.yaml").read_text()
        assert validate_manifest(text) == []
        command = yaml.safe_load(text)["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"][
            "containers"
        ]
        assert "--preset llama3_70b_pretrain --direct --nodes 8" in command[0]["command"][2]
    finally:
        (FOLDER / "kubernetes" / "nemo-run.yaml").unlink(missing_ok=True)
    missing = subprocess.run(["make", "-s", "k8s"], cwd=FOLDER, capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and missing.stderr.startswith("error: IMAGE is not set")
