"""slurm/train.sbatch: static checks, DRY_RUN previews (container, HyperPod, presets), and the launch on
the 2 nodes of the local Slurm with a stand-in for BioNeMo's training module (tests/standin_entry.py):
one task per GPU, the ranks Lightning reads from Slurm, the preset's arguments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.system import require_programs

FOLDER = Path(__file__).resolve().parents[1]
SBATCH = "slurm/train.sbatch"


def dry_run(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "FI_", "NCCL_"))}
    base = {"DRY_RUN": "1", "INSTANCE_TYPE": "cpu", "EFA_SYSFS": "/nonexistent", "HYPERPOD_MARKER": "/absent"}
    return subprocess.run(
        ["bash", SBATCH, *args],
        cwd=FOLDER,
        env={**clean, **base, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_script_parses_and_passes_shellcheck():
    subprocess.run(["bash", "-n", SBATCH], cwd=FOLDER, check=True)
    shellcheck = require_programs("shellcheck", "shellcheck", how="install the lint group (`make setup`)")
    done = subprocess.run(
        [shellcheck["shellcheck"], SBATCH, "slurm/efa-env.sh"],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout


def test_container_run_one_task_per_gpu(tmp_path):
    done = dry_run(
        "--num-steps", "20", IMAGE="/fsx/images/bionemo.sqsh", NODES="4", HYPERPOD_MARKER=str(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("srun --nodes=4 --ntasks-per-node=8 --kill-on-bad-exit=1 --auto-resume=1 ")
    assert "--container-image=/fsx/images/bionemo.sqsh --container-mounts=/fsx:/fsx" in done.stdout
    assert (
        "--container-workdir=/workspace/bionemo-aws python -m bionemo.esm2.scripts.train_esm2 " in done.stdout
    )
    assert "--num-nodes 4 --num-gpus 8 " in done.stdout and done.stdout.rstrip().endswith("--num-steps 20")


def test_geneformer_preset_and_data_dir():
    done = dry_run(PRESET="geneformer-10m", IMAGE="/fsx/b.sqsh", SHARED_DIR="/shared")
    assert done.returncode == 0, done.stderr
    assert (
        "-m bionemo.geneformer.scripts.train_geneformer --data-dir /shared/bionemo/geneformer-scdl "
        in done.stdout
    )
    assert (
        "--container-mounts=/shared:/shared" in done.stdout
        and "--result-dir /shared/bionemo/results" in done.stdout
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PRESET": "esm1"}, "error: unknown preset 'esm1'"),
        ({"DRY_RUN": "0"}, "error: not inside a Slurm job; submit with 'sbatch slurm/train.sbatch'"),
    ],
)
def test_bad_settings_are_one_error_line(env, message):
    done = dry_run(**env)
    assert done.returncode == 2 and not done.stdout and message in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_efa_environment_on_p5(tmp_path):
    sysfs = tmp_path / "infiniband"
    (sysfs / "rdmap16s27").mkdir(parents=True)
    probe = (
        'source slurm/efa-env.sh; echo "$FI_PROVIDER ${FI_EFA_USE_DEVICE_RDMA:-unset} $NCCL_SOCKET_IFNAME"'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FI_", "NCCL_"))}
    done = subprocess.run(
        ["bash", "-c", probe],
        cwd=FOLDER,
        env={**env, "EFA_SYSFS": str(sysfs), "INSTANCE_TYPE": "p5.48xlarge"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split() == ["efa", "1", "^docker,lo,veth"]


@pytest.mark.slurm
def test_launch_across_two_nodes(local_slurm, run_dir):
    """As a user submits it, 2 nodes x 1 task (the local nodes have one CPU each; on p5, 8 tasks a node):
    each task runs the module with the preset's arguments, Slurm numbers the tasks 0 and 1 on n1 and n2."""
    env = {
        "PYTHON": sys.executable,
        "PYTHONPATH": str(FOLDER / "tests"),
        "ENTRY_POINT": "standin_entry",
        "NPROC_PER_NODE": "1",
        "SHARED_DIR": str(run_dir),
        "STANDIN_RECORDS": str(run_dir / "records"),
    }
    job = local_slurm.submit(
        SBATCH,
        args=["--num-steps", "5"],
        env=env,
        sbatch_args=["--nodes=2", "--output", f"{run_dir}/slurm-%j.out"],
        cwd=FOLDER,
    )
    assert job.wait(timeout=120) == "COMPLETED", job.output()[-3000:]
    tasks = [json.loads((run_dir / "records" / f"task{i}.json").read_text()) for i in (0, 1)]
    assert {t["env"]["SLURMD_NODENAME"] for t in tasks} == {"n1", "n2"}
    assert {t["env"]["SLURM_NTASKS"] for t in tasks} == {"2"} and {
        t["env"]["SLURM_LOCALID"] for t in tasks
    } == {"0"}
    argv = tasks[0]["argv"]
    assert tasks[1]["argv"] == argv and argv[-2:] == ["--num-steps", "5"]
    assert argv[argv.index("--num-nodes") + 1] == "2" and argv[argv.index("--num-gpus") + 1] == "1"
    assert argv[argv.index("--train-database-path") + 1] == f"{run_dir}/bionemo/esm2-data/train.db"
    assert argv[argv.index("--result-dir") + 1] == f"{run_dir}/bionemo/results"
    assert "bionemo esm2-650m: job" in job.output()


def test_make_slurm_needs_an_image_and_passes_preset_and_args(tmp_path):
    require_programs("make slurm", "make")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "sbatch").write_text('#!/bin/bash\nDRY_RUN=1 exec bash "$@"\n')
    (fake_bin / "sbatch").chmod(0o755)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "MAKE"))}
    env = {
        **clean,
        "PATH": f"{fake_bin}:{os.environ['PATH']}",
        "INSTANCE_TYPE": "cpu",
        "EFA_SYSFS": "/x",
        "HYPERPOD_MARKER": "/x",
    }
    done = subprocess.run(
        ["make", "slurm", "PRESET=esm2-3b", "IMAGE=/fsx/b.sqsh", "ARGS=--num-steps 3"],
        cwd=FOLDER,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "-m bionemo.esm2.scripts.train_esm2 " in done.stdout and "--hidden-size 2560" in done.stdout
    assert done.stdout.rstrip().endswith("--num-steps 3")
    missing = subprocess.run(
        ["make", "slurm"], cwd=FOLDER, env=env, capture_output=True, text=True, check=False
    )
    assert (
        missing.returncode == 2 and "error: IMAGE is not set; BioNeMo runs in its container" in missing.stderr
    )
