"""The sbatch scripts: lint, DRY_RUN, bad input; and jax.sbatch on a real local Slurm (2 nodes x 1 process,
coordinator on the first node). The job runs this session's Python (VENV), which has JAX: the Slurm run
is a `framework` test, run by the `jax` nox session."""

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
VENV = Path(sys.executable).parent.parent


def dry_run(script: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "FI_", "NCCL_"))}
    defaults = {"DRY_RUN": "1", "INSTANCE_TYPE": "cpu", "EFA_SYSFS": "/nonexistent"}
    return subprocess.run(
        ["bash", script, *args],
        cwd=FOLDER,
        env={**clean, **defaults, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_sbatch_scripts_pass_shellcheck():
    shellcheck = require_programs("shellcheck", "shellcheck", how="install the dev group (`make setup`)")
    scripts = sorted(str(p.relative_to(FOLDER)) for p in (FOLDER / "slurm").glob("*"))
    result = subprocess.run(
        [shellcheck["shellcheck"], *scripts], cwd=FOLDER, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_jax_sbatch_dry_run_in_venv_and_container():
    venv = dry_run("slurm/jax.sbatch", "--max-steps", "5", VENV="/opt/venv", PRESET="llama3_1_8b")
    assert venv.returncode == 0, venv.stderr
    assert venv.stdout.startswith(
        "JAX_COORDINATOR_ADDRESS=HEAD_NODE_ADDR:23456 srun --nodes=2 --ntasks-per-node=1"
    )
    assert "/opt/venv/bin/python" in venv.stdout and "--preset llama3_1_8b" in venv.stdout
    assert venv.stdout.rstrip().endswith("--max-steps 5")
    container = dry_run("slurm/jax.sbatch", IMAGE="/fsx/jax.sqsh")
    assert "--container-image=/fsx/jax.sqsh --container-mounts=/fsx:/fsx" in container.stdout
    assert (
        "python3 /workspace/jax/src/train.py --preset tiny --run-dir /fsx/jax/runs/tiny-0" in container.stdout
    )


def test_maxtext_sbatch_runs_one_process_per_gpu():
    result = dry_run("slurm/maxtext.sbatch", GPUS_PER_NODE="8")
    assert result.returncode == 0, result.stderr
    assert "srun --nodes=2 --ntasks-per-node=8" in result.stdout
    assert "--container-image=/fsx/images/jax.sqsh" in result.stdout
    in_venv = dry_run("slurm/maxtext.sbatch", IMAGE="", VENV="/opt/venv")
    assert "/opt/venv/bin/python -m maxtext.trainers.pre_train.train" in in_venv.stdout


@pytest.mark.parametrize("script", ["slurm/jax.sbatch", "slurm/maxtext.sbatch"])
def test_outside_a_job_without_dry_run_is_refused(script):
    result = dry_run(script, DRY_RUN="0")
    assert result.returncode == 2 and result.stderr.startswith("error: not inside a Slurm job")


def test_efa_env_on_p5_sets_gpudirect_rdma(tmp_path):
    sysfs = tmp_path / "infiniband"
    (sysfs / "rdmap16s27").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FI_", "NCCL_"))}
    probe = 'source slurm/efa-env.sh; echo "${FI_PROVIDER:-}:${FI_EFA_USE_DEVICE_RDMA:-}"'
    result = subprocess.run(
        ["bash", "-c", probe],
        cwd=FOLDER,
        env={**env, "EFA_SYSFS": str(sysfs), "INSTANCE_TYPE": "p5.48xlarge"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "efa:1"


@pytest.mark.framework
@pytest.mark.slurm
def test_two_node_job_trains_with_one_process_per_node(local_slurm, run_dir, jax_env):
    env = {**jax_env, "VENV": str(VENV), "RUN_DIR": str(run_dir), "COORDINATOR_PORT": str(free_port())}
    job = local_slurm.submit(
        "slurm/jax.sbatch",
        args=["--max-steps", "6", "--checkpoint-every", "3"],
        env=env,
        sbatch_args=["--output", f"{run_dir}/slurm-%j.out"],
        cwd=FOLDER,
    )
    assert job.wait(timeout=300) == "COMPLETED", job.output()[-4000:]
    assert job.nodes == ["n1", "n2"]
    output = job.output()
    assert f"coordinator {local_slurm.node_addr('n1')}:" in output and "summary: step 6" in output
    ranks = [json.loads((run_dir / "ranks" / f"rank{p}.json").read_text()) for p in (0, 1)]
    assert [r["node"] for r in ranks] == ["n1", "n2"]  # process 0 on the first node
    assert {r["job_id"] for r in ranks} == {str(job.id)}
    assert ranks[0]["params_digest"] == ranks[1]["params_digest"]
    result = json.loads((run_dir / "result.json").read_text())
    assert result["processes"] == 2 and result["devices"] == 4 and result["step"] == 6
