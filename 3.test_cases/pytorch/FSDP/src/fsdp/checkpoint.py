"""What an FSDP checkpoint holds, written through the shared atomic writer (``atomic_checkpoint``).

Per ``step-N/`` folder: the ``torch.distributed.checkpoint`` (DCP) shards and ``.metadata`` for model and
optimizer, sharded as trained; ``trainer.pt`` (step, samples consumed = data position, LR scheduler,
resolved config; written by rank 0); each rank's RNG; the ``COMPLETE`` marker with the manifest. DCP
reshards on load, so a checkpoint written by 2 ranks loads into 1 (or into an unwrapped model).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

from . import atomic_checkpoint
from .atomic_checkpoint import CheckpointError, choose, complete_checkpoints  # noqa: F401 - the API here


def save(
    checkpoint_dir: Path,
    step: int,
    model,
    optimizer,
    trainer_state: dict,
    keep: int,
    before_marker=None,
) -> Path:
    """Collective. Write step ``step`` atomically; keep the newest ``keep`` complete checkpoints."""

    def write_payload(folder: Path) -> None:
        model_state, optim_state = get_state_dict(model, optimizer)
        dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=str(folder))
        if dist.get_rank() == 0:
            torch.save(trainer_state, folder / "trainer.pt")

    return atomic_checkpoint.save(checkpoint_dir, step, write_payload, keep, before_marker)


def load(folder: Path, model, optimizer) -> dict:
    """Collective. Restore model, optimizer and this rank's RNG; return the trainer state."""
    model_state, optim_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optim": optim_state}
    dcp.load(state, checkpoint_id=str(folder))
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    trainer_state = torch.load(folder / "trainer.pt", weights_only=True)
    atomic_checkpoint.restore_rng(folder, int(trainer_state["step"]))
    return trainer_state
