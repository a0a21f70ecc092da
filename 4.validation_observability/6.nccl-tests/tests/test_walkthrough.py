"""The README's walkthroughs, run as written in a copy of the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from testbed import kube
from testbed.standins import run_on_cluster, run_with_standins
from testbed.walkthrough import run_walkthrough

README = Path(__file__).resolve().parents[1] / "README.md"
RECORDED = Path(__file__).resolve().parent / "fixtures" / "p5-2node-all_reduce-good.log"


def test_readme_local_walkthrough(artifacts_root):
    result = run_walkthrough(README, "local", artifacts_root / "wt-nccl-tests", timeout=300)
    assert result.returncode == 0, result.output[-4000:]
    assert "# collective-bench 0.1.0" in result.output and "# Out of bounds values : 0 OK" in result.output
    assert "threshold  : 440 GB/s (band 440-490 GB/s of p5.48xlarge, 2 node(s))" in result.output
    assert "NCCL used TCP sockets (NET/Socket), not EFA" in result.output
    png = result.workdir / "4.validation_observability/6.nccl-tests/results/busbw.png"
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.aws_emulator
def test_readme_k8s_walkthrough(aws_emulator, artifacts_root, monkeypatch, tmp_path):
    """Section 5 against the emulator's ECR (the repository the EKS README creates), with a stand-in
    kubectl: it validates the MPIJob, and `kubectl logs` of the launcher prints a recorded nccl-tests log
    tagged as `mpirun --tag-output` prints it."""
    aws_emulator.export(monkeypatch.setenv)
    ecr = aws_emulator.client("ecr")
    uri = ecr.create_repository(repositoryName="nccl-tests")["repository"]["repositoryUri"]
    workdir = artifacts_root / "wt-nccl-tests-k8s"
    folder = workdir / "4.validation_observability" / "6.nccl-tests"
    launcher = tmp_path / "launcher.log"
    launcher.write_text(re.sub(r"^(\d+): ", r"[1,\1]<stdout>:", RECORDED.read_text(), flags=re.MULTILINE))
    try:
        run = run_with_standins(
            README, "k8s", workdir, tmp_path / "bin", timeout=120, logs={"job/nccl-tests-launcher": launcher}
        ).check()
    finally:
        ecr.delete_repository(repositoryName="nccl-tests", force=True)
    assert run.calls == [
        "kubectl apply -f kubernetes/nccl-tests.yaml",
        "kubectl wait --for=condition=Succeeded --timeout=30m mpijob/nccl-tests",
        "kubectl logs job/nccl-tests-launcher",
    ]
    assert [(o["kind"], o["name"]) for o in run.applied] == [("mpijob", "nccl-tests")]
    assert "mpijob.kubeflow.org/nccl-tests created" in run.output
    assert (folder / "all_reduce.log").read_text() == launcher.read_text()
    assert "# Verdict : OK" in run.output and "[1,0]<stdout>" not in run.output
    text = (folder / "kubernetes" / "nccl-tests.yaml").read_text()
    assert kube.validate_manifest(text) == []
    job = yaml.safe_load(text)
    launcher = job["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]
    assert launcher["image"] == f"{uri}:1.0.0" and "-np $(( 2 * 8 ))" in launcher["args"][0]
    assert f"kubectl logs job/{job['metadata']['name']}-launcher > all_reduce.log" in README.read_text()


def test_readme_dry_run_walkthrough(artifacts_root):
    result = run_walkthrough(README, "dry-run", artifacts_root / "wt-nccl-tests-dry-run", timeout=120)
    assert result.returncode == 0, result.output[-4000:]
    srun = "srun --nodes=2 --ntasks-per-node=8 --mpi=pmix --label /opt/nccl-tests/all_reduce_perf -b 8 -e 16G"
    assert srun in result.output
    assert (
        "--ntasks-per-node=1 --kill-on-bad-exit=1" in result.output and "collective_bench.py" in result.output
    )
    assert not (result.workdir / "4.validation_observability/6.nccl-tests/results").exists()  # nothing ran


@pytest.mark.slurm
def test_readme_gpu_cluster_walkthrough_builds_and_submits_on_a_p5_shaped_slurm(
    gpu_slurm, artifacts_root, tmp_path
):
    """Sections 3 and 4 as written: the images are built and imported, the nccl-tests sweep runs in the
    imported image and its verdict judges a recorded 2-node p5 output, and the collective benchmark's
    batch script runs; a real Slurm of 8 nodes x 8 GPUs, only srun (the GPU ranks), docker and enroot
    are stood in for. The probe of -J gets what the image's nccl-tests 2.17.9 answers."""
    run = run_on_cluster(
        README,
        "gpu-cluster",
        artifacts_root / "nccl-tests-wt-gpu",
        tmp_path / "bin",
        gpu_slurm,
        outputs={"all_reduce_perf": str(RECORDED), "grep": 0},
    )
    versions = yaml.safe_load((run.workdir / "2.ami_and_containers" / "versions.yaml").read_text())
    base = versions["images"]["training-base"]
    assert run.images["built"]["nccl-tests:dev"]["from"] == [base] and base in run.images["built"]
    assert run.images["imported"] == {"/fsx/images/nccl-tests.sqsh": "dockerd://nccl-tests:dev"}
    folder = Path(run.workdir, "4.validation_observability", "6.nccl-tests")
    sweep, bench = run.jobs
    assert len(sweep.nodes) == 2 and len(bench.nodes) == 2

    probe, nccl = run.launches_of(sweep)
    assert probe["command"] == ["grep", "-aqs", "--", "--output_file", "/opt/nccl-tests/all_reduce_perf"]
    results = folder / "results" / f"nccl-tests-{sweep.id}"
    assert nccl["num_nodes"] == 2 and nccl["options"]["--ntasks-per-node"] == "8"
    assert nccl["options"]["--container-image"] == "/fsx/images/nccl-tests.sqsh"
    assert nccl["options"]["--container-mounts"] == f"{results.resolve()}:{results.resolve()}"
    assert nccl["command"][0] == "/opt/nccl-tests/all_reduce_perf"
    assert nccl["command"][-2:] == ["-J", f"{results.resolve()}/all_reduce.json"]
    assert nccl["env"]["FI_PROVIDER"] == "efa" and nccl["env"]["NCCL_DEBUG"] == "INFO"
    verdict = sweep.output()
    assert "# Verdict : OK" in verdict and "band 440-490 GB/s of p5.48xlarge, 2 node(s)" in verdict
    rows = (results / "results.csv").read_text().splitlines()
    assert rows[0].startswith("log,") and len(rows) > 1 and all("all_reduce" in row for row in rows[1:])

    (launch,) = run.launches_of(bench)
    assert launch["num_nodes"] == 2 and launch["options"]["--ntasks-per-node"] == "1"
    torchrun = Path(run.workdir, ".venv", "bin", "torchrun")
    assert Path(launch["command"][0]).resolve() == torchrun.resolve()  # the venv make venv uses
    assert "--nproc-per-node=8" in launch["command"] and "--nnodes=2" in launch["command"]
    assert launch["command"][-7:] == [
        str(folder.resolve() / "collective_bench.py"),
        "-b",
        "8",
        "-e",
        "4G",
        "--instance-type",
        "p5.48xlarge",
    ]
    assert launch["env"]["FI_PROVIDER"] == "efa" and launch["env"]["FI_EFA_USE_DEVICE_RDMA"] == "1"
