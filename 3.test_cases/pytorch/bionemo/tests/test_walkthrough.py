"""The README's walkthroughs ("preview", "gpu-machine", "gpu-cluster", "k8s"), run as written in a copy of
the repository. That every other command block is marked illustrative, with the reason, is part of the
test-case contract."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from testbed import kube
from testbed.standins import JOB_TOOLS, run_on_cluster, run_on_fsx, run_with_standins
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


@pytest.mark.slurm
def test_readme_gpu_cluster_builds_imports_and_submits_on_a_p5_shaped_slurm(
    gpu_slurm, artifacts_root, tmp_path
):
    """Section 3 as written: the image checked and imported, then `make slurm` and `sbatch` on a real
    Slurm of 8 nodes x 8 GPUs; only docker, enroot and srun (the GPU tasks) are stood in for."""
    run = run_on_cluster(
        README, "gpu-cluster", artifacts_root / "wt-bionemo-gpu", tmp_path / "bin", gpu_slurm
    )
    jobs = run.jobs
    assert [job.state for job in jobs] == ["COMPLETED"] * 2
    assert [len(job.nodes) for job in jobs] == [2, 4]
    versions = yaml.safe_load((run.workdir / "2.ami_and_containers" / "versions.yaml").read_text())
    assert run.images["built"]["bionemo:dev"]["from"] == [versions["images"]["bionemo-framework"]]
    assert run.images["imported"] == {"/fsx/images/bionemo.sqsh": "dockerd://bionemo:dev"}
    (esm2_650m,), (esm2_3b,) = (run.launches_of(job) for job in jobs)
    for launch, nodes in ((esm2_650m, "2"), (esm2_3b, "4")):
        assert launch["options"]["--ntasks-per-node"] == "8" and launch["options"]["--nodes"] == nodes
        assert launch["options"]["--container-image"] == "/fsx/images/bionemo.sqsh"
        assert launch["options"]["--container-workdir"] == "/workspace/bionemo-aws"
        assert launch["command"][:3] == ["python", "-m", "bionemo.esm2.scripts.train_esm2"]
        command = launch["command"]
        assert command[command.index("--num-nodes") + 1] == nodes and "--resume-if-exists" in command
        assert launch["env"]["FI_PROVIDER"] == "efa" and launch["env"]["FI_EFA_USE_DEVICE_RDMA"] == "1"
    assert esm2_650m["command"][esm2_650m["command"].index("--num-layers") + 1] == "33"
    assert esm2_3b["command"][esm2_3b["command"].index("--num-layers") + 1] == "36"


def test_readme_gpu_machine_downloads_then_trains_in_the_image_with_fsx_mounted(
    artifacts_root, tmp_path, fsx
):
    """Section 1's GPU machine as written: NVIDIA's data downloaded onto /fsx in the image, then `make
    local`, which first asks nvidia-smi for the driver, trains on the machine's 8 GPUs with /fsx mounted.
    Docker is stood in for (it checks the image and each bind mount and records the runs)."""
    run = run_on_fsx(
        README,
        "gpu-machine",
        artifacts_root / "wt-bionemo-local",
        tmp_path / "bin",
        fsx,
        tools=JOB_TOOLS,
        instance_type="p5.48xlarge",
        images_present=["bionemo:dev"],  # section 3's build, on this machine
    )
    download, train = run.images["runs"]
    assert download["options"] == ["--rm", "-v", "/fsx:/fsx"] and download["image"] == "bionemo:dev"
    assert download["command"] == [
        "download_bionemo_data",
        "esm2/testdata_esm2_pretrain:2.0",
        "--source",
        "ngc",
    ]
    assert train["image"] == "bionemo:dev" and train["options"][-2:] == ["-v", "/fsx:/fsx"]
    assert train["options"][:4] == ["--rm", "--gpus", "all", "--ipc=host"]
    assert train["command"] == [
        "python",
        "src/bionemo_args.py",
        "run",
        "--preset",
        "esm2-8m",
        "--nodes",
        "1",
        "--gpus-per-node",
        "8",
        "--shared-dir",
        "/fsx",
        "--result-dir",
        "/fsx/bionemo/results",
        "--",
        "--num-steps",
        "100",
    ]


def test_readme_k8s_renders_a_valid_job(artifacts_root, tmp_path):
    run = run_with_standins(
        README,
        "k8s",
        artifacts_root / "wt-bionemo-k8s",
        tmp_path / "bin",
        timeout=300,
        logs={"bionemo-worker-0": "bionemo-worker-0 started\n"},
    ).check()
    text = (run.workdir / CASE / "build" / "train.yaml").read_text()
    assert kube.validate_manifest(text) == []
    assert yaml.safe_load(text)["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 4
    assert 'nvidia.com/gpu: "8"' in run.output and 'vpc.amazonaws.com/efa: "32"' in run.output
    assert run.calls == ["kubectl apply -f build/train.yaml", "kubectl logs -f bionemo-worker-0"]
    assert [(o["kind"], o["name"]) for o in run.applied] == [("pytorchjob", "bionemo")]
    assert "pytorchjob.kubeflow.org/bionemo created" in run.output
    assert "bionemo-worker-0 started\n" in run.output  # what kubectl logs printed
