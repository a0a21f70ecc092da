"""The run folder: every trainer of this repository carries a copy.

``<run_dir>/config.json`` (the resolved config), ``metrics.jsonl``, ``result.json``, ``ranks/rank<R>.json``
(where each rank ran) and, by default, ``checkpoints/``. Rank 0 checks that the folders can be written
before anything is trained, so a bad ``--run-dir`` costs one line, not a lost run.
"""

from __future__ import annotations

import json
import os
import socket
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


def prepare_run_dir(run_dir: Path, checkpoint_dir: Path, config_json: str) -> None:
    """Collective. Rank 0 checks both folders and writes ``config.json``; every rank learns the outcome."""
    import torch.distributed as dist  # noqa: PLC0415 - the folder helpers above need no torch

    from .distributed import broadcast_outcome, shutdown_distributed  # noqa: PLC0415

    message = None
    if dist.get_rank() == 0:
        try:
            ensure_writable(run_dir)
            ensure_writable(checkpoint_dir)
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
