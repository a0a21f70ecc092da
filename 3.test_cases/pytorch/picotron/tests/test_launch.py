"""The Makefile's launch targets as a user types them: `make slurm` submits on the nodes the preset needs,
`make local` and `make venv` refuse what cannot work before touching Docker or a venv."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from testbed.system import require_programs

FOLDER = Path(__file__).resolve().parents[1]
ROOT = FOLDER.parents[2]


def make(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    require_programs("make", "make")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "MAKE", "HF_"))}
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=FOLDER,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_make_slurm_submits_on_the_nodes_the_preset_needs(tmp_path):
    """A stand-in sbatch previews the job (DRY_RUN with Slurm's node count): nothing is queued."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    sbatch = fake_bin / "sbatch"
    sbatch.write_text(
        "#!/bin/bash\nnodes=${1#--nodes=}; shift\n"
        'SLURM_JOB_NUM_NODES=$nodes INSTANCE_TYPE=cpu EFA_SYSFS=/nonexistent DRY_RUN=1 exec bash "$@"\n'
    )
    sbatch.chmod(0o755)
    path = f"{fake_bin}:{os.environ['PATH']}"
    result = make(
        tmp_path,
        "slurm",
        "PRESET=llama3_1_70b-8nodes",
        "IMAGE=/fsx/images/picotron.sqsh",
        "ARGS=--x 1",
        PATH=path,
    )
    assert result.returncode == 0, result.stderr
    assert "srun --nodes=8 " in result.stdout and "torchrun --nnodes=8 --nproc-per-node=8" in result.stdout
    assert (
        "/opt/picotron/train.py --config /workspace/picotron/configs/llama3_1_70b-8nodes.json --x 1"
        in result.stdout
    )


def test_make_local_checks_the_preset_fits_the_gpus_before_docker(tmp_path):
    misfit = make(tmp_path, "local", "PRESET=llama3_1_8b-2nodes", "NPROC_PER_NODE=8")
    assert misfit.returncode != 0 and "but the job has 8 ranks" in misfit.stderr
    assert "docker run" not in misfit.stdout
    no_token = make(tmp_path, "local", "PRESET=smollm_360m-1gpu", "NPROC_PER_NODE=1")
    assert no_token.returncode != 0 and "error: HF_TOKEN is not set" in no_token.stderr
    assert "docker run" not in no_token.stdout


def test_make_venv_never_installs_picotron_into_the_repository_venv(tmp_path):
    result = make(tmp_path, "venv", f"VENV={ROOT / '.venv'}")
    assert result.returncode != 0
    assert "error: VENV is the repository's venv (torch 2.13); picotron pins torch 2.1.0" in result.stderr
    assert "pip install" not in result.stdout
