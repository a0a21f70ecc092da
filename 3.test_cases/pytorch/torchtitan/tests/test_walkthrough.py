"""The README's walkthroughs, run as written in a copy of the repository: "launchers" (the project venv:
make help, the sbatch's DRY_RUN line, make k8s) and "configs" (the torchtitan nox session: make assets,
make check-config with torchtitan's own ConfigManager). Every other shell block is marked illustrative."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

from testbed.kube import validate_manifest
from testbed.standins import applied, calls, write_standins
from testbed.walkthrough import run_walkthrough

README = Path(__file__).resolve().parents[1] / "README.md"
CASE = "3.test_cases/pytorch/torchtitan"


def test_readme_launchers_walkthrough(artifacts_root):
    result = run_walkthrough(README, "launchers", artifacts_root / "wt-titan-launchers", timeout=120)
    assert result.returncode == 0, result.output[-4000:]
    assert "check-config parse and validate PRESET" in result.output  # make help
    assert (
        "-m torchtitan.train --module aws_llama3 --config llama3_70b_fsdp_tp --dump_folder" in result.output
    )
    job = yaml.safe_load((result.workdir / CASE / "kubernetes" / "torchtitan.yaml").read_text())
    assert job["kind"] == "PyTorchJob" and job["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 4


@pytest.mark.framework
def test_readme_configs_walkthrough(artifacts_root, monkeypatch):
    # `make` takes the venv from VENV: here the session's, where torchtitan is installed.
    monkeypatch.setenv("VENV", sys.prefix)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    result = run_walkthrough(README, "configs", artifacts_root / "wt-titan-configs", timeout=300)
    assert result.returncode == 0, result.output[-4000:]
    assert "ok: llama3_70b_fsdp_tp: llama3 70B: dp_shard=-1 tp=8 compile=True" in result.output
    assert "steps=200" in result.output
    assert "did you mean --training.steps?" in result.output
    assets = result.workdir / CASE / "assets" / "tiny"
    assert (assets / "tokenizer.json").is_file() and (assets / "c4_test" / "data.json").is_file()
    assert os.environ["VENV"] == sys.prefix


def test_readme_k8s_walkthrough_renders_the_manifest(artifacts_root, tmp_path):
    pod_log = tmp_path / "pod.log"
    pod_log.write_text("torchtitan-worker-0 started\n")
    log = write_standins(tmp_path / "bin", logs={"torchtitan-worker-0": pod_log})
    result = run_walkthrough(
        README, "k8s", artifacts_root / "wt-torchtitan-k8s", timeout=120, standins=tmp_path / "bin"
    )
    assert result.returncode == 0, result.output[-4000:]
    text = (result.workdir / "3.test_cases" / "pytorch/torchtitan" / "kubernetes/torchtitan.yaml").read_text()
    assert "image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/torchtitan:0.3.0" in text and "${" not in text
    assert validate_manifest(text) == []
    assert calls(log) == [
        "kubectl apply -f kubernetes/torchtitan.yaml",
        "kubectl logs -f torchtitan-worker-0",
    ]
    assert [(o["kind"], o["name"]) for o in applied(log)] == [("pytorchjob", "torchtitan")]
    assert "pytorchjob.kubeflow.org/torchtitan created" in result.output
    assert "torchtitan-worker-0 started\n" in result.output  # what kubectl logs printed
