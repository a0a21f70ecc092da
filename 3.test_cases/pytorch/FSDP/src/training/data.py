"""Offline data: a corpus already on the machine, a byte-level tokenizer, packed fixed-length windows.

The default corpus is the Python standard library's ``pydoc_data`` topics (about 465K characters, on
every Python install). ``--data-path`` takes a folder of ``.txt`` / ``.jsonl`` files (``stage.py``
writes such a folder from a Hugging Face dataset) or one ``.jsonl`` file with a ``text`` field.
Tokens are UTF-8 bytes (ids 0-255) with an end-of-document id 256, so no tokenizer download is
needed and every preset's vocabulary covers them; ``--tokenizer`` takes a local Hugging Face
tokenizer folder instead (staged once, so ranks never hit the hub).

Batches are a pure function of the global sample counter: the training windows are shuffled per
epoch with a seeded permutation, the step's global batch is the next ``global_batch`` samples of that
order, and each rank takes its own contiguous slice. The data position saved in a checkpoint is just
that counter, so a resumed run, even on a different number of ranks, sees the same global batches.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

EOD = 256
VAL_FRACTION = 0.05


def _jsonl_texts(path: Path) -> list[str]:
    return [
        json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def read_documents(data_path: str) -> list[str]:
    """Documents: the built-in corpus, a folder of .txt / .jsonl files (stage.py writes one), or a .jsonl."""
    if not data_path:
        from pydoc_data.topics import topics  # noqa: PLC0415 - only when the built-in corpus is used

        return [topics[key] for key in sorted(topics)]
    path = Path(data_path)
    if not path.is_dir():
        return _jsonl_texts(path)
    documents = []
    for file in sorted(p for p in path.rglob("*") if p.suffix in {".txt", ".jsonl"}):
        if file.suffix == ".txt":
            documents.append(file.read_text(encoding="utf-8", errors="replace"))
        else:
            documents.extend(_jsonl_texts(file))
    return documents


class ByteTokenizer:
    """UTF-8 bytes (ids 0-255) and an end-of-document id 256: needs no download."""

    vocab_size = 257
    eod_id = EOD

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))


class HubTokenizer:
    """A Hugging Face tokenizer from a local folder (staged once by stage.py, never fetched by ranks)."""

    def __init__(self, folder: str) -> None:
        from transformers import AutoTokenizer  # noqa: PLC0415 - only for real-run tokenizers

        self._tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.vocab_size = len(self._tokenizer)
        self.eod_id = self._tokenizer.eos_token_id if self._tokenizer.eos_token_id is not None else 0

    def encode(self, text: str) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=False)


def tokenize(documents: list[str], tokenizer=None) -> torch.Tensor:
    """Token ids of each document followed by the end-of-document id."""
    tokenizer = tokenizer or ByteTokenizer()
    ids: list[int] = []
    for text in documents:
        ids.extend(tokenizer.encode(text))
        ids.append(tokenizer.eod_id)
    return torch.tensor(ids, dtype=torch.long)


@dataclass
class PackedData:
    """Fixed windows of ``seq_len + 1`` tokens (inputs and shifted targets), split train / validation."""

    train: torch.Tensor  # [n_train, seq_len + 1]
    val: torch.Tensor  # [n_val, seq_len + 1]
    seed: int
    _epoch_order: tuple[int, torch.Tensor] | None = field(default=None, init=False, repr=False)

    def sample_indices(self, first_sample: int, count: int) -> list[int]:
        """Window indices for global samples ``first_sample .. first_sample + count - 1``."""
        n = len(self.train)
        indices = []
        for counter in range(first_sample, first_sample + count):
            epoch, position = divmod(counter, n)
            indices.append(int(self._order(epoch)[position]))
        return indices

    def _order(self, epoch: int) -> torch.Tensor:
        """The epoch's seeded permutation of the training windows (the current epoch's is kept)."""
        if self._epoch_order is None or self._epoch_order[0] != epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch_order = (epoch, torch.randperm(len(self.train), generator=generator))
        return self._epoch_order[1]

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        windows = self.train[torch.tensor(indices)]
        return windows[:, :-1], windows[:, 1:]

    def val_batch(self, index: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.arange(index * batch_size, (index + 1) * batch_size) % len(self.val)
        windows = self.val[rows]
        return windows[:, :-1], windows[:, 1:]


class DataError(ValueError):
    """The corpus cannot provide what the config asks for."""


def load_packed(
    data_path: str, seq_len: int, seed: int, tokenizer: str = "", vocab_size: int = 0
) -> PackedData:
    """Tokenize, cut into windows, keep the last 5% (at least one window) for validation."""
    encoder = HubTokenizer(tokenizer) if tokenizer else ByteTokenizer()
    if vocab_size and encoder.vocab_size > vocab_size:
        raise DataError(
            f"--tokenizer {tokenizer or 'bytes'} has {encoder.vocab_size} tokens but the model's "
            f"vocabulary is {vocab_size}; use a preset with a large enough vocabulary"
        )
    tokens = tokenize(read_documents(data_path), encoder)
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
