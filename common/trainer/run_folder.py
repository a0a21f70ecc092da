"""The run folder: every trainer of this repository carries a copy.

``<run_dir>/config.json`` (the resolved config), ``metrics.jsonl``, ``result.json``, ``ranks/rank<R>.json``
(where each rank ran) and, by default, ``checkpoints/``. Rank 0 checks that the folders can be written
before anything is trained, so a bad ``--run-dir`` costs one line, not a lost run.

A run folder has one owner: rank 0 holds an exclusive lock on ``<run_dir>/.lock`` (``flock``; the kernel
drops it when the process ends, however it ends), so a second job started into the same folder stops with
one line naming the owner instead of interleaving its steps and checkpoints with the first. A requeued
Slurm job or a restarted torchrun worker takes the lock again once the old processes are gone.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
from pathlib import Path

from .faults import restart_count


class RunFolderError(RuntimeError):
    """The run or checkpoint folder cannot be used; the message says what to do."""


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary name beside ``path`` and rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def ensure_writable(folder: Path) -> None:
    """Fail early, with the fix, when ``folder`` cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise RunFolderError(
            f"folder {folder} is not writable ({exc.strerror or exc}); pass a writable "
            "--run-dir / --checkpoint-dir (shared storage such as /fsx on a cluster)"
        ) from None


LOCK_NAME = ".lock"
_held_locks: list = []  # open lock files, kept for the life of the process


def owner_description() -> str:
    """Who holds the lock, as the next job reads it in its error line."""
    job = os.environ.get("SLURM_JOB_ID")
    return f"PID {os.getpid()} on {socket.gethostname()}" + (f" (Slurm job {job})" if job else "")


def lock_run_dir(run_dir: Path) -> None:
    """Take ``<run_dir>/.lock`` for this process, or raise RunFolderError naming its holder. A file system
    without ``flock`` (Lustre mounted without ``-o flock``) gets a warning, not a refusal."""
    path = run_dir / LOCK_NAME
    handle = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise RunFolderError(
                f"run folder {run_dir} is in use by {owner}; wait for it to end or choose another --run-dir"
            ) from None
        handle.close()
        print(
            f"warning: cannot lock run folder {run_dir} ({exc.strerror}); nothing stops a second job from "
            "using it (on Lustre, mount with -o flock)",
            file=sys.stderr,
            flush=True,
        )
        return
    handle.seek(0)
    handle.truncate()
    handle.write(owner_description() + "\n")
    handle.flush()
    _held_locks.append(handle)


def prepare_run_dir(run_dir: Path, checkpoint_dir: Path, config_json: str) -> None:
    """Collective. Rank 0 checks both folders and writes ``config.json``; every rank learns the outcome."""
    import torch.distributed as dist  # noqa: PLC0415 - the folder helpers above need no torch

    from .distributed import broadcast_outcome, shutdown_distributed  # noqa: PLC0415

    message = None
    if dist.get_rank() == 0:
        try:
            ensure_writable(run_dir)
            ensure_writable(checkpoint_dir)
            if not _held_locks:  # a second Trainer in the same process (tests) already holds it
                lock_run_dir(run_dir)
            write_atomically(run_dir / "config.json", config_json + "\n")
        except RunFolderError as exc:
            message = str(exc)
    message = broadcast_outcome(message)
    if message:
        shutdown_distributed()
        raise RunFolderError(message)


def record_rank(run_dir: Path, rank: int, world_size: int) -> None:
    """Where this rank ran and which rendezvous it joined: ``<run_dir>/ranks/rank<R>.json``."""
    folder = run_dir / "ranks"
    folder.mkdir(parents=True, exist_ok=True)
    info = {
        "rank": rank,
        "world_size": world_size,
        "local_rank": int(os.environ.get("LOCAL_RANK", "0")),
        "node": os.environ.get("SLURMD_NODENAME") or socket.gethostname(),
        "run_id": os.environ.get("TORCHELASTIC_RUN_ID", ""),
        "restart_count": restart_count(),
        "pid": os.getpid(),
    }
    write_atomically(folder / f"rank{rank}.json", json.dumps(info) + "\n")


def write_result(run_dir: Path, result: dict) -> None:
    """``<run_dir>/result.json``: the run's summary (rank 0 only)."""
    write_atomically(run_dir / "result.json", json.dumps(result, indent=2) + "\n")
