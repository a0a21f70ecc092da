"""What a cpu-ddp checkpoint holds, written through the shared atomic writer (``atomic_checkpoint``).

Per ``step-N/`` folder: ``state.pt`` (model, optimizer, LR scheduler, step, epoch, resolved config),
written once by rank 0 because DDP keeps model and optimizer identical on every rank; each rank's RNG
(``rng-rank<R>.pt``); the ``COMPLETE`` marker with the manifest. Resume takes the newest folder whose
marker and manifest check out, and skips the others with a warning.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from . import atomic_checkpoint
from .atomic_checkpoint import CheckpointError, choose, complete_checkpoints  # noqa: F401 - the API here

STATE = "state.pt"


def save(
    checkpoint_dir: Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    trainer_state: dict,
    keep: int,
    before_marker: Callable[[], None] | None = None,
) -> Path:
    """Collective. Write step ``step`` atomically; keep the newest ``keep`` complete checkpoints."""

    def write_payload(folder: Path) -> None:
        if dist.get_rank() == 0:
            state = {
                **trainer_state,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
            }
            torch.save(state, folder / STATE)

    return atomic_checkpoint.save(checkpoint_dir, step, write_payload, keep, before_marker)


def load(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler) -> dict:
    """Restore model, optimizer, scheduler and this rank's RNG; return the whole saved state."""
    state = torch.load(folder / STATE, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    atomic_checkpoint.restore_rng(folder, int(state["step"]))
    return state
