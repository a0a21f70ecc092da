"""Atomic checkpoints: write to a temporary folder, rename into place, then a completion marker.

Layout: ``<checkpoint_dir>/step-00000100/{state.pt, rng-rank<R>.pt, COMPLETE}``. DDP keeps the
model and optimizer identical on every rank, so rank 0 writes them once; each rank writes its own
RNG state. Resume picks the newest folder that has the marker and loads; an incomplete or corrupt
one is skipped with a warning in favour of the previous complete one.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

MARKER = "COMPLETE"
PREFIX = "step-"


class CheckpointError(RuntimeError):
    """A checkpoint the user named explicitly cannot be used."""


def step_folder(checkpoint_dir: Path, step: int) -> Path:
    return checkpoint_dir / f"{PREFIX}{step:08d}"


def ensure_writable(folder: Path) -> None:
    """Fail early, with the fix, when the run or checkpoint folder could not be written."""
    probe = folder / f".write-test-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise CheckpointError(
            f"folder {folder} is not writable ({exc.strerror or exc}); pass a writable --run-dir / "
            "--checkpoint-dir (shared storage such as /fsx on a cluster)"
        ) from None


def save(checkpoint_dir: Path, step: int, state: dict, keep: int) -> Path:
    """Collective: every rank calls it. Returns the completed folder."""
    rank = dist.get_rank()
    final = step_folder(checkpoint_dir, step)
    tmp = checkpoint_dir / f".{final.name}.tmp"
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    dist.barrier()
    torch.save(torch.get_rng_state(), tmp / f"rng-rank{rank}.pt")
    if rank == 0:
        torch.save(state, tmp / "state.pt")
    dist.barrier()
    if rank == 0:
        shutil.rmtree(final, ignore_errors=True)  # an incomplete leftover of an earlier attempt
        os.replace(tmp, final)
        marker = {"step": step, "world_size": dist.get_world_size(), "time": time.time()}
        (final / MARKER).write_text(json.dumps(marker) + "\n")
        prune(checkpoint_dir, keep)
    dist.barrier()
    return final


def complete_checkpoints(checkpoint_dir: Path) -> list[Path]:
    """Folders with a completion marker, newest first."""
    if not checkpoint_dir.is_dir():
        return []
    folders = sorted(checkpoint_dir.glob(f"{PREFIX}*"), reverse=True)
    return [folder for folder in folders if (folder / MARKER).is_file()]


def prune(checkpoint_dir: Path, keep: int) -> None:
    for old in complete_checkpoints(checkpoint_dir)[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _loadable(folder: Path) -> dict | None:
    try:
        return torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
    except Exception as exc:
        warn(f"skipping corrupt checkpoint {folder}: {str(exc).splitlines()[0][:200]}")
        return None


def find_latest(checkpoint_dir: Path) -> Path | None:
    """Newest complete, loadable checkpoint; warns about each one skipped."""
    if not checkpoint_dir.is_dir():
        return None
    for folder in sorted(checkpoint_dir.glob(f"{PREFIX}*"), reverse=True):
        if not (folder / MARKER).is_file():
            warn(f"skipping incomplete checkpoint {folder} (no {MARKER} marker)")
            continue
        if _loadable(folder) is not None:
            return folder
    return None


def choose(resume: str, checkpoint_dir: Path) -> Path | None:
    """Rank 0 decides which checkpoint to resume from and tells every rank."""
    choice: list[str | None] = [None]
    if dist.get_rank() == 0:
        if resume == "never":
            choice[0] = None
        elif resume == "auto":
            latest = find_latest(checkpoint_dir)
            choice[0] = str(latest) if latest else None
        else:
            folder = Path(resume)
            if not (folder / MARKER).is_file() or _loadable(folder) is None:
                choice[0] = f"error:{folder}"
            else:
                choice[0] = str(folder)
    dist.broadcast_object_list(choice, src=0)
    if choice[0] and choice[0].startswith("error:"):
        raise CheckpointError(
            f"--resume {choice[0][6:]} is not a complete, readable checkpoint; "
            "pass a step-* folder with a COMPLETE marker, or --resume auto"
        )
    return Path(choice[0]) if choice[0] else None


def load(folder: Path) -> dict:
    """Load the shared state and restore this rank's RNG (reseeded with a warning if absent)."""
    state = torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
    rng_file = folder / f"rng-rank{dist.get_rank()}.pt"
    if rng_file.is_file():
        torch.set_rng_state(torch.load(rng_file, weights_only=True))
    else:
        warn(f"{rng_file.name} not in {folder} (world size changed); reseeding this rank")
        torch.manual_seed(state["step"] * 1000 + dist.get_rank())
    return state
