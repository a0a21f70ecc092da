"""The README's sections 1 and 2 run as written, with this session's venv (megatron-core) as VENV: the
sample data and a 2-rank run here; then a 2-node local Slurm cluster up, `make slurm`, the output, down.
Section 3 ("gpu-cluster") and section 4 ("k8s") run in the project venv with stand-ins: docker, enroot
and srun on a p5-shaped local Slurm; kubectl."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from testbed.slurm import REQUIRED_PROGRAMS, cluster_processes
from testbed.standins import run_on_cluster, run_on_fsx, run_with_standins
from testbed.system import require_programs
from testbed.walkthrough import run_walkthrough

README = Path(__file__).resolve().parents[1] / "README.md"
CASE = Path("3.test_cases/pytorch/megatron-lm")
SESSION_VENV = str(Path(sys.executable).parent.parent)  # the nox session's: torch + megatron-core


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.framework
@pytest.mark.slow
def test_readme_local_walkthrough_prepares_data_and_trains(artifacts_root, monkeypatch):
    monkeypatch.setenv("VENV", SESSION_VENV)
    monkeypatch.setenv("RDZV_PORT", str(free_port()))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    result = run_walkthrough(README, "local", artifacts_root / "megatron-wt-local", timeout=600)
    assert result.returncode == 0, result.output[-4000:]
    assert "wrote data/corpus.bin/.idx: 79 documents" in result.output
    run = result.workdir / CASE / "runs" / "local"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "event" not in r]
    assert [r["step"] for r in steps] == list(range(1, 31)) and steps[-1]["loss"] < steps[0]["loss"] - 0.5
    assert (run / "checkpoints" / "step-00000030" / "COMPLETE").is_file()
    assert '"event": "summary"' in result.output  # the README's tail of metrics.jsonl


@pytest.mark.framework
@pytest.mark.slow
@pytest.mark.slurm
def test_readme_slurm_walkthrough_trains_across_two_nodes(artifacts_root, monkeypatch):
    require_programs("local Slurm", *REQUIRED_PROGRAMS)
    monkeypatch.setenv("VENV", SESSION_VENV)
    monkeypatch.setenv("RDZV_PORT", str(free_port()))
    result = run_walkthrough(README, "slurm", artifacts_root / "megatron-wt-slurm", timeout=600)
    assert result.returncode == 0, result.output[-4000:]
    assert "LocalSlurm up: n1, n2" in result.output and "stopped and removed" in result.output
    assert "megatron-lm tiny: job" in result.output and "summary: step 10" in result.output
    conf = result.workdir / ".testbed" / "slurm" / "slurm.conf"
    assert not conf.exists() and cluster_processes(conf) == []
    runs = list((result.workdir / CASE / "runs").glob("tiny-*"))
    assert len(runs) == 1
    ranks = [json.loads(p.read_text()) for p in sorted((runs[0] / "ranks").glob("rank*.json"))]
    assert {r["node"] for r in ranks} == {"n1", "n2"} and len(ranks) == 2  # 2 nodes x 1 rank: DP=2
    assert (runs[0] / "checkpoints" / "step-00000010" / "COMPLETE").is_file()


@pytest.mark.framework
def test_readme_shared_data_walkthrough_tokenizes_the_corpus_on_fsx(
    artifacts_root, tmp_path, fsx, monkeypatch
):
    """The head node's data step as written: `make data` from /fsx/corpus.jsonl with the tokenizer folder
    under /fsx/tokenizers into /fsx/data/corpus.bin/.idx. The tokenizer folder is the offline sample's
    byte-level BPE (src/sample_data.py) where the Hub's Llama tokenizer would be."""
    sample = tmp_path / "sample"
    made = subprocess.run(
        [sys.executable, "src/sample_data.py", "--output", str(sample)],
        cwd=README.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    (fsx / "tokenizers").mkdir(parents=True, exist_ok=True)
    shutil.copytree(sample / "tokenizer", fsx / "tokenizers" / "llama3", dirs_exist_ok=True)
    shutil.copy(sample / "sample.jsonl", fsx / "corpus.jsonl")
    documents = len((fsx / "corpus.jsonl").read_text().splitlines())
    monkeypatch.setenv("VENV", SESSION_VENV)
    run = run_on_fsx(README, "shared-data", artifacts_root / "megatron-wt-shared-data", tmp_path / "bin", fsx)
    assert f"wrote /fsx/data/corpus.bin/.idx: {documents} documents" in run.output
    info = json.loads((fsx / "data" / "corpus.json").read_text())
    assert info["vocab_size"] == 512 and (fsx / "data" / "corpus.bin").stat().st_size > 0
    assert (fsx / "data" / "corpus.idx").is_file()


# Not marked framework: make k8s needs envsubst only, and the kubectl stand-in the project venv.
def test_readme_k8s_walkthrough_renders_the_manifest(artifacts_root, tmp_path):
    run = run_with_standins(
        README, "k8s", artifacts_root / "wt-megatron-lm-k8s", tmp_path / "bin", timeout=120
    ).check()
    text = (run.workdir / CASE / "build" / "llama3-70b.yaml").read_text()
    assert "image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/megatron-lm:dev" in text and "${" not in text
    assert run.calls == ["kubectl apply -f build/llama3-70b.yaml"]
    assert [(o["kind"], o["name"]) for o in run.applied] == [("pytorchjob", "llama3-70b")]
    assert "pytorchjob.kubeflow.org/llama3-70b created" in run.output


# Not marked framework: the image, the import and the job's launch are stood in for.
@pytest.mark.slurm
def test_readme_gpu_cluster_walkthrough_runs_the_image_on_a_p5_shaped_slurm(
    gpu_slurm, artifacts_root, tmp_path
):
    """Section 3 as written: the image built and imported with enroot, a llama2_70b job submitted in it to
    a real Slurm of 8 nodes x 8 GPUs; only docker, enroot and srun are stood in for."""
    run = run_on_cluster(
        README, "gpu-cluster", artifacts_root / "wt-megatron-lm-gpu", tmp_path / "bin", gpu_slurm
    )

    [job] = run.jobs
    assert job.state == "COMPLETED" and len(job.nodes) == 4
    [launch] = run.launches_of(job)
    options, command, env = launch["options"], launch["command"], launch["env"]
    assert launch["num_nodes"] == 4 and options["--ntasks-per-node"] == "1"
    assert options["--container-image"] == "/fsx/images/megatron-lm.sqsh"
    assert options["--container-mounts"] == "/fsx:/fsx"
    assert options["--container-workdir"] == "/workspace/megatron-lm"
    assert command[:3] == ["torchrun", "--nnodes=4", "--nproc-per-node=8"]  # 8 GPUs seen by nvidia-smi
    assert f"--rdzv-id={job.id}" in command
    assert command[command.index("/workspace/megatron-lm/src/train.py") :] == [
        "/workspace/megatron-lm/src/train.py",
        "--preset",
        "llama2_70b",
        "--data-prefix",
        "/fsx/data/corpus",
        "--run-dir",
        f"/fsx/megatron-lm/runs/llama2_70b-{job.id}",
    ]
    assert env["FI_PROVIDER"] == "efa" and env["FI_EFA_USE_DEVICE_RDMA"] == "1"
    assert env["CUDA_DEVICE_MAX_CONNECTIONS"] == "1" and "NCCL_SOCKET_IFNAME" in env
    assert f"megatron-lm llama2_70b: job {job.id}, 4 nodes x 8" in job.output()

    versions = yaml.safe_load((run.workdir / "2.ami_and_containers" / "versions.yaml").read_text())
    built = run.images["built"]["megatron-lm:dev"]
    assert built["from"] == [versions["images"]["ngc-pytorch"]]  # FROM the pinned NGC image
    assert built["dockerfile"] == "megatron-lm.Dockerfile"
    assert run.images["imported"] == {"/fsx/images/megatron-lm.sqsh": "dockerd://megatron-lm:dev"}


@pytest.mark.framework
@pytest.mark.slow
def test_readme_dry_run_prints_the_srun_command(artifacts_root):
    result = run_walkthrough(README, "dry-run", artifacts_root / "wt-megatron-lm-dry", timeout=120)
    assert result.returncode == 0, result.output[-4000:]
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("srun --nodes=") and "--preset llama2_70b" in line


@pytest.mark.framework
@pytest.mark.slurm
def test_readme_gpu_venv_walkthrough_submits_both_presets_on_a_p5_shaped_slurm(
    gpu_slurm, artifacts_root, tmp_path, monkeypatch
):
    """Section 2's GPU commands as written, with this session's venv (megatron-core) as the venv `make
    venv` made: llama3_1_8b on 1 node and llama3_1_70b on 8 of a real Slurm of 8 nodes x 8 GPUs; only srun
    is stood in for, and it checks that the venv's torchrun and src/train.py exist."""
    monkeypatch.setenv("VENV", SESSION_VENV)
    run = run_on_cluster(
        README, "gpu-venv", artifacts_root / "wt-megatron-lm-venv", tmp_path / "bin", gpu_slurm
    )
    folder = (run.workdir / CASE).resolve()
    small, large = run.jobs
    assert len(small.nodes) == 1 and len(large.nodes) == 8
    for job, preset, nodes, extra in (
        (small, "llama3_1_8b", 1, []),
        (large, "llama3_1_70b", 8, ["--max-steps", "2000"]),
    ):
        [launch] = run.launches_of(job)
        command, env = launch["command"], launch["env"]
        assert launch["num_nodes"] == nodes and launch["options"]["--ntasks-per-node"] == "1"
        assert "--container-image" not in launch["options"]
        assert command[:3] == [f"{SESSION_VENV}/bin/torchrun", f"--nnodes={nodes}", "--nproc-per-node=8"]
        assert command[command.index(f"{folder}/src/train.py") :] == [
            f"{folder}/src/train.py",
            "--preset",
            preset,
            "--data-prefix",
            "/fsx/data/corpus",
            "--run-dir",
            f"{folder}/runs/{preset}-{job.id}",
            *extra,
        ]
        assert env["FI_PROVIDER"] == "efa" and env["FI_EFA_USE_DEVICE_RDMA"] == "1"
        assert env["CUDA_DEVICE_MAX_CONNECTIONS"] == "1"
        assert f"megatron-lm {preset}: job {job.id}, {nodes} nodes x 8" in job.output()
