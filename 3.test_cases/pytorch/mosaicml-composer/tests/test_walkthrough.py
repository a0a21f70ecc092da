"""The README's walkthrough ("preview"), run as written in a copy of the repository. That every other command
block is marked illustrative, with the reason, is part of the test-case contract."""

from __future__ import annotations

from pathlib import Path

import yaml

from testbed.kube import validate_manifest
from testbed.standins import applied, calls, write_standins
from testbed.walkthrough import run_walkthrough

README = Path(__file__).resolve().parents[1] / "README.md"
CASE = "3.test_cases/pytorch/mosaicml-composer"


def test_readme_preview_walkthrough(artifacts_root):
    result = run_walkthrough(README, "preview", artifacts_root / "wt-composer", timeout=120)
    assert result.returncode == 0, result.output[-4000:]
    assert "yamls/mpt-7b.yaml:global_train_batch_size: 1024" in result.output
    assert "composer --nproc 8 --world_size 16 --master_addr HEAD_NODE_ADDR" in result.output
    assert "max_duration=1000ba" in result.output
    manifest = yaml.safe_load((result.workdir / CASE / "build" / "composer.yaml").read_text())
    assert manifest["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 3


def test_readme_k8s_walkthrough_renders_the_manifest(artifacts_root, tmp_path):
    pod_log = tmp_path / "pod.log"
    pod_log.write_text("composer-master-0 started\n")
    log = write_standins(tmp_path / "bin", logs={"composer-master-0": pod_log})
    result = run_walkthrough(
        README, "k8s", artifacts_root / "wt-mosaicml-composer-k8s", timeout=120, standins=tmp_path / "bin"
    )
    assert result.returncode == 0, result.output[-4000:]
    text = (result.workdir / "3.test_cases" / "pytorch/mosaicml-composer" / "build/composer.yaml").read_text()
    assert "image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/composer:0.32.1" in text and "${" not in text
    assert validate_manifest(text) == []
    assert calls(log) == ["kubectl apply -f build/composer.yaml", "kubectl logs -f composer-master-0"]
    assert [(o["kind"], o["name"]) for o in applied(log)] == [("pytorchjob", "composer")]
    assert "pytorchjob.kubeflow.org/composer created" in result.output
    assert "composer-master-0 started\n" in result.output  # what kubectl logs printed
