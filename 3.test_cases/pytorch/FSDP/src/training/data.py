"""Offline data: a corpus already on the machine, a byte-level tokenizer, packed fixed-length windows.

The default corpus is the Python standard library's ``pydoc_data`` topics (about 465K characters, on
every Python install). ``--data-path`` takes a folder of ``.txt`` files or a ``.jsonl`` file with a
``text`` field. Tokens are UTF-8 bytes (ids 0-255) with an end-of-document id 256, so no tokenizer
download is needed and every preset's vocabulary covers them.

Batches are a pure function of the global sample counter: the training windows are shuffled per
epoch with a seeded permutation, the step's global batch is the next ``global_batch`` samples of that
order, and each rank takes its own contiguous slice. The data position saved in a checkpoint is just
that counter, so a resumed run, even on a different number of ranks, sees the same global batches.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

EOD = 256
VAL_FRACTION = 0.05


def read_documents(data_path: str) -> list[str]:
    """Documents from the built-in corpus, a folder of .txt files, or a JSONL file."""
    if not data_path:
        from pydoc_data.topics import topics  # noqa: PLC0415 - only when the built-in corpus is used

        return [topics[key] for key in sorted(topics)]
    path = Path(data_path)
    if path.is_dir():
        return [p.read_text(encoding="utf-8", errors="replace") for p in sorted(path.rglob("*.txt"))]
    return [
        json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def tokenize(documents: list[str]) -> torch.Tensor:
    """Bytes of each document followed by the end-of-document id."""
    ids: list[int] = []
    for text in documents:
        ids.extend(text.encode("utf-8"))
        ids.append(EOD)
    return torch.tensor(ids, dtype=torch.long)


@dataclass
class PackedData:
    """Fixed windows of ``seq_len + 1`` tokens (inputs and shifted targets), split train / validation."""

    train: torch.Tensor  # [n_train, seq_len + 1]
    val: torch.Tensor  # [n_val, seq_len + 1]
    seed: int

    def sample_indices(self, first_sample: int, count: int) -> list[int]:
        """Window indices for global samples ``first_sample .. first_sample + count - 1``."""
        n = len(self.train)
        indices = []
        for counter in range(first_sample, first_sample + count):
            epoch, position = divmod(counter, n)
            indices.append(int(self._order(epoch)[position]))
        return indices

    def _order(self, epoch: int) -> torch.Tensor:
        cache = getattr(self, "_cache", None)
        if cache is None or cache[0] != epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._cache = (epoch, torch.randperm(len(self.train), generator=generator))
        return self._cache[1]

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        windows = self.train[torch.tensor(indices)]
        return windows[:, :-1], windows[:, 1:]

    def val_batch(self, index: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.arange(index * batch_size, (index + 1) * batch_size) % len(self.val)
        windows = self.val[rows]
        return windows[:, :-1], windows[:, 1:]


class DataError(ValueError):
    """The corpus cannot provide what the config asks for."""


def load_packed(data_path: str, seq_len: int, seed: int) -> PackedData:
    """Tokenize, cut into windows, keep the last 5% (at least one window) for validation."""
    tokens = tokenize(read_documents(data_path))
    window = seq_len + 1
    count = len(tokens) // window
    if count < 2:
        raise DataError(
            f"the corpus has {len(tokens)} tokens, too few for two windows of --seq-len {seq_len}; "
            "give a larger --data-path or a shorter --seq-len"
        )
    windows = tokens[: count * window].view(count, window)
    n_val = max(1, int(count * VAL_FRACTION))
    return PackedData(train=windows[:-n_val], val=windows[-n_val:], seed=seed)
