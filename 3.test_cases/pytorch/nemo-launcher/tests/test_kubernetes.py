"""The PyTorchJob template for the launcher's training stage: rendered as `make k8s` renders it, valid against
the Kubernetes and training-operator v1.9.2 schemas, pointing at the config the launcher writes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from testbed.kube import render_manifest, validate_manifest

FOLDER = Path(__file__).resolve().parents[1]
VALUES = {
    "JOB_NAME": "gpt3-5b",
    "IMAGE": "repo/nemo-launcher:1.0",
    "NUM_NODES": "4",
    "NPROC_PER_NODE": "8",
    "RUN_NAME": "gpt3_5b",
    "GPU_PER_NODE": "8",
    "EFA_PER_NODE": "32",
    "INSTANCE_TYPE": "p5.48xlarge",
}


def test_template_renders_and_validates():
    text = render_manifest(FOLDER / "kubernetes" / "nemo-launcher.yaml-template", VALUES)
    assert "${" not in text and validate_manifest(text) == []
    spec = yaml.safe_load(text)["spec"]["pytorchReplicaSpecs"]["Worker"]
    container = spec["template"]["spec"]["containers"][0]
    assert spec["replicas"] == 4 and container["resources"]["limits"]["vpc.amazonaws.com/efa"] == 32
    command = container["command"][2]
    assert "--config-path=/fsx/nemo-launcher/results/gpt3_5b" in command
    assert "--config-name=nemo-megatron-gpt3_5b_hydra.yaml trainer.num_nodes=4 trainer.devices=8" in command


def test_make_k8s_renders_and_needs_an_image():
    try:
        result = subprocess.run(
            ["make", "-s", "k8s", "IMAGE=repo/nemo-launcher:1.0", "RUN_NAME=llama3_8b"],
            cwd=FOLDER,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        text = (FOLDER / "kubernetes" / "nemo-launcher.yaml").read_text()
        assert validate_manifest(text) == [] and "nemo-megatron-llama3_8b_hydra.yaml" in text
    finally:
        (FOLDER / "kubernetes" / "nemo-launcher.yaml").unlink(missing_ok=True)
    missing = subprocess.run(["make", "-s", "k8s"], cwd=FOLDER, capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and missing.stderr.startswith("error: IMAGE is not set")
