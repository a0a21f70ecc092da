"""Run a README's walkthrough blocks as a user would: in order, in a shell, in a copy of the repo.

A fenced ``bash`` block preceded by ``<!-- walkthrough: NAME -->`` belongs to walkthrough NAME.
``run_walkthrough`` copies the repository (the files git tracks or would track, plus a link to the
project venv) into a scratch folder, so whatever the commands write lands there, and runs the
blocks with ``bash -euo pipefail`` from the copy's root. The README is the test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"<!--\s*walkthrough:\s*([\w.-]+)\s*-->\s*\n```(?:bash|sh|console)?\n(.*?)```", re.DOTALL)


class WalkthroughError(RuntimeError):
    """A walkthrough is missing or one of its commands failed."""


@dataclass
class WalkthroughResult:
    workdir: Path
    returncode: int
    output: str


def extract_blocks(readme: Path, name: str) -> list[str]:
    """The marked blocks of walkthrough ``name`` in ``readme``, in order."""
    blocks = [body for block_name, body in MARKER.findall(readme.read_text()) if block_name == name]
    if not blocks:
        raise WalkthroughError(f"{readme}: no block marked '<!-- walkthrough: {name} -->'; add the marker")
    return blocks


def repository_files(*patterns: str) -> list[Path]:
    """Files git tracks or would track (not ignored), optionally filtered by pathspecs, relative."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", *patterns],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    return [Path(item) for item in listed if item and (REPO_ROOT / item).is_file()]


def copy_repository(destination: Path) -> Path:
    """Copy the repository's files (as git lists them) and link the project venv."""
    for relative in repository_files():
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / relative, target)
    venv = REPO_ROOT / ".venv"
    if venv.is_dir():
        (destination / ".venv").symlink_to(venv)
    return destination


def run_walkthrough(readme: Path, name: str, workdir: Path, timeout: float = 600) -> WalkthroughResult:
    """Run walkthrough ``name`` of ``readme`` in a fresh copy of the repository under ``workdir``."""
    script = "\n".join(extract_blocks(readme, name))
    copy = copy_repository(workdir)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
    env["PATH"] = f"{copy / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    completed = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return WalkthroughResult(copy, completed.returncode, completed.stdout + completed.stderr)
