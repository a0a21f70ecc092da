"""Sharded checkpoints with ``torch.distributed.checkpoint``, made atomic by rename + marker.

Layout: ``<checkpoint_dir>/step-00000040/`` holds the DCP shards and ``.metadata`` (model and
optimizer, sharded as trained), ``trainer.pt`` (step, samples consumed = data position, LR scheduler,
config; written by rank 0), ``rng-rank<R>.pt`` (each rank's RNG) and, last, ``COMPLETE``. Everything
is written into ``.step-00000040.tmp`` first and renamed into place; a folder without the marker is
an interrupted save and is skipped with a warning. DCP reshards on load, so a checkpoint written by
2 ranks loads into 1.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

MARKER = "COMPLETE"
PREFIX = "step-"


class CheckpointError(RuntimeError):
    """A checkpoint folder cannot be used or written; the message says what to do."""


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def ensure_writable(folder: Path) -> None:
    """Fail early, with the fix, when ``folder`` cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise CheckpointError(
            f"folder {folder} is not writable ({exc.strerror or exc}); pass a writable "
            "--run-dir / --checkpoint-dir (shared storage such as /fsx on a cluster)"
        ) from None


def save(
    checkpoint_dir: Path,
    step: int,
    model,
    optimizer,
    trainer_state: dict,
    keep: int,
    kill_before_marker: bool = False,
) -> Path:
    """Collective. Write step ``step`` atomically; prune to the newest ``keep`` complete checkpoints."""
    rank = dist.get_rank()
    final = checkpoint_dir / f"{PREFIX}{step:08d}"
    tmp = checkpoint_dir / f".{final.name}.tmp"
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    dist.barrier()
    model_state, optim_state = get_state_dict(model, optimizer)
    dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=str(tmp))
    torch.save(torch.get_rng_state(), tmp / f"rng-rank{rank}.pt")
    if rank == 0:
        torch.save(trainer_state, tmp / "trainer.pt")
    dist.barrier()
    if rank == 0:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        if kill_before_marker:  # resilience drill: die between rename and marker
            print(f"fault injection: SIGKILL rank 0 inside the step {step} checkpoint", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        (final / MARKER).write_text(
            json.dumps({"step": step, "world_size": dist.get_world_size(), "time": time.time()}) + "\n"
        )
        for old in complete_checkpoints(checkpoint_dir)[keep:]:
            shutil.rmtree(old, ignore_errors=True)
    dist.barrier()
    return final


def complete_checkpoints(checkpoint_dir: Path) -> list[Path]:
    """Folders with a completion marker, newest first."""
    folders = sorted(checkpoint_dir.glob(f"{PREFIX}*"), reverse=True) if checkpoint_dir.is_dir() else []
    return [folder for folder in folders if (folder / MARKER).is_file()]


def _usable(folder: Path) -> bool:
    if not (folder / MARKER).is_file():
        warn(f"skipping incomplete checkpoint {folder} (no {MARKER} marker: the save was interrupted)")
        return False
    try:
        torch.load(folder / "trainer.pt", weights_only=True)
    except Exception as exc:  # any read failure means unusable
        warn(f"skipping corrupt checkpoint {folder}: {str(exc).splitlines()[0][:200]}")
        return False
    if not (folder / ".metadata").is_file():
        warn(f"skipping corrupt checkpoint {folder}: no DCP .metadata")
        return False
    return True


def choose(resume: str, checkpoint_dir: Path) -> Path | None:
    """Rank 0 picks the checkpoint to resume from and tells every rank."""
    choice: list[str | None] = [None]
    if dist.get_rank() == 0 and resume != "never":
        if resume == "auto":
            folders = (
                sorted(checkpoint_dir.glob(f"{PREFIX}*"), reverse=True) if checkpoint_dir.is_dir() else []
            )
            choice[0] = next((str(f) for f in folders if _usable(f)), None)
        else:
            choice[0] = resume if _usable(Path(resume)) else f"error:{resume}"
    dist.broadcast_object_list(choice, src=0)
    if choice[0] and choice[0].startswith("error:"):
        raise CheckpointError(
            f"--resume {choice[0][6:]} is not a complete, readable checkpoint; pass a step-* "
            "folder with a COMPLETE marker, or --resume auto"
        )
    return Path(choice[0]) if choice[0] else None


def load(folder: Path, model, optimizer) -> dict:
    """Collective. Restore model, optimizer and this rank's RNG; return the trainer state."""
    model_state, optim_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optim": optim_state}
    dcp.load(state, checkpoint_id=str(folder))
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    trainer_state = torch.load(folder / "trainer.pt", weights_only=True)
    rng = folder / f"rng-rank{dist.get_rank()}.pt"
    if rng.is_file():
        torch.set_rng_state(torch.load(rng, weights_only=True))
    else:
        warn(f"{rng.name} not in {folder} (the world size changed); reseeding this rank")
        torch.manual_seed(trainer_state["step"] * 1000 + dist.get_rank())
    return trainer_state
