"""Metrics as data: one JSON record per step (stdout and ``<run_dir>/metrics.jsonl``) plus one human line.

Step records: ``step``, ``epoch``, ``loss`` (mean over ranks), ``lr``, ``samples_per_s`` (all ranks),
``step_time_s`` and ``mem_gib`` (rank 0's peak resident memory).

Only rank 0 reports; the loss it reports is the mean over all ranks.
"""

from __future__ import annotations

import json
import resource
from pathlib import Path
from typing import TextIO


def peak_memory_gib() -> float:
    """Peak resident memory of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


class MetricsLogger:
    """Writes JSON records to stdout and to a file (appending, so a resumed run continues it)."""

    def __init__(self, run_dir: Path, enabled: bool) -> None:
        self.enabled = enabled
        self._file: TextIO | None = None
        if enabled:
            run_dir.mkdir(parents=True, exist_ok=True)
            self._file = (run_dir / "metrics.jsonl").open("a", encoding="utf-8")

    def record(self, **values) -> None:
        if not self.enabled:
            return
        line = json.dumps(values, sort_keys=False)
        print(line, flush=True)
        assert self._file is not None
        self._file.write(line + "\n")
        self._file.flush()

    def say(self, text: str) -> None:
        if self.enabled:
            print(text, flush=True)

    def step(
        self, step: int, epoch: int, loss: float, lr: float, samples_per_s: float, step_time_s: float
    ) -> None:
        self.record(
            step=step,
            epoch=epoch,
            loss=loss,
            lr=lr,
            samples_per_s=round(samples_per_s, 1),
            step_time_s=round(step_time_s, 6),
            mem_gib=round(peak_memory_gib(), 3),
        )
        self.say(
            f"step {step:5d} | epoch {epoch:3d} | loss {loss:.4f} | lr {lr:.4f} | "
            f"{samples_per_s:,.0f} samples/s"
        )

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
