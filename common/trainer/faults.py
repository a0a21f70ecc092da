"""Resilience drills: every trainer of this repository carries a copy.

``--fault-kill-at-step RANK:STEP`` SIGKILLs one rank at one step on the first attempt only, so a
restarted group (torchrun ``--max-restarts``, a requeued Slurm job, a restarted pod) runs through.
``--fault-kill-in-checkpoint STEP`` SIGKILLs rank 0 inside that step's save, after the rename and
before the completion marker: the worst moment for a checkpoint writer.

Standard library only: the config validation that parses these specs runs before torch is imported.
"""

from __future__ import annotations

import os
import signal


class FaultSpecError(ValueError):
    """A drill specification that cannot be parsed; the message names it and the form."""


def parse_fault(spec: str) -> tuple[int, int]:
    """``"RANK:STEP"`` -> (rank, step)."""
    try:
        rank, step = (int(part) for part in spec.split(":"))
    except ValueError:
        raise FaultSpecError(f"--fault-kill-at-step={spec!r} must be RANK:STEP, e.g. 1:30") from None
    if rank < 0 or step <= 0:
        raise FaultSpecError(f"--fault-kill-at-step={spec!r} needs a rank >= 0 and a step >= 1, e.g. 1:30")
    return rank, step


def restart_count() -> int:
    """How many times torchrun restarted this worker group (0 on the first attempt)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


def first_attempt() -> bool:
    return restart_count() == 0


def maybe_kill(spec: str, rank: int, step: int) -> None:
    """SIGKILL this rank when ``spec`` names it and ``step``, on the first attempt only."""
    if spec and first_attempt() and (rank, step) == parse_fault(spec):
        print(f"fault injection: SIGKILL rank {rank} at step {step}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


def kill_in_checkpoint(step: int) -> None:
    """SIGKILL this process inside the save of ``step`` (called between rename and marker)."""
    print(f"fault injection: SIGKILL rank 0 inside the step {step} checkpoint", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
