"""The README's walkthroughs, run as written in a copy of the repository: "configs" (the generator, a
DRY_RUN preview, make k8s), "gpu-machine" (section 1's build and `make local` runs, docker stood in for),
"k8s" (kubectl stood in for) and "image" (section 3's build, enroot import and jobs on a p5-shaped
local Slurm with /fsx; docker, enroot and srun stood in for). That every other command block is marked
illustrative, with the reason, is part of the test-case contract."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from testbed.kube import validate_manifest
from testbed.standins import JOB_TOOLS, run_on_cluster, run_with_standins
from testbed.walkthrough import run_walkthrough

README = Path(__file__).resolve().parents[1] / "README.md"
CASE = "3.test_cases/pytorch/picotron"


def test_readme_configs_walkthrough(artifacts_root):
    result = run_walkthrough(README, "configs", artifacts_root / "wt-picotron", timeout=120)
    assert result.returncode == 0, result.output[-4000:]
    assert "llama3_1_70b-16nodes   16 x 8 GPUs  tp 8 pp 4 cp 1 dp  4" in result.output  # --list
    mine = json.loads((result.workdir / CASE / "runs" / "my-layout.json").read_text())
    assert mine["distributed"]["dp_size"] == 4 and mine["training"]["gradient_accumulation_steps"] == 64
    assert "error: bad: tp(8) * pp(1) * cp(1) * dp(3) = 24 != world size 32" in result.output
    assert "refused, exit 2" in result.output and not (result.workdir / CASE / "runs" / "bad.json").exists()
    assert "srun --nodes=8 --ntasks-per-node=1" in result.output  # the DRY_RUN line
    manifest = result.workdir / CASE / "build" / "picotron.yaml"
    assert "/workspace/picotron/configs/llama3_1_8b-2nodes.json" in manifest.read_text()


def test_readme_k8s_walkthrough_renders_a_valid_pytorchjob(artifacts_root, tmp_path):
    run = run_with_standins(
        README,
        "k8s",
        artifacts_root / "wt-picotron-k8s",
        tmp_path / "bin",
        timeout=120,
        logs={"picotron-worker-0": "picotron-worker-0 started\n"},
    ).check()
    text = (run.workdir / CASE / "build" / "picotron.yaml").read_text()
    assert "image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/picotron:59714b1" in text and "${" not in text
    assert validate_manifest(text) == []
    assert run.calls == [
        "kubectl create secret generic hf-token --from-literal=token=hf_...",
        "kubectl apply -f build/picotron.yaml",
        "kubectl logs -f picotron-worker-0",
    ]
    assert [(o["kind"], o["name"]) for o in run.applied] == [
        ("secret", "hf-token"),
        ("pytorchjob", "picotron"),
    ]
    assert "secret/hf-token created" in run.output
    assert "picotron-worker-0 started\n" in run.output  # what kubectl logs printed


def test_readme_image_walkthrough_builds_imports_and_submits_the_jobs(
    artifacts_root, tmp_path, gpu_slurm, fsx
):
    """Section 3 as written on a p5-shaped Slurm whose /fsx the head node shares: the training base, the
    image FROM it with this folder as the context (every COPY source present), its enroot import to
    /fsx, then the three jobs in it: `make slurm` (nodes from the preset), a preset and a layout of your
    own on /fsx with plain sbatch. Each job verifies its layout against its GPUs and makes its run folder
    on /fsx before srun (stood in for: it checks the image and records the launch)."""
    layout = fsx / "configs" / "my-layout.json"  # a layout of your own, on the shared storage
    layout.parent.mkdir(parents=True, exist_ok=True)
    layout.write_text(
        (Path(__file__).resolve().parents[1] / "configs" / "llama3_1_8b-4nodes.json").read_text()
    )
    run = run_on_cluster(
        README, "image", artifacts_root / "wt-picotron-image", tmp_path / "bin", gpu_slurm, timeout=180
    )
    versions = yaml.safe_load((run.workdir / "2.ami_and_containers" / "versions.yaml").read_text())
    base = versions["images"]["training-base"]
    built = run.images["built"]
    assert set(built) == {base, "picotron:59714b1"}
    assert built[base]["dockerfile"] == "base.Dockerfile"
    assert built["picotron:59714b1"] == {
        "dockerfile": "picotron.Dockerfile",
        "context": ".",
        "from": [base],
        "build_args": {},
    }
    assert run.images["imported"] == {"/fsx/images/picotron.sqsh": "dockerd://picotron:59714b1"}
    assert [call.split()[:2] for call in run.calls[:3]] == [
        ["docker", "build"],
        ["docker", "build"],
        ["enroot", "import"],
    ]
    jobs = run.jobs
    assert [len(job.nodes) for job in jobs] == [2, 4, 4]
    for job, preset, config in zip(
        jobs,
        ["llama3_1_8b-2nodes", "llama3_1_70b-4nodes", "llama3_1_8b-2nodes"],
        [
            "/workspace/picotron/configs/llama3_1_8b-2nodes.json",
            "/workspace/picotron/configs/llama3_1_70b-4nodes.json",
            "/fsx/configs/my-layout.json",
        ],
        strict=True,
    ):
        (launch,) = run.launches_of(job)
        run_dir = f"/fsx/picotron/runs/{preset}-{job.id}"
        assert (fsx / run_dir.removeprefix("/fsx/")).is_dir()  # made by the job, on the shared storage
        assert f"run dir {run_dir}" in job.output()
        assert launch["num_nodes"] == len(job.nodes) and launch["options"]["--ntasks-per-node"] == "1"
        assert launch["options"]["--container-image"] == "/fsx/images/picotron.sqsh"
        assert launch["options"]["--container-mounts"] == "/fsx:/fsx"
        assert launch["options"]["--container-workdir"] == run_dir
        assert launch["command"][0] == "torchrun" and f"--nnodes={len(job.nodes)}" in launch["command"]
        assert launch["command"][-3:] == ["/opt/picotron/train.py", "--config", config]
        assert launch["env"]["HF_TOKEN"].startswith("hf_") and launch["env"]["FI_PROVIDER"] == "efa"


def test_readme_gpu_machine_walkthrough_verifies_each_preset_then_runs_it_in_the_image(
    artifacts_root, tmp_path
):
    """Section 1's GPU block as written: the base and the image built, then each `make local` verifies that
    its preset fills NPROC_PER_NODE GPUs before running the image; docker is stood in for (it checks the
    builds and records each run)."""
    run = run_with_standins(
        README, "gpu-machine", artifacts_root / "wt-picotron-local", tmp_path / "bin", tools=JOB_TOOLS
    ).check()
    versions = yaml.safe_load((run.workdir / "2.ami_and_containers" / "versions.yaml").read_text())
    base = versions["images"]["training-base"]
    built = run.images["built"]
    assert set(built) == {base, "picotron:dev"}
    assert built["picotron:dev"]["dockerfile"] == "picotron.Dockerfile" and built["picotron:dev"]["from"] == [
        base
    ]
    # The Makefile's check, before each docker run: the preset's layout fills the GPUs it is given.
    assert "smollm_360m-1gpu.json: tp 1 x pp 1 x cp 1 x dp 1 = 1 ranks" in run.output
    assert "smollm_360m-1node.json: tp 1 x pp 1 x cp 1 x dp 8 = 8 ranks" in run.output
    run_dir = run.workdir / CASE / "runs" / "local"
    assert run_dir.is_dir()
    runs = run.images["runs"]
    for recorded, preset, gpus in zip(
        runs, ["smollm_360m-1gpu", "smollm_360m-1node"], ["1", "8"], strict=True
    ):
        assert recorded["image"] == "picotron:dev"
        assert recorded["options"] == [
            "--rm",
            "--gpus",
            "all",
            "--ipc=host",
            "-e",
            "HF_TOKEN",
            "-e",
            "CUDA_DEVICE_MAX_CONNECTIONS=1",
            "-v",
            f"{run_dir}:/workspace/run",
            "-w",
            "/workspace/run",
        ]
        assert recorded["command"] == [
            "torchrun",
            "--standalone",
            "--nproc-per-node",
            gpus,
            "/opt/picotron/train.py",
            "--config",
            f"/workspace/picotron/configs/{preset}.json",
        ]
