"""slurm/bootstrap.sbatch: shellcheck, DRY_RUN (container and node variants), and a real run on the local
Slurm cluster copying a launcher folder (no container there) to shared storage."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from testbed.system import require_programs

FOLDER = Path(__file__).resolve().parents[1]


def bash(script: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    return subprocess.run(
        ["bash", script], cwd=FOLDER, env={**clean, **env}, capture_output=True, text=True, check=False
    )


def test_slurm_scripts_pass_shellcheck():
    shellcheck = require_programs("shellcheck", "shellcheck", how="install the dev group (`make setup`)")
    scripts = [str(p.relative_to(FOLDER)) for p in sorted((FOLDER / "slurm").iterdir())]
    result = subprocess.run(
        [shellcheck["shellcheck"], *scripts], cwd=FOLDER, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_bootstrap_dry_run():
    container = bash("slurm/bootstrap.sbatch", DRY_RUN="1")
    assert container.returncode == 0, container.stderr
    assert container.stdout.startswith(
        "srun --nodes=1 --ntasks=1 --container-image=nvcr.io/nvidia/nemo:24.09 "
        "--container-mounts=/fsx:/fsx bash -c"
    )
    assert container.stdout.split()[-2:] == ["/opt/NeMo-Framework-Launcher", "/fsx/nemo-launcher"]
    node = bash("slurm/bootstrap.sbatch", DRY_RUN="1", IMAGE="", LAUNCHER_SRC="/opt/l", DEST="/data/l")
    assert "--container-image" not in node.stdout and node.stdout.split()[-2:] == ["/opt/l", "/data/l"]
    outside = bash("slurm/bootstrap.sbatch")
    assert outside.returncode == 2 and outside.stderr.startswith("error: not inside a Slurm job")


@pytest.mark.slurm
def test_bootstrap_copies_the_launcher_on_local_slurm(local_slurm, tmp_path):
    source = tmp_path / "image" / "NeMo-Framework-Launcher"
    (source / "launcher_scripts" / "conf").mkdir(parents=True)
    (source / "launcher_scripts" / "main.py").write_text("# the launcher's entry point\n")
    (source / "launcher_scripts" / "conf" / "config.yaml").write_text("stages: [training]\n")
    (source / "requirements.txt").write_text("hydra-core>=1.2.0,<1.3\n")
    dest = tmp_path / "fsx" / "nemo-launcher"
    job = local_slurm.submit(
        FOLDER / "slurm" / "bootstrap.sbatch",
        cwd=tmp_path,
        env={"IMAGE": "", "LAUNCHER_SRC": str(source), "DEST": str(dest)},
    )
    assert job.wait(timeout=120) == "COMPLETED", job.output()
    assert (dest / "launcher_scripts" / "main.py").is_file() and (dest / "requirements.txt").is_file()
    assert (dest / "launcher_scripts" / "conf" / "config.yaml").read_text() == "stages: [training]\n"
    assert f"copied {source} from this node to {dest}" in job.output()
