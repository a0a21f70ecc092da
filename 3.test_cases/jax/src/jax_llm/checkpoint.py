"""Checkpoints with Orbax: the sharded train state plus a small JSON record, saved asynchronously.

Orbax writes each step into a temporary folder and renames it into place once every process has
finished (``checkpoints/step_00000020/``); ``latest_step`` only sees finished ones, so a run killed
mid-save resumes from the one before. Every process writes its own shards; a restore reads them back
with the shardings of the current mesh, so the process count may change between runs.
"""

from __future__ import annotations

from pathlib import Path

import jax
import orbax.checkpoint as ocp


class Checkpoints:
    def __init__(self, folder: Path, keep: int):
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, step_prefix="step", step_format_fixed_length=8, create=True
        )
        self.manager = ocp.CheckpointManager(folder.resolve(), options=options)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, record: dict) -> None:
        """Start saving; the training loop goes on while the files are written."""
        self.manager.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), record=ocp.args.JsonSave(record)),
        )

    def restore(self, step: int, like) -> tuple[object, dict]:
        """(state laid out like ``like``'s shardings, the JSON record) of ``step``."""
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), like)
        restored = self.manager.restore(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), record=ocp.args.JsonRestore()),
        )
        return restored.state, restored.record

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()
