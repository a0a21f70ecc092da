"""The README's walkthroughs ("local", "slurm", "cluster", "k8s"), run as written in a copy of the
repository. That every other command block is marked illustrative, with the reason, is part of the
test-case contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from testbed.kube import validate_manifest
from testbed.slurm import REQUIRED_PROGRAMS, cluster_processes
from testbed.standins import run_on_cluster, run_with_standins
from testbed.system import require_programs
from testbed.walkthrough import run_walkthrough

README = Path(__file__).resolve().parents[1] / "README.md"
CASE = "3.test_cases/pytorch/cpu-ddp"


@pytest.mark.slow
def test_readme_local_walkthrough_trains_here(artifacts_root):
    result = run_walkthrough(README, "local", artifacts_root / "wt-local", timeout=600)
    assert result.returncode == 0, result.output[-4000:]
    assert "--log-every" in result.output  # --help
    assert result.output.count("held-out accuracy") == 2  # make local, then one process
    run_dir = result.workdir / CASE / "runs" / "local"
    summary = json.loads((run_dir / "result.json").read_text())
    assert summary["world_size"] == 2 and summary["step"] == 60
    assert (run_dir / "checkpoints" / "step-00000060" / "COMPLETE").is_file()
    one_process = json.loads((result.workdir / CASE / "runs" / "one-process" / "result.json").read_text())
    assert one_process["world_size"] == 1 and one_process["step"] == 20


@pytest.mark.slurm
@pytest.mark.slow
def test_readme_slurm_walkthrough_trains_and_leaves_nothing_running(artifacts_root):
    require_programs("local Slurm", *REQUIRED_PROGRAMS)
    # A short path: Slurm's Unix socket paths live under the copy's .testbed/slurm.
    result = run_walkthrough(README, "slurm", artifacts_root / "wt-slurm", timeout=600)
    assert result.returncode == 0, result.output[-4000:]
    assert "LocalSlurm up: n1, n2" in result.output
    assert "rendezvous 127.0.0.1:" in result.output
    assert "held-out accuracy" in result.output
    assert "/src/train.py --preset wide --run-dir " in result.output  # the DRY_RUN line
    assert "stopped and removed" in result.output
    conf = result.workdir / ".testbed" / "slurm" / "slurm.conf"
    assert not conf.exists()
    assert cluster_processes(conf) == []
    run_dirs = list((result.workdir / CASE / "runs").glob("cpu-ddp-*"))
    assert len(run_dirs) == 1 and json.loads((run_dirs[0] / "result.json").read_text())["step"] == 60


@pytest.mark.slurm
def test_readme_cluster_walkthrough_submits_venv_and_container_jobs(gpu_slurm, artifacts_root, tmp_path):
    """Sections 2 (on a cluster) and 3 as written: the batch script runs on a real 4-node Slurm; only
    srun (the torchrun launches), docker and enroot are stood in for."""
    run = run_on_cluster(
        README,
        "cluster",
        artifacts_root / "cpu-ddp-wt-cluster",
        tmp_path / "bin",
        gpu_slurm,
        instance_type=None,
    )
    jobs = run.jobs
    assert [job.state for job in jobs] == ["COMPLETED"] * 4
    assert [len(job.nodes) for job in jobs] == [4, 4, 2, 2]
    (sbatch,), (make,), (container,), (make_container,) = (run.launches_of(job) for job in jobs)
    torchrun = str(Path(run.workdir, ".venv", "bin", "torchrun"))
    code = str(Path(run.workdir, CASE).resolve())
    for launch in (sbatch, make):  # the venv the Makefile uses: the repository's
        assert launch["num_nodes"] == 4 and launch["options"]["--ntasks-per-node"] == "1"
        assert Path(launch["command"][0]).resolve() == Path(torchrun).resolve()
        assert "--nnodes=4" in launch["command"] and "--preset" in launch["command"]
        assert launch["command"][launch["command"].index("--preset") + 1] == "wide"
        assert f"{code}/src/train.py" in launch["command"]
    for launch in (container, make_container):
        assert launch["options"]["--container-image"] == "/fsx/images/cpu-ddp.sqsh"
        assert launch["options"]["--container-mounts"] == "/fsx:/fsx"
        assert launch["command"][0] == "torchrun" and "/workspace/cpu-ddp/src/train.py" in launch["command"]
        assert f"/fsx/cpu-ddp/runs/cpu-ddp-{launch['job']}" in launch["command"]
    versions = yaml.safe_load((run.workdir / "2.ami_and_containers" / "versions.yaml").read_text())
    assert run.images["built"]["cpu-ddp:dev"]["from"] == [versions["images"]["python-slim"]]
    assert run.images["imported"] == {"/fsx/images/cpu-ddp.sqsh": "dockerd://cpu-ddp:dev"}


def test_readme_k8s_walkthrough_renders_the_manifest(artifacts_root, tmp_path):
    run = run_with_standins(
        README,
        "k8s",
        artifacts_root / "wt-cpu-ddp-k8s",
        tmp_path / "bin",
        timeout=120,
        logs={"cpu-ddp-worker-0": "cpu-ddp-worker-0 started\n"},
    ).check()
    text = (run.workdir / CASE / "kubernetes/cpu-ddp.yaml").read_text()
    assert "image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/cpu-ddp:dev" in text and "${" not in text
    assert validate_manifest(text) == []
    assert run.calls == ["kubectl apply -f kubernetes/cpu-ddp.yaml", "kubectl logs -f cpu-ddp-worker-0"]
    assert [(o["kind"], o["name"]) for o in run.applied] == [("pytorchjob", "cpu-ddp")]
    assert "pytorchjob.kubeflow.org/cpu-ddp created" in run.output
    assert "cpu-ddp-worker-0 started\n" in run.output  # what kubectl logs printed
