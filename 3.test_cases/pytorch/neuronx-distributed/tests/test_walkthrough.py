"""The README's walkthroughs ("preview", "k8s"), run as written in a copy of the repository. That every
other command block is marked illustrative, with the reason, is part of the test-case contract."""

from __future__ import annotations

from pathlib import Path

import yaml

from testbed import kube
from testbed.standins import applied, calls, write_standins
from testbed.walkthrough import run_walkthrough

README = Path(__file__).resolve().parents[1] / "README.md"
CASE = "3.test_cases/pytorch/neuronx-distributed"


def test_readme_preview_prints_the_compile_and_train_commands(artifacts_root):
    result = run_walkthrough(README, "preview", artifacts_root / "wt-nxd-preview", timeout=300)
    assert result.returncode == 0, result.output[-4000:]
    lines = result.output.splitlines()
    assert (
        lines[0]
        == "/fsx/neuronx-distributed/examples/training/llama/tp_pp_llama_hf_pretrain/run_llama_nxd.py"
    )
    compile_line = next(line for line in lines if "neuron_parallel_compile" in line)
    assert compile_line.startswith("srun --nodes=8 ") and "--pipeline_parallel_size 8" in compile_line
    train_line = lines[-1]
    assert "--nnodes=4 --nproc-per-node=32" in train_line and train_line.endswith("--max_steps 100")
    assert "--grad_accum_usteps 256" in train_line


def test_readme_k8s_applies_the_compile_job_then_the_train_job(artifacts_root, tmp_path):
    log = write_standins(tmp_path / "bin")
    result = run_walkthrough(
        README, "k8s", artifacts_root / "wt-nxd-k8s", timeout=300, standins=tmp_path / "bin"
    )
    assert result.returncode == 0, result.output[-4000:]
    text = (result.workdir / CASE / "build" / "pretrain.yaml").read_text()  # the last render: train
    assert kube.validate_manifest(text) == []
    job = yaml.safe_load(text)
    assert job["metadata"]["name"] == "nxd-llama-train"
    assert job["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 4
    assert 'aws.amazon.com/neuron: "16"' in result.output
    assert calls(log) == [
        "kubectl apply -f build/pretrain.yaml",
        "kubectl wait --for=condition=Succeeded pytorchjob/nxd-llama-compile --timeout=2h",
        "kubectl apply -f build/pretrain.yaml",
    ]
    assert [(o["kind"], o["name"]) for o in applied(log)] == [
        ("pytorchjob", "nxd-llama-compile"),
        ("pytorchjob", "nxd-llama-train"),
    ]
    assert "pytorchjob/nxd-llama-compile condition met" in result.output
