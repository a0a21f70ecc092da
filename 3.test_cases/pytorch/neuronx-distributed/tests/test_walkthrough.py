"""The README's walkthroughs ("preview", "gpu-cluster", "k8s"), run as written in a copy of the repository.
That every other command block is marked illustrative, with the reason, is part of the test-case contract."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from testbed import kube
from testbed.standins import run_on_cluster, run_with_standins
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


@pytest.mark.slurm
def test_readme_container_walkthrough_compiles_then_trains_on_a_trn1_shaped_slurm(
    gpu_slurm, artifacts_root, tmp_path
):
    """Section 3 as written: the image checked and imported, then the compile and the train job on a real
    Slurm of 8 nodes with trn1.32xlarge's EFA devices; only docker, enroot and srun are stood in for."""
    run = run_on_cluster(
        README,
        "gpu-cluster",
        artifacts_root / "wt-nxd-gpu",
        tmp_path / "bin",
        gpu_slurm,
        instance_type="trn1.32xlarge",
    )
    jobs = run.jobs
    assert [job.state for job in jobs] == ["COMPLETED"] * 2
    assert [len(job.nodes) for job in jobs] == [4, 4]
    (compile_step,), (train,) = (run.launches_of(job) for job in jobs)
    sqsh = "/fsx/images/neuronx-distributed.sqsh"
    for launch in (compile_step, train):
        assert launch["num_nodes"] == 4 and launch["options"]["--container-image"] == sqsh
        assert launch["options"]["--container-workdir"] == "/workspace/nxd-llama"
        assert launch["env"]["FI_PROVIDER"] == "efa" and launch["env"]["FI_EFA_USE_DEVICE_RDMA"] == "1"
        assert launch["env"]["FI_EFA_FORK_SAFE"] == "1"
        assert (
            launch["env"]["NEURON_CC_FLAGS"]
            == "--model-type transformer --cache_dir=/fsx/neuron_compile_cache"
        )
        command = launch["command"]
        assert "--nnodes=4" in command and "--nproc-per-node=32" in command
        script = "/workspace/neuronx-distributed/examples/training/llama/tp_zero1_llama_hf_pretrain"
        assert f"{script}/tp_zero1_llama_hf_pretrain.py" in command
        assert command[command.index("--grad_accum_usteps") + 1] == "256"  # DP 4: 1,024 / 4
    assert compile_step["command"][:2] == ["neuron_parallel_compile", "torchrun"]
    assert train["command"][0] == "torchrun"
    versions = yaml.safe_load((run.workdir / "2.ami_and_containers" / "versions.yaml").read_text())
    image = run.images["built"]["neuronx-distributed:dev"]
    assert image["from"] == [versions["images"]["neuron-pytorch-training"]]
    assert run.images["imported"] == {sqsh: "dockerd://neuronx-distributed:dev"}


def test_readme_k8s_applies_the_compile_job_then_the_train_job(artifacts_root, tmp_path):
    run = run_with_standins(
        README, "k8s", artifacts_root / "wt-nxd-k8s", tmp_path / "bin", timeout=300
    ).check()
    text = (run.workdir / CASE / "build" / "pretrain.yaml").read_text()  # the last render: train
    assert kube.validate_manifest(text) == []
    job = yaml.safe_load(text)
    assert job["metadata"]["name"] == "nxd-llama-train"
    assert job["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 4
    assert 'aws.amazon.com/neuron: "16"' in run.output
    assert run.calls == [
        "kubectl apply -f build/pretrain.yaml",
        "kubectl wait --for=condition=Succeeded pytorchjob/nxd-llama-compile --timeout=2h",
        "kubectl apply -f build/pretrain.yaml",
    ]
    assert [(o["kind"], o["name"]) for o in run.applied] == [
        ("pytorchjob", "nxd-llama-compile"),
        ("pytorchjob", "nxd-llama-train"),
    ]
    assert "pytorchjob/nxd-llama-compile condition met" in run.output
