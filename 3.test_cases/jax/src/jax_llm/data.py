"""Token windows for training: each process builds only its own rows of each global batch.

The corpus is a token array: a ``.bin`` of uint16 token ids (memory-mapped, tokenized ahead of time), a
UTF-8 ``.txt`` read as bytes, or by default the Python standard library's ``pydoc_data`` topics as
bytes (on every Python install, so a run needs no download). Sample ``i`` is the window of
``seq_len + 1`` tokens at ``i * seq_len``; each epoch visits the samples in a seeded permutation, so
the batch of step ``s`` depends only on ``s``: the step in a checkpoint is the data position.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np


class DataError(ValueError):
    """The corpus cannot feed this configuration."""


def load_tokens(data_path: str | None, vocab_size: int) -> np.ndarray:
    if data_path is None:
        from pydoc_data.topics import topics  # noqa: PLC0415 - only the default corpus needs it

        return np.frombuffer("\n".join(topics.values()).encode(), dtype=np.uint8)
    path = Path(data_path)
    if path.suffix == ".bin":
        tokens = np.memmap(path, dtype=np.uint16, mode="r")
        if tokens.size and int(tokens.max()) >= vocab_size:
            raise DataError(f"{path}: token id {int(tokens.max())} >= the preset's vocabulary {vocab_size}")
        return tokens
    if vocab_size < 256:
        raise DataError(f"{path}: bytes need a vocabulary of 256; this preset has {vocab_size}")
    try:
        return np.frombuffer(path.read_text(encoding="utf-8").encode(), dtype=np.uint8)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); give text or a .bin"
        ) from None


class Batches:
    """The rows ``[first, first + rows)`` of every global batch of ``global_batch`` windows."""

    def __init__(self, tokens: np.ndarray, seq_len: int, global_batch: int, seed: int, first: int, rows: int):
        self.tokens, self.seq_len, self.global_batch, self.seed = tokens, seq_len, global_batch, seed
        self.first, self.rows = first, rows
        self.num_samples = (tokens.size - 1) // seq_len
        if self.num_samples < global_batch:
            raise DataError(
                f"the corpus has {tokens.size} tokens, {self.num_samples} windows of {seq_len + 1}; a batch "
                f"needs {global_batch}: use a larger corpus, --seq-len or --global-batch smaller"
            )

    @lru_cache(maxsize=2)  # noqa: B019 - one object per run; the current and the next epoch
    def order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)

    def sample_ids(self, step: int) -> list[int]:
        """Global sample ids of this process's rows of (0-based) step ``step``."""
        ids = []
        for row in range(self.first, self.first + self.rows):
            position = step * self.global_batch + row
            epoch, within = divmod(position, self.num_samples)
            ids.append(int(self.order(epoch)[within]))
        return ids

    def batch(self, step: int) -> np.ndarray:
        """(rows, seq_len + 1) int32 tokens: inputs are ``[:, :-1]``, targets ``[:, 1:]``."""
        windows = [
            self.tokens[i * self.seq_len : i * self.seq_len + self.seq_len + 1] for i in self.sample_ids(step)
        ]
        return np.stack(windows).astype(np.int32)
