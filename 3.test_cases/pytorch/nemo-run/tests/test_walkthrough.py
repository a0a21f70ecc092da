"""The README's commands as written: `make k8s` and the sbatch DRY_RUN, the image steps and the sbatch on a
p5-shaped Slurm (project venv, stand-ins for docker, enroot and srun); `make local` (nemo-run's
LocalExecutor, 2 torchrun ranks), `make dryrun` of a real recipe and `make slurm` of the CPU variant on the
local Slurm (the nemo-run session)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from testbed.slurm import REQUIRED_PROGRAMS, Job
from testbed.standins import run_on_cluster, run_with_standins
from testbed.system import require_programs
from testbed.walkthrough import run_walkthrough

README = Path(__file__).resolve().parents[1] / "README.md"
CASE = Path("3.test_cases/pytorch/nemo-run")


def test_readme_k8s_walkthrough(artifacts_root, tmp_path):
    run = run_with_standins(
        README,
        "k8s",
        artifacts_root / "nemo-run-wt-k8s",
        tmp_path / "bin",
        timeout=120,
        logs={"nemo-run-worker-0": "nemo-run-worker-0 started\n"},
    ).check()
    assert "wrote kubernetes/nemo-run.yaml" in run.output
    assert "srun --nodes=2 --ntasks-per-node=1 --kill-on-bad-exit=1" in run.output
    assert run.calls == ["kubectl apply -f kubernetes/nemo-run.yaml", "kubectl logs -f nemo-run-worker-0"]
    assert [(o["kind"], o["name"]) for o in run.applied] == [("pytorchjob", "nemo-run")]
    assert "pytorchjob.kubeflow.org/nemo-run created" in run.output
    assert "nemo-run-worker-0 started\n" in run.output  # what kubectl logs printed


@pytest.mark.slurm
def test_readme_gpu_cluster_builds_imports_and_submits_on_a_p5_shaped_slurm(
    gpu_slurm, artifacts_root, tmp_path
):
    """Section 3 as written: the image checked and imported, then `sbatch slurm/nemo-run.sbatch` in it on a
    real Slurm of 8 nodes x 8 GPUs; only docker, enroot, nvidia-smi and srun (the GPU ranks) stand in."""
    run = run_on_cluster(
        README, "gpu-cluster", artifacts_root / "nemo-run-wt-gpu", tmp_path / "bin", gpu_slurm
    )
    (job,) = run.jobs
    assert job.state == "COMPLETED" and len(job.nodes) == 2
    (launch,) = run.launches_of(job)
    assert launch["num_nodes"] == 2 and launch["options"]["--ntasks-per-node"] == "1"
    assert launch["options"]["--container-image"] == "/fsx/images/nemo-run.sqsh"
    assert launch["options"]["--container-mounts"] == "/fsx:/fsx"
    command = launch["command"]
    assert command[:3] == ["torchrun", "--nnodes=2", "--nproc-per-node=8"]  # 8: the node's GPUs (nvidia-smi)
    script = command.index("/workspace/nemo-run/src/launch.py")
    assert command[script + 1 :] == [
        "--preset",
        "llama3_8b_pretrain",
        "--direct",
        "--nodes",
        "2",
        "--log-dir",
        f"/fsx/nemo-run/runs/llama3_8b_pretrain-{job.id}",
        "--max-steps",
        "100",
    ]
    assert launch["env"]["FI_PROVIDER"] == "efa" and launch["env"]["FI_EFA_USE_DEVICE_RDMA"] == "1"
    versions = yaml.safe_load((run.workdir / "2.ami_and_containers" / "versions.yaml").read_text())
    assert run.images["built"]["nemo-run:25.11"]["from"] == [versions["images"]["nemo"]]
    assert run.images["imported"] == {"/fsx/images/nemo-run.sqsh": "dockerd://nemo-run:25.11"}


@pytest.mark.framework
# Pipes nemo-run's in-process runs (test_launch.py) leave to the garbage collector may be reported here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_readme_local_and_dryrun_walkthroughs(artifacts_root, monkeypatch):
    # The venv of this session stands in for `make venv`'s (the Makefile prefers the case's nox venv).
    monkeypatch.setenv("VENV", str(Path(sys.executable).parent.parent))
    monkeypatch.setenv("NEMORUN_HOME", str(artifacts_root / "nemo-run-wt-home"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    local = run_walkthrough(README, "local", artifacts_root / "nemo-run-wt-local", timeout=300)
    assert local.returncode == 0, local.output[-3000:]
    assert "tiny: 2 ranks, 20 steps" in local.output
    ranks = [
        json.loads((local.workdir / CASE / "runs" / "tiny" / f"rank{r}.json").read_text()) for r in (0, 1)
    ]
    assert [r["world_size"] for r in ranks] == [2, 2] and ranks[0]["weight"] == ranks[1]["weight"]
    assert ranks[0]["last_loss"] < ranks[0]["first_loss"] / 2
    monkeypatch.delenv("NEMORUN_HOME")  # as a user runs it: the dry run writes to a scratch home it removes
    dry = run_walkthrough(README, "dryrun", artifacts_root / "nemo-run-wt-dryrun", timeout=300)
    assert dry.returncode == 0, dry.output[-3000:]
    assert "#SBATCH --nodes=2" in dry.output and "--container-image nvcr.io/nvidia/nemo:25.11" in dry.output
    assert "source " in dry.output and "/slurm/efa-env.sh" in dry.output
    assert not os.path.exists("/fsx/nemo-run")  # a dry run writes nothing on the cluster's job folder


@pytest.mark.framework
# Pipes nemo-run's in-process runs (test_launch.py) leave to the garbage collector may be reported here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.slurm
@pytest.mark.slow
def test_readme_cpu_slurm_walkthrough_submits_tiny_with_nemo_runs_executor(
    local_slurm, artifacts_root, monkeypatch
):
    """Section 2's CPU variant as written: the cluster file, then `make slurm ... --no-container`: nemo-run's
    SlurmExecutor writes and submits its script to the local 2-node Slurm; both nodes' ranks finish."""
    require_programs("local Slurm", *REQUIRED_PROGRAMS)
    # The venv of this session stands in for `make venv`'s (on a cluster: on shared storage).
    monkeypatch.setenv("VENV", str(Path(sys.executable).parent.parent))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("NEMORUN_HOME", raising=False)
    result = run_walkthrough(
        README,
        "cpu-slurm",
        artifacts_root / "nemo-run-wt-cpu-slurm",
        timeout=180,
        env={"SLURM_CONF": str(local_slurm.conf_path)},
    )
    assert result.returncode == 0, result.output[-3000:]
    runs = result.workdir / CASE / "runs" / "slurm"
    (script,) = (runs / "experiments").glob("tiny/*/tiny_sbatch.sh")
    text = script.read_text()
    assert "--container-image" not in text and f"export PATH={Path(sys.executable).parent}:$PATH" in text
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and "job exited with code" not in job_output(runs, "sbatch_*.out"):
        time.sleep(2)
    output = job_output(runs, "sbatch_*.out")
    assert "job exited with code 0" in output, output[-3000:] + job_output(runs, "log-*.out")[-3000:]
    ranks = [json.loads(p.read_text()) for p in sorted((runs / "tiny").glob("rank*.json"))]
    assert sorted(r["slurm_node"] for r in ranks) == ["n1", "n2"] and {r["world_size"] for r in ranks} == {2}
    assert "tiny: 2 ranks, 10 steps" in job_output(runs, "log-*.out")


