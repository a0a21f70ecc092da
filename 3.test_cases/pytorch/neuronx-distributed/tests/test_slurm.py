"""slurm/pretrain.sbatch: static checks, DRY_RUN previews (venv, container, HyperPod, compile step), the
EFA environment on Trainium, and the launch across the 2 nodes of the local Slurm with a stand-in for the
example script (tests/standin_entry.py) and for neuron_parallel_compile (tests/standin/)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.ports import free_port
from testbed.system import require_programs

FOLDER = Path(__file__).resolve().parents[1]
SBATCH = "slurm/pretrain.sbatch"
VENV = Path(sys.executable).parent.parent
STANDIN = FOLDER / "tests" / "standin_entry.py"


def dry_run(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "FI_", "NEURON_"))}
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
        [shellcheck["shellcheck"], SBATCH, "slurm/efa-env.sh", "tests/standin/neuron_parallel_compile"],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout


def test_dry_run_venv_train_and_compile():
    train = dry_run(VENV="/opt/neuron-venv", NODES="4")
    assert train.returncode == 0, train.stderr
    assert train.stdout.startswith(
        "srun --nodes=4 --ntasks-per-node=1 --kill-on-bad-exit=1 /opt/neuron-venv/bin/torchrun "
    )
    assert (
        "--nnodes=4 --nproc-per-node=32 --rdzv-backend=c10d --rdzv-endpoint=HEAD_NODE_ADDR:29500 --rdzv-id=0"
        in train.stdout
    )
    assert f"{FOLDER}/neuronx-distributed/examples/training/llama/tp_zero1_llama_hf_pretrain/" in train.stdout
    assert "--grad_accum_usteps 256" in train.stdout and "--steps_this_run -1" in train.stdout
    compile_step = dry_run("--max_steps", "7", STEP="compile", VENV="/opt/neuron-venv", NODES="4")
    assert compile_step.returncode == 0, compile_step.stderr
    assert (
        "--kill-on-bad-exit=1 /opt/neuron-venv/bin/neuron_parallel_compile /opt/neuron-venv/bin/torchrun "
        in compile_step.stdout
    )
    assert "--steps_this_run 2" in compile_step.stdout and compile_step.stdout.rstrip().endswith(
        "--max_steps 7"
    )


def test_container_and_hyperpod(tmp_path):
    done = dry_run(
        IMAGE="/fsx/images/nxd.sqsh", PRESET="llama3-70b", NODES="8", HYPERPOD_MARKER=str(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("srun --nodes=8 --ntasks-per-node=1 --kill-on-bad-exit=1 --auto-resume=1 ")
    assert "--container-image=/fsx/images/nxd.sqsh --container-mounts=/fsx:/fsx" in done.stdout
    assert "--container-workdir=/workspace/nxd-llama torchrun --nnodes=8" in done.stdout
    assert (
        "/workspace/neuronx-distributed/examples/training/llama/tp_pp_llama_hf_pretrain/run_llama_nxd.py"
        in done.stdout
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STEP": "build"}, "error: STEP=build; use STEP=compile (neuron_parallel_compile) or STEP=train"),
        ({"PRESET": "llama3-70b"}, "is not a multiple of tensor_parallel 32 x pipeline_parallel 8"),
        ({"PRESET": "gpt"}, "error: unknown preset 'gpt'"),
        ({"DRY_RUN": "0"}, "error: not inside a Slurm job; submit with 'sbatch slurm/pretrain.sbatch'"),
    ],
)
def test_bad_settings_are_one_error_line(env, message):
    done = dry_run(**env)
    assert done.returncode == 2 and not done.stdout
    assert message in done.stderr and len(done.stderr.splitlines()) == 1


def test_efa_environment_on_trainium(tmp_path):
    sysfs = tmp_path / "infiniband"
    (sysfs / "rdmap16s27").mkdir(parents=True)
    probe = 'source slurm/efa-env.sh; echo "$FI_PROVIDER ${FI_EFA_USE_DEVICE_RDMA:-unset}"'
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FI_", "NCCL_"))}
    for instance in ("trn1.32xlarge", "trn1n.32xlarge", "trn2.48xlarge"):
        done = subprocess.run(
            ["bash", "-c", probe],
            cwd=FOLDER,
            env={**env, "EFA_SYSFS": str(sysfs), "INSTANCE_TYPE": instance},
            capture_output=True,
            text=True,
            check=True,
        )
        assert done.stdout.split() == ["efa", "1"], instance  # device RDMA on every Trainium type


def records(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


@pytest.mark.slurm
@pytest.mark.slow
def test_compile_step_launches_the_preset_across_two_nodes(local_slurm, run_dir):
    """The compile step as a user submits it, 2 nodes x 16 ranks: neuron_parallel_compile wraps one torchrun
    per node, the 32 ranks form one world (TP 32 = one Llama 3 8B replica), and each got the preset's
    arguments, the Neuron and EFA environment and the examples on PYTHONPATH."""
    env = {
        "VENV": str(VENV),
        "STEP": "compile",
        "NPROC_PER_NODE": "16",
        "RDZV_PORT": str(free_port()),
        "ENTRY_POINT": str(STANDIN),
        "NEURON_PARALLEL_COMPILE": str(FOLDER / "tests" / "standin" / "neuron_parallel_compile"),
        "STANDIN_RECORDS": str(run_dir / "records"),
        "SHARED_DIR": str(run_dir),
        "OMP_NUM_THREADS": "1",
    }
    job = local_slurm.submit(
        SBATCH,
        args=["--max_steps", "3"],
        env=env,
        sbatch_args=["--nodes=2", "--output", f"{run_dir}/slurm-%j.out"],
        cwd=FOLDER,
    )
    assert job.wait(timeout=240) == "COMPLETED", job.output()[-3000:]
    ranks = records(run_dir / "records")
    assert len(ranks) == 32
    assert sorted(int(r["env"]["RANK"]) for r in ranks) == list(range(32))
    assert {r["env"]["WORLD_SIZE"] for r in ranks} == {"32"}
    assert {r["env"]["SLURMD_NODENAME"] for r in ranks} == {"n1", "n2"}  # one torchrun per node
    assert {r["env"]["TORCHELASTIC_RUN_ID"] for r in ranks} == {str(job.id)}  # one rendezvous
    first = ranks[0]
    assert first["env"]["NEURON_EXTRACT_GRAPHS_ONLY"] == "1"  # ran under neuron_parallel_compile
    assert (
        first["env"]["NEURON_CC_FLAGS"]
        == f"--model-type transformer --cache_dir={run_dir}/neuron_compile_cache"
    )
    assert first["env"]["FI_EFA_FORK_SAFE"] == "1" and first["env"]["NEURON_FUSE_SOFTMAX"] == "1"
    assert first["env"]["PYTHONPATH"].startswith(f"{FOLDER}/neuronx-distributed/examples/training/llama")
    argv = first["argv"]
    assert argv[argv.index("--tensor_parallel_size") + 1] == "32"
    assert argv[argv.index("--grad_accum_usteps") + 1] == "1024"  # 32 ranks / TP 32 = DP 1
    assert argv[argv.index("--steps_this_run") + 1] == "2" and argv[-2:] == ["--max_steps", "3"]
    assert argv[argv.index("--data_dir") + 1] == f"{run_dir}/data/llama3-8k"
    assert all(r["argv"] == argv for r in ranks)
    assert f"rendezvous {local_slurm.node_addr('n1')}:" in job.output()


@pytest.mark.slurm
def test_dry_run_inside_an_allocation_uses_its_nodes(local_slurm, run_dir):
    env = {
        "VENV": str(VENV),
        "DRY_RUN": "1",
        "RDZV_PORT": "29999",
        "NPROC_PER_NODE": "16",
        "SHARED_DIR": str(run_dir),
    }
    job = local_slurm.submit(
        SBATCH, env=env, sbatch_args=["--nodes=2", "--output", f"{run_dir}/slurm-%j.out"], cwd=FOLDER
    )
    assert job.wait(timeout=60) == "COMPLETED", job.output()
    command = job.output().strip().splitlines()[-1]
    assert command.startswith(
        f"srun --nodes=2 --ntasks-per-node=1 --kill-on-bad-exit=1 {VENV}/bin/torchrun --nnodes=2"
    )
    assert f"--rdzv-endpoint={local_slurm.node_addr('n1')}:29999 --rdzv-id={job.id}" in command


def test_make_slurm_passes_preset_step_and_args(tmp_path):
    """`make slurm` as typed; a stand-in sbatch previews the job (DRY_RUN) and queues nothing."""
    require_programs("make slurm", "make")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "sbatch").write_text('#!/bin/bash\nDRY_RUN=1 exec bash "$@"\n')
    (fake_bin / "sbatch").chmod(0o755)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "MAKE"))}
    done = subprocess.run(
        ["make", "slurm", "PRESET=llama3-70b", "STEP=compile", "IMAGE=/fsx/nxd.sqsh", "ARGS=--max_steps 4"],
        cwd=FOLDER,
        env={
            **clean,
            "PATH": f"{fake_bin}:{os.environ['PATH']}",
            "NODES": "8",
            "INSTANCE_TYPE": "cpu",
            "EFA_SYSFS": "/nonexistent",
            "HYPERPOD_MARKER": "/absent",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (
        "--container-image=/fsx/nxd.sqsh" in done.stdout
        and " neuron_parallel_compile torchrun " in done.stdout
    )
    assert "/tp_pp_llama_hf_pretrain/run_llama_nxd.py" in done.stdout and done.stdout.rstrip().endswith(
        "--max_steps 4"
    )
