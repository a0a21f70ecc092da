"""Run a README's walkthrough blocks as a user would: in order, in a shell, in a copy of the repo.

A fenced ``bash`` block preceded by ``<!-- walkthrough: NAME -->`` belongs to walkthrough NAME. Where a
step needs the cloud, the marker says what stands in for it: ``<!-- walkthrough: NAME; stand-in: kubectl
validates each manifest against the pinned CRDs -->``, and the test passes the stand-ins' bin folder
(``testbed.standins.write_standins``) as ``run_walkthrough(..., standins=bin_dir)``.
``run_walkthrough`` copies the repository (the files git tracks or would track, plus a link to the
project venv) into a scratch folder, so whatever the commands write lands there, and runs the
blocks with ``bash -euo pipefail`` from the copy's root, with the stand-ins (if any) first on
``PATH``, then the venv. The README is the test.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from testbed import shared_storage

REPO_ROOT = Path(__file__).resolve().parents[1]
# `<!-- walkthrough: NAME -->`, or `<!-- walkthrough: NAME; stand-in: what stands in for the cloud -->`.
# Groups: 1 the name, 2 the stand-in note (None without one); MARKER adds 3, the block's text.
MARKER_COMMENT = r"<!--\s*walkthrough:\s*([\w.-]+)\s*(?:;\s*stand-in:\s*(\S[^\n]*?))?\s*-->"
MARKER = re.compile(MARKER_COMMENT + r"\s*\n```(?:bash|sh|console)?\n(.*?)```", re.DOTALL)


class WalkthroughError(RuntimeError):
    """A walkthrough is missing or one of its commands failed."""


@dataclass
class WalkthroughResult:
    workdir: Path
    returncode: int
    output: str


def extract_blocks(readme: Path, name: str) -> list[str]:
    """The marked blocks of walkthrough ``name`` in ``readme``, in order."""
    blocks = [match[3] for match in MARKER.finditer(readme.read_text()) if match[1] == name]
    if not blocks:
        raise WalkthroughError(f"{readme}: no block marked '<!-- walkthrough: {name} -->'; add the marker")
    return blocks


def check_standins(readme: Path, name: str, standins: Path | None) -> None:
    """Refuse to run a walkthrough whose blocks name a stand-in without the stand-ins' bin folder."""
    notes = [match[2] for match in MARKER.finditer(readme.read_text()) if match[1] == name and match[2]]
    if notes and standins is None:
        raise WalkthroughError(
            f"{readme}: walkthrough '{name}' has blocks run with stand-ins ({notes[0]}); pass "
            "standins=bin_dir, the folder testbed.standins.write_standins(bin_dir) wrote"
        )


def repository_files(*patterns: str, root: Path = REPO_ROOT) -> list[Path]:
    """Files git tracks or would track (not ignored) in ``root``, optionally filtered by pathspecs,
    relative."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", *patterns],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    return [Path(item) for item in listed if item and (root / item).is_file()]


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


def run_walkthrough(
    readme: Path,
    name: str,
    workdir: Path,
    timeout: float = 600,
    standins: Path | None = None,
    env: Mapping[str, str] | None = None,
    shared: Mapping[str, Path] | None = None,
    until: Callable[[], object] | None = None,
) -> WalkthroughResult:
    """Run walkthrough ``name`` of ``readme`` in a fresh copy of the repository under ``workdir``.

    ``standins``: a bin folder of stand-ins for the cloud's CLIs (``testbed.standins.write_standins``),
    put first on ``PATH``, ahead of the venv. ``env``: variables of the place the commands run on, which
    the README takes as given (``SLURM_CONF`` of a cluster the test started in the cluster's shape).
    ``shared``: the cluster's shared storage, ``{"/fsx": folder}``, at its path for the shell
    (testbed/shared_storage.py: a private root; needs root). ``until``: the last block starts a server in
    the foreground (Prometheus), which runs until stopped: poll ``until()`` while it runs, and once it is
    true stop the blocks as Ctrl-C does (SIGINT to their process group); the result's code is then 0. A
    server that exits first gives its own code; ``timeout`` seconds without an answer, 124.
    """
    script = "\n".join(extract_blocks(readme, name))
    check_standins(readme, name, standins)
    copy = copy_repository(workdir)
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
    environment["PATH"] = f"{copy / '.venv' / 'bin'}{os.pathsep}{environment.get('PATH', '')}"
    if standins is not None:
        environment["PATH"] = f"{Path(standins).resolve()}{os.pathsep}{environment['PATH']}"
    environment |= dict(env or {})
    argv = ["bash", "-euo", "pipefail", "-c", script]
    if shared:
        argv = shared_storage.wrap(argv, shared, Path(workdir) / "root")
    if until is not None:
        return _serve(argv, copy, environment, until, timeout)
    completed = subprocess.run(
        argv,
        cwd=copy,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return WalkthroughResult(copy, completed.returncode, completed.stdout + completed.stderr)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _serve(
    argv: list[str], copy: Path, environment: dict[str, str], until: Callable[[], object], timeout: float
) -> WalkthroughResult:
    """Run blocks whose last one serves until stopped; stop them with SIGINT once ``until()`` is true."""
    with tempfile.TemporaryFile("w+") as output:
        proc = subprocess.Popen(
            argv,
            cwd=copy,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # As in a terminal: a shell that started this one in the background (make test's lanes)
            # left SIGINT ignored, and an ignored signal stays ignored across exec.
            preexec_fn=_default_sigint,  # noqa: PLW1509 - only a signal disposition, before exec
        )
        deadline = time.monotonic() + timeout
        code = None
        while code is None:
            if proc.poll() is not None:
                code = proc.returncode
            elif until():
                code = 0
            elif time.monotonic() > deadline:
                code = 124
            else:
                time.sleep(0.5)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends the foreground process group
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                code = code or 137
        output.seek(0)
        return WalkthroughResult(copy, code, output.read())
