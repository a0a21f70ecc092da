"""slurm/composer.sbatch: static checks, DRY_RUN previews, and a real 2-node launch on the local Slurm
cluster: one `composer` launcher per node (a stand-in keeping composer 0.32.1's CLI contract,
tests/standin/composer) starting two ranks each of the stand-in entry point (testbed/launch_recorder.py)
in place of llm-foundry."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from testbed.ports import free_port
from testbed.system import require_programs

FOLDER = Path(__file__).resolve().parents[1]
SBATCH = "slurm/composer.sbatch"
STANDIN = FOLDER / "tests" / "standin"
RECORDER = FOLDER.parents[2] / "testbed" / "launch_recorder.py"  # the shared stand-in entry point


def dry_run(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "FI_", "NCCL_"))}
    base = {"DRY_RUN": "1", "INSTANCE_TYPE": "cpu", "EFA_SYSFS": "/nonexistent"}
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
    result = subprocess.run(
        [shellcheck["shellcheck"], SBATCH, "slurm/efa-env.sh"],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_dry_run_in_the_container(tmp_path):
    result = dry_run(
        "max_duration=10ba",
        PRESET="mpt-7b",
        IMAGE="/fsx/images/composer.sqsh",
        HYPERPOD_MARKER=str(tmp_path / "x"),
    )
    assert result.returncode == 0, result.stderr
    command = result.stdout.strip()
    assert command.startswith(
        "srun --nodes=2 --ntasks-per-node=1 --kill-on-bad-exit=1 --container-image=/fsx/images/composer.sqsh "
        "--container-mounts=/fsx:/fsx --container-workdir=/workspace/composer "
        "bash -c 'export NODE_RANK=$SLURM_NODEID; exec \"$@\"' composer-node "
        "composer --nproc 8 --world_size 16 --master_addr HEAD_NODE_ADDR --master_port 29500 "
        "-m llmfoundry.cli.cli train /workspace/composer/yamls/mpt-7b.yaml "
    )
    assert command.endswith(
        "run_name=composer-mpt-7b-0 save_folder=/fsx/composer/runs/mpt-7b-0/checkpoints "
        "variables.data_local=/fsx/composer/data/c4 max_duration=10ba"
    )
    assert "--auto-resume" not in command


def test_dry_run_without_container_on_hyperpod(tmp_path):
    result = dry_run(VENV="/fsx/venvs/composer", HYPERPOD_MARKER=str(tmp_path), NPROC_PER_NODE="4")
    assert result.returncode == 0, result.stderr
    assert "--auto-resume=1 --chdir=" in result.stdout
    assert "/fsx/venvs/composer/bin/composer --nproc 4 --world_size 8 " in result.stdout
    assert f"train {FOLDER}/yamls/mpt-1b.yaml run_name=composer-mpt-1b-0" in result.stdout


def test_unknown_preset_and_no_slurm_are_clear_errors():
    bad = dry_run(PRESET="mpt-3b")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip() == "error: no yamls/mpt-3b.yaml; PRESET is one of: mpt-125m mpt-1b mpt-7b"
    outside = dry_run(DRY_RUN="0")
    assert outside.returncode == 2 and outside.stderr.strip() == (
        "error: not inside a Slurm job; submit with 'sbatch slurm/composer.sbatch' or preview with DRY_RUN=1"
    )


@pytest.mark.slurm
def test_two_node_launch_one_composer_per_node(local_slurm, run_dir):
    env = {
        "PATH": f"{STANDIN}:{os.environ['PATH']}",
        "ENTRY_POINT": str(RECORDER),
        "NPROC_PER_NODE": "2",
        "LAUNCH_RECORD_DIR": str(run_dir),
        "RUN_DIR": str(run_dir / "run"),
        "DATA_DIR": "/fsx/c4",
        "MASTER_PORT": str(free_port()),
        "INSTANCE_TYPE": "cpu",
        "EFA_SYSFS": "/nonexistent",
        "HYPERPOD_MARKER": str(run_dir / "absent"),
    }
    job = local_slurm.submit(
        SBATCH,
        args=["max_duration=10ba"],
        env=env,
        sbatch_args=["--output", f"{run_dir}/slurm-%j.out"],
        cwd=FOLDER,
    )
    assert job.wait(timeout=180) == "COMPLETED", job.output()[-3000:]
    assert job.nodes == ["n1", "n2"]
    records = {}
    for path in run_dir.glob("launch-rank*.json"):
        record = json.loads(path.read_text())
        records[int(record["env"]["RANK"])] = record
    assert sorted(records) == [0, 1, 2, 3], job.output()[-2000:]
    nodes = {rank: (r["env"]["SLURMD_NODENAME"], r["env"]["NODE_RANK"]) for rank, r in records.items()}
    assert nodes == {0: ("n1", "0"), 1: ("n1", "0"), 2: ("n2", "1"), 3: ("n2", "1")}  # node rank from Slurm
    assert {r["env"]["LOCAL_RANK"] for r in records.values()} == {"0", "1"}
    assert {r["env"]["WORLD_SIZE"] for r in records.values()} == {"4"}
    assert {r["env"]["MASTER_ADDR"] for r in records.values()} == {local_slurm.node_addr("n1")}
    assert {r["env"]["MASTER_PORT"] for r in records.values()} == {env["MASTER_PORT"]}
    expected = [
        "train",
        f"{FOLDER}/yamls/mpt-1b.yaml",
        f"run_name=composer-mpt-1b-{job.id}",
        f"save_folder={run_dir}/run/checkpoints",
        "variables.data_local=/fsx/c4",
        "max_duration=10ba",
    ]
    assert all(r["argv"] == expected for r in records.values())
    assert f"master {local_slurm.node_addr('n1')}:{env['MASTER_PORT']}" in job.output()
