"""The README's walkthroughs, run as written in a copy of the repository: "launchers" (the project venv:
make help, the sbatch's DRY_RUN line, make k8s), "configs" (the torchtitan nox session: make assets,
make check-config with torchtitan's own ConfigManager), "k8s" (kubectl stood in for) and "gpu-cluster"
(section 3: the image built, imported and submitted on a p5-shaped local Slurm, with docker, enroot and
srun stood in for). Every other shell block is marked illustrative."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

from testbed.kube import validate_manifest
from testbed.standins import run_on_cluster, run_with_standins
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
    run = run_with_standins(
        README,
        "k8s",
        artifacts_root / "wt-torchtitan-k8s",
        tmp_path / "bin",
        timeout=120,
        logs={"torchtitan-worker-0": "torchtitan-worker-0 started\n"},
    ).check()
    text = (run.workdir / CASE / "kubernetes" / "torchtitan.yaml").read_text()
    assert "image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/torchtitan:0.3.0" in text and "${" not in text
    assert validate_manifest(text) == []
    assert run.calls == [
        "kubectl apply -f kubernetes/torchtitan.yaml",
        "kubectl logs -f torchtitan-worker-0",
    ]
    assert [(o["kind"], o["name"]) for o in run.applied] == [("pytorchjob", "torchtitan")]
    assert "pytorchjob.kubeflow.org/torchtitan created" in run.output
    assert "torchtitan-worker-0 started\n" in run.output  # what kubectl logs printed


@pytest.mark.slurm
def test_readme_gpu_cluster_walkthrough_runs_the_image_on_a_p5_shaped_slurm(
    gpu_slurm, artifacts_root, tmp_path
):
    """Section 3 as written: the base and the image built, the image imported with enroot, the job
    submitted in it to a real Slurm of 8 nodes x 8 GPUs; only docker, enroot and srun are stood in for."""
    run = run_on_cluster(
        README, "gpu-cluster", artifacts_root / "wt-torchtitan-gpu", tmp_path / "bin", gpu_slurm
    )

    [job] = run.jobs
    assert job.state == "COMPLETED" and len(job.nodes) == 2
    [launch] = run.launches_of(job)
    options, command, env = launch["options"], launch["command"], launch["env"]
    assert launch["num_nodes"] == 2 and options["--nodes"] == "2" and options["--ntasks-per-node"] == "1"
    assert options["--container-image"] == "/fsx/images/torchtitan.sqsh"
    assert options["--container-mounts"] == "/fsx:/fsx"
    assert options["--container-workdir"] == "/workspace/torchtitan"
    assert command[0] == "torchrun" and "--nnodes=2" in command and "--nproc-per-node=8" in command
    assert f"--rdzv-id={job.id}" in command
    assert command[command.index("-m") :] == [
        "-m",
        "torchtitan.train",
        "--module",
        "aws_llama3",
        "--config",
        "llama3_8b_fsdp",
        "--dump_folder",
        f"/fsx/torchtitan/runs/llama3_8b_fsdp-{job.id}",
    ]
    assert env["FI_PROVIDER"] == "efa" and env["FI_EFA_USE_DEVICE_RDMA"] == "1"
    assert env["NCCL_SOCKET_IFNAME"] and "NCCL_BUFFSIZE" in env
    assert f"torchtitan llama3_8b_fsdp: job {job.id}, 2 nodes x 8" in job.output()

    versions = yaml.safe_load((run.workdir / "2.ami_and_containers" / "versions.yaml").read_text())
    base = versions["images"]["training-base"]
    built = run.images["built"]
    assert set(built) == {base, "torchtitan:0.3.0"} and built["torchtitan:0.3.0"]["from"] == [base]
    assert built["torchtitan:0.3.0"]["dockerfile"] == "torchtitan.Dockerfile"
    assert run.images["imported"] == {"/fsx/images/torchtitan.sqsh": "dockerd://torchtitan:0.3.0"}
