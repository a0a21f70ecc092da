"""The README's walkthroughs, run as written in a copy of the repository: "preview" (the launch previews and
the manifest), "gpu-machine" (section 1's build, data step and training in the image, docker stood in for),
"k8s" (kubectl stood in for) and "gpu-cluster" (section 3: the image built, imported and two jobs submitted
to a p5-shaped local Slurm, with docker, enroot and srun stood in for)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from testbed.kube import validate_manifest
from testbed.standins import JOB_TOOLS, run_on_cluster, run_with_standins
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
    run = run_with_standins(
        README,
        "k8s",
        artifacts_root / "wt-mosaicml-composer-k8s",
        tmp_path / "bin",
        timeout=120,
        logs={"composer-master-0": "composer-master-0 started\n"},
    ).check()
    text = (run.workdir / CASE / "build" / "composer.yaml").read_text()
    assert "image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/composer:0.32.1" in text and "${" not in text
    assert validate_manifest(text) == []
    assert run.calls == ["kubectl apply -f build/composer.yaml", "kubectl logs -f composer-master-0"]
    assert [(o["kind"], o["name"]) for o in run.applied] == [("pytorchjob", "composer")]
    assert "pytorchjob.kubeflow.org/composer created" in run.output
    assert "composer-master-0 started\n" in run.output  # what kubectl logs printed


@pytest.mark.slurm
def test_readme_gpu_cluster_walkthrough_runs_the_image_on_a_p5_shaped_slurm(
    gpu_slurm, artifacts_root, tmp_path
):
    """Section 3 as written: the base and the image built, the image imported with enroot, an mpt-1b job
    on 2 nodes and an mpt-7b job on 4 submitted in it to a real Slurm of 8 nodes x 8 GPUs; only docker,
    enroot and srun are stood in for."""
    run = run_on_cluster(
        README, "gpu-cluster", artifacts_root / "wt-composer-gpu", tmp_path / "bin", gpu_slurm
    )

    jobs = run.jobs
    assert [job.state for job in jobs] == ["COMPLETED"] * 2
    assert [len(job.nodes) for job in jobs] == [2, 4]
    by_job = {launch["job"]: launch for launch in run.launches}  # the jobs may run side by side
    for job, preset, nodes, extra in [
        (jobs[0], "mpt-1b", 2, []),
        (jobs[1], "mpt-7b", 4, ["max_duration=2000ba"]),
    ]:
        launch = by_job[str(job.id)]
        options, command, env = launch["options"], launch["command"], launch["env"]
        assert launch["num_nodes"] == nodes and options["--ntasks-per-node"] == "1"
        assert options["--container-image"] == "/fsx/images/composer.sqsh"
        assert options["--container-mounts"] == "/fsx:/fsx"
        # Each node's bash sets NODE_RANK from srun's SLURM_NODEID, then execs one composer launcher.
        assert command[:2] == ["bash", "-c"] and "NODE_RANK=$SLURM_NODEID" in command[2]
        launcher = command[command.index("composer") :]
        head = launcher[launcher.index("--master_addr") + 1]
        assert launcher[:5] == ["composer", "--nproc", "8", "--world_size", str(nodes * 8)]
        first_node = gpu_slurm.scontrol("show", "node", job.nodes[0])
        assert head == re.search(r"NodeAddr=(\S+)", first_node)[1]  # the master: the job's first node
        assert launcher[launcher.index("-m") :] == [
            "-m",
            "llmfoundry.cli.cli",
            "train",
            f"/workspace/composer/yamls/{preset}.yaml",
            f"run_name=composer-{preset}-{job.id}",
            f"save_folder=/fsx/composer/runs/{preset}-{job.id}/checkpoints",
            "variables.data_local=/fsx/composer/data/c4",
            *extra,
        ]
        assert env["FI_PROVIDER"] == "efa" and env["FI_EFA_USE_DEVICE_RDMA"] == "1"
        assert "NCCL_SOCKET_IFNAME" in env
        assert f"composer {preset}: job {job.id}, {nodes} nodes x 8" in job.output()

    versions = yaml.safe_load((run.workdir / "2.ami_and_containers" / "versions.yaml").read_text())
    base = versions["images"]["training-base"]
    built = run.images["built"]
    assert set(built) == {base, "composer:0.32.1"} and built["composer:0.32.1"]["from"] == [base]
    assert run.images["imported"] == {"/fsx/images/composer.sqsh": "dockerd://composer:0.32.1"}


def test_readme_gpu_machine_walkthrough_builds_then_runs_data_and_training_in_the_image(
    artifacts_root, tmp_path
):
    """Section 1's GPU block as written: the base and the image built, `make data` and `make local` pass
    their checks and run the image; docker is stood in for (it checks the builds and records each run)."""
    run = run_with_standins(
        README, "gpu-machine", artifacts_root / "wt-composer-local", tmp_path / "bin", tools=JOB_TOOLS
    ).check()
    case = run.workdir / CASE
    versions = yaml.safe_load((run.workdir / "2.ami_and_containers" / "versions.yaml").read_text())
    built = run.images["built"]
    assert set(built) == {versions["images"]["training-base"], "composer:dev"}
    assert built["composer:dev"]["from"] == [versions["images"]["training-base"]]
    assert Path(built["composer:dev"]["dockerfile"]).name == "composer.Dockerfile"
    data, train = run.images["runs"]
    assert data["image"] == train["image"] == "composer:dev"
    assert data["options"] == ["--rm", "-v", f"{case / 'data/c4'}:/data"]
    assert data["command"][:3] == ["llmfoundry", "data_prep", "convert_dataset_hf"]
    assert "train_small,val_small" in data["command"] and "--concat-tokens" in data["command"]
    assert train["options"] == [
        "--rm",
        "--gpus",
        "all",
        "--ipc=host",
        "-v",
        f"{case / 'data/c4'}:/data",
        "-v",
        f"{case / 'runs/local'}:/run-dir",
    ]
    assert train["command"] == [
        "composer",
        "--nproc",
        "8",
        "-m",
        "llmfoundry.cli.cli",
        "train",
        "yamls/mpt-125m.yaml",
        "run_name=local-mpt-125m",
        "save_folder=/run-dir/checkpoints",
        "variables.data_local=/data",
        "max_duration=200ba",
    ]
