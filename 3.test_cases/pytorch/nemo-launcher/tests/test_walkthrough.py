"""The README's commands as written: the overrides tool, the launch script's and bootstrap's dry runs,
`make local` in the image (docker stood in for), the bootstrap job on a p5-shaped Slurm and the image steps
(stand-ins for srun, docker and enroot), and `make k8s` (project venv; the launcher itself needs GPUs and
the NeMo container)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from testbed.kube import validate_manifest
from testbed.standins import JOB_TOOLS, run_on_cluster, run_with_standins
from testbed.walkthrough import run_walkthrough

README = Path(__file__).resolve().parents[1] / "README.md"
CASE = Path("3.test_cases/pytorch/nemo-launcher")


def test_readme_dry_run_walkthrough(artifacts_root):
    result = run_walkthrough(README, "dry-run", artifacts_root / "nemo-launcher-wt-dry", timeout=120)
    assert result.returncode == 0, result.output[-3000:]
    assert "training=llama/llama3_8b\ntraining.trainer.num_nodes=2" in result.output
    assert "python3 /fsx/nemo-launcher/launcher_scripts/main.py cluster_type=bcm" in result.output
    assert "training=gpt3/20b training.trainer.num_nodes=8" in result.output
    assert "training.trainer.max_steps=100" in result.output
    assert "srun --nodes=1 --ntasks=1 --container-image=nvcr.io/nvidia/nemo:24.09" in result.output


@pytest.mark.slurm
def test_readme_gpu_cluster_bootstraps_on_a_p5_shaped_slurm_and_builds_the_image(
    gpu_slurm, artifacts_root, tmp_path
):
    """Sections 2 and 3 as written: `sbatch --wait slurm/bootstrap.sbatch` on a real Slurm of 8 nodes x 8
    GPUs (srun in the NeMo container stood in for), then `make container` and `make enroot`."""
    run = run_on_cluster(
        README, "gpu-cluster", artifacts_root / "nemo-launcher-wt-gpu", tmp_path / "bin", gpu_slurm
    )
    (job,) = run.jobs
    assert job.state == "COMPLETED" and len(job.nodes) == 1
    (launch,) = run.launches_of(job)
    assert launch["options"] == {
        "--nodes": "1",
        "--ntasks": "1",
        "--container-image": "nvcr.io/nvidia/nemo:24.09",
        "--container-mounts": "/fsx:/fsx",
    }
    assert launch["command"][:2] == ["bash", "-c"]
    assert launch["command"][-2:] == ["/opt/NeMo-Framework-Launcher", "/fsx/nemo-launcher"]
    assert (
        "copied /opt/NeMo-Framework-Launcher from nvcr.io/nvidia/nemo:24.09 to /fsx/nemo-launcher"
        in (run.workdir / CASE / f"nemo-launcher-bootstrap_{job.id}.out").read_text()
    )
    versions = yaml.safe_load((run.workdir / "2.ami_and_containers" / "versions.yaml").read_text())
    image = run.images["built"]["nemo-launcher:24.09"]
    assert image["from"] == [versions["images"]["nemo-launcher"]]
    assert image["dockerfile"] == "nemo-launcher.Dockerfile"
    assert run.images["imported"] == {"/fsx/images/nemo-launcher.sqsh": "dockerd://nemo-launcher:24.09"}


def test_readme_k8s_walkthrough(artifacts_root, tmp_path):
    run = run_with_standins(
        README,
        "k8s",
        artifacts_root / "nemo-launcher-wt-k8s",
        tmp_path / "bin",
        timeout=120,
        logs={"nemo-launcher-worker-0": "nemo-launcher-worker-0 started\n"},
    ).check()
    text = (run.workdir / CASE / "kubernetes" / "nemo-launcher.yaml").read_text()
    assert validate_manifest(text) == [] and "nemo-megatron-gpt3_5b_hydra.yaml" in text
    assert run.calls == [
        "kubectl apply -f kubernetes/nemo-launcher.yaml",
        "kubectl logs -f nemo-launcher-worker-0",
    ]
    assert [(o["kind"], o["name"]) for o in run.applied] == [("pytorchjob", "nemo-launcher")]
    assert "pytorchjob.kubeflow.org/nemo-launcher created" in run.output
    assert "nemo-launcher-worker-0 started\n" in run.output  # what kubectl logs printed


def test_readme_gpu_machine_walkthrough_runs_the_launcher_interactive_in_the_image(artifacts_root, tmp_path):
    """Section 1 as written: the image built FROM NVIDIA's NeMo image, then `make local` builds the preset's
    overrides (before Docker: a bad preset stops there) and runs main.py in the image on this machine's GPUs
    in the launcher's interactive mode; docker is stood in for (it checks the build and records the run)."""
    run = run_with_standins(
        README, "gpu-machine", artifacts_root / "nemo-launcher-wt-local", tmp_path / "bin", tools=JOB_TOOLS
    ).check()
    versions = yaml.safe_load((run.workdir / "2.ami_and_containers" / "versions.yaml").read_text())
    image = run.images["built"]["nemo-launcher:24.09"]
    assert list(run.images["built"]) == ["nemo-launcher:24.09"]
    assert image["from"] == [versions["images"]["nemo-launcher"]]
    results = run.workdir / CASE / "results"
    assert results.is_dir()
    (recorded,) = run.images["runs"]
    assert recorded["image"] == "nemo-launcher:24.09"
    assert recorded["options"] == ["--rm", "--gpus", "all", "--shm-size=16g", "-v", f"{results}:/results"]
    command = recorded["command"]
    assert command[:2] == ["python3", "/opt/NeMo-Framework-Launcher/launcher_scripts/main.py"]
    assert "training=gpt3/5b" in command and "stages=[training]" in command
    # The preset's cluster settings first, then make local's: the later override wins in hydra.
    assert command.index("cluster_type=bcm") < command.index("cluster_type=interactive")
    assert command[-5:] == [
        "cluster_type=interactive",
        "launcher_scripts_path=/opt/NeMo-Framework-Launcher/launcher_scripts/",
        "base_results_dir=/results",
        "training.trainer.num_nodes=1",
        "training.trainer.devices=8",
    ]
