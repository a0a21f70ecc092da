"""Generated Kubeflow PyTorchJobs: rendered as `make k8s` renders them (the real envsubst), no variable
left, valid against the Kubernetes and training-operator schemas, GPU and EFA requests per instance type."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from testbed.kube import render_manifest, validate_manifest

FOLDER = Path(__file__).resolve().parents[1]
PRESET_NAMES = sorted(p.stem for p in (FOLDER / "kubernetes").glob("*.yaml"))


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_manifest_renders_and_validates(preset):
    text = render_manifest(FOLDER / "kubernetes" / f"{preset}.yaml", {"IMAGE": "repo/fsdp:1.0"})
    assert "${" not in text
    assert validate_manifest(text) == []


def test_gpu_manifest_requests_gpus_and_efa():
    text = render_manifest(FOLDER / "kubernetes" / "llama3_1_8b.yaml", {"IMAGE": "repo/fsdp:1.0"})
    assert "nvidia.com/gpu: 8" in text and "vpc.amazonaws.com/efa: 32" in text
    assert "--nproc-per-node=8" in text and "replicas: 2" in text


def test_make_k8s_renders_into_build(tmp_path):
    result = subprocess.run(
        ["make", "-s", "k8s", "PRESET=llama3_1_8b", "IMAGE=repo/fsdp:1.0", f"BUILD_DIR={tmp_path}"],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "llama3_1_8b.yaml").read_text()
    assert "image: repo/fsdp:1.0" in text and validate_manifest(text) == []
    missing = subprocess.run(
        ["make", "-s", "k8s", "PRESET=tiny"], cwd=FOLDER, capture_output=True, text=True, check=False
    )
    assert missing.returncode == 2 and missing.stderr.startswith("error: IMAGE is not set")
