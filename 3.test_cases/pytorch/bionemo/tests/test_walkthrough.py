"""The README's walkthroughs ("preview", "k8s"), run as written in a copy of the repository. That every
other command block is marked illustrative, with the reason, is part of the test-case contract."""

from __future__ import annotations

from pathlib import Path

import yaml

from testbed import kube
from testbed.standins import applied, calls, write_standins
from testbed.walkthrough import run_walkthrough

README = Path(__file__).resolve().parents[1] / "README.md"
CASE = "3.test_cases/pytorch/bionemo"


def test_readme_preview_prints_the_srun_commands(artifacts_root):
    result = run_walkthrough(README, "preview", artifacts_root / "wt-bionemo-preview", timeout=300)
    assert result.returncode == 0, result.output[-4000:]
    esm2, geneformer = [line for line in result.output.splitlines() if line.startswith("srun ")]
    assert esm2.startswith("srun --nodes=2 --ntasks-per-node=8 ") and esm2.endswith("--num-steps 1000")
    assert "python -m bionemo.esm2.scripts.train_esm2 " in esm2 and "--num-nodes 2 --num-gpus 8" in esm2
    assert (
        geneformer.startswith("srun --nodes=4 ")
        and "-m bionemo.geneformer.scripts.train_geneformer" in geneformer
    )


def test_readme_k8s_renders_a_valid_job(artifacts_root, tmp_path):
    pod_log = tmp_path / "pod.log"
    pod_log.write_text("bionemo-worker-0 started\n")
    log = write_standins(tmp_path / "bin", logs={"bionemo-worker-0": pod_log})
    result = run_walkthrough(
        README, "k8s", artifacts_root / "wt-bionemo-k8s", timeout=300, standins=tmp_path / "bin"
    )
    assert result.returncode == 0, result.output[-4000:]
    text = (result.workdir / CASE / "build" / "train.yaml").read_text()
    assert kube.validate_manifest(text) == []
    assert yaml.safe_load(text)["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 4
    assert 'nvidia.com/gpu: "8"' in result.output and 'vpc.amazonaws.com/efa: "32"' in result.output
    assert calls(log) == ["kubectl apply -f build/train.yaml", "kubectl logs -f bionemo-worker-0"]
    assert [(o["kind"], o["name"]) for o in applied(log)] == [("pytorchjob", "bionemo")]
    assert "pytorchjob.kubeflow.org/bionemo created" in result.output
    assert "bionemo-worker-0 started\n" in result.output  # what kubectl logs printed