def job_output(runs: Path, pattern: str) -> str:
    """What nemo-run's job wrote: the batch script's output (sbatch_*) or the ranks' log (log-*)."""
    return "".join(p.read_text(errors="replace") for p in runs.glob(f"experiments/tiny/*/tiny/{pattern}"))


@pytest.mark.framework
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.slurm
def test_readme_submit_walkthrough_writes_experiments_on_fsx_and_runs_them_on_a_p5_shaped_slurm(
    gpu_slurm, fsx, artifacts_root, tmp_path, monkeypatch
):
    """Section 2's submit as written, from a login node that shares /fsx with the p5-shaped Slurm:
    nemo-run writes each experiment under the cluster file's job_dir on /fsx and calls sbatch; each job
    runs its generated script (srun stood in for: it checks the image and records the launch)."""
    monkeypatch.setenv("VENV", str(Path(sys.executable).parent.parent))
    monkeypatch.delenv("NEMORUN_HOME", raising=False)
    run = run_on_cluster(
        README,
        "submit",
        artifacts_root / "nemo-run-wt-submit",
        tmp_path / "bin",
        gpu_slurm,
        outputs={"hostname": True},  # the head node's address for the rendezvous, asked with srun
    )
    jobs = [Job(gpu_slurm, int(n)) for n in re.findall(r"^- Job id: (\d+)$", run.output, re.M)]
    assert [job.wait(120) for job in jobs] == ["COMPLETED", "COMPLETED"]
    address = subprocess.run(["hostname", "--ip-address"], capture_output=True, text=True, check=True)
    for job, name, steps, nodes in zip(
        jobs, ["llama3_8b_pretrain", "llama3_70b_finetune"], ["1000", None], [2, 1], strict=True
    ):
        (experiment,) = (fsx / "nemo-run" / "experiments" / name).iterdir()  # on /fsx, as the job read it
        assert (experiment / f"{name}_sbatch.sh").is_file() and (experiment / "_DONE").is_file()
        config = (experiment / name / "configs" / f"{name}_config.yaml").read_text()
        if steps:
            assert f"max_steps: {steps}" in config
        hostname, launch = run.launches_of(job)
        assert hostname["command"] == ["hostname", "--ip-address"]
        assert launch["options"]["--container-image"] == "nvcr.io/nvidia/nemo:25.11"
        mounts = f"/fsx:/fsx,/{experiment.relative_to(fsx.parent)}/{name}:/nemo_run"
        assert launch["options"]["--container-mounts"] == mounts
        command = launch["command"]
        assert command[0] == "torchrun" and command[command.index("--nnodes") + 1] == str(nodes)
        if nodes > 1:
            endpoint = f"{address.stdout.split()[0]}:29500"
            assert command[command.index("--rdzv-endpoint") + 1] == endpoint
        assert command[-4:] == [
            "nemo_run.core.runners.fdl_runner",
            "-n",
            name,
            f"/nemo_run/configs/{name}_fn_or_script",
        ]
        assert launch["env"]["FI_PROVIDER"] == "efa" and len(job.nodes) == nodes
