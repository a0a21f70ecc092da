"""Atomic, verified checkpoint folders: every trainer of this repository carries a copy.

Layout: ``<checkpoint_dir>/step-00000040/`` holds what the trainer writes (its ``write_payload``), each
rank's RNG state ``rng-rank<R>.pt`` and, last, ``COMPLETE``: a JSON marker with the step, the world size
and a manifest (every file's relative path and size). Everything is written into ``.step-00000040.tmp``
first and renamed into place before the marker is written, so a folder without the marker is an
interrupted save. On resume a checkpoint is used only when its marker is present and every file of the
manifest is there with its size; otherwise it is skipped, with a warning, for the previous one.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist

from .distributed import broadcast_outcome

MARKER = "COMPLETE"
PREFIX = "step-"


class CheckpointError(RuntimeError):
    """A checkpoint folder the user named cannot be used; the message says what to do."""


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def step_folder(checkpoint_dir: Path, step: int) -> Path:
    return checkpoint_dir / f"{PREFIX}{step:08d}"


def manifest(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` except the marker: relative path -> size in bytes."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MARKER)
    return {str(p.relative_to(folder)): p.stat().st_size for p in files}


def save(
    checkpoint_dir: Path,
    step: int,
    write_payload: Callable[[Path], None],
    keep: int,
    before_marker: Callable[[], None] | None = None,
) -> Path:
    """Collective. Every rank calls ``write_payload(tmp_folder)``; rank 0 renames the folder into place,
    writes the marker with the manifest, and keeps the newest ``keep`` complete checkpoints."""
    rank = dist.get_rank()
    final = step_folder(checkpoint_dir, step)
    tmp = checkpoint_dir / f".{final.name}.tmp"
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    dist.barrier()
    write_payload(tmp)
    torch.save(torch.get_rng_state(), tmp / f"rng-rank{rank}.pt")
    dist.barrier()
    if rank == 0:
        shutil.rmtree(final, ignore_errors=True)  # an incomplete leftover of an earlier attempt
        os.replace(tmp, final)
        if before_marker is not None:
            before_marker()
        marker = {"step": step, "world_size": dist.get_world_size(), "time": time.time()}
        marker["files"] = manifest(final)
        marker_tmp = final / f".{MARKER}.tmp"
        marker_tmp.write_text(json.dumps(marker) + "\n")
        os.replace(marker_tmp, final / MARKER)
        for old in complete_checkpoints(checkpoint_dir)[keep:]:
            shutil.rmtree(old, ignore_errors=True)
    dist.barrier()
    return final


def complete_checkpoints(checkpoint_dir: Path) -> list[Path]:
    """Folders with a completion marker, newest first (not yet verified)."""
    folders = sorted(checkpoint_dir.glob(f"{PREFIX}*"), reverse=True) if checkpoint_dir.is_dir() else []
    return [folder for folder in folders if (folder / MARKER).is_file()]


def problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be resumed from, or None when its marker and manifest check out."""
    if not (folder / MARKER).is_file():
        return f"no {MARKER} marker: the save was interrupted"
    try:
        files = json.loads((folder / MARKER).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable {MARKER} marker ({exc})"
    for name, size in files.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, the manifest says {size}"
    return None


def choose(resume: str, checkpoint_dir: Path) -> Path | None:
    """Collective. Rank 0 picks the checkpoint for ``--resume`` (auto | never | a folder); every rank
    learns it. ``auto`` takes the newest verified checkpoint, warning about each one it skips."""
    choice = None
    if dist.get_rank() == 0 and resume != "never":
        if resume == "auto":
            choice = next((str(f) for f in _candidates(checkpoint_dir) if _usable(f)), None)
        else:
            choice = resume if _usable(Path(resume)) else f"error:{resume}"
    choice = broadcast_outcome(choice)
    if choice and choice.startswith("error:"):
        raise CheckpointError(
            f"--resume {choice[6:]} is not a complete, readable checkpoint; pass a step-* folder "
            f"with a {MARKER} marker, or --resume auto"
        )
    return Path(choice) if choice else None


def _candidates(checkpoint_dir: Path) -> list[Path]:
    return sorted(checkpoint_dir.glob(f"{PREFIX}*"), reverse=True) if checkpoint_dir.is_dir() else []


def _usable(folder: Path) -> bool:
    reason = problem(folder)
    if reason:
        warn(f"skipping checkpoint {folder}: {reason}")
    return reason is None


def restore_rng(folder: Path, step: int) -> None:
    """This rank's RNG as saved, or reseeded with a warning when the world size changed."""
    rng = folder / f"rng-rank{dist.get_rank()}.pt"
    if rng.is_file():
        torch.set_rng_state(torch.load(rng, weights_only=True))
    else:
        warn(f"{rng.name} not in {folder} (the world size changed); reseeding this rank")
        torch.manual_seed(step * 1000 + dist.get_rank())
