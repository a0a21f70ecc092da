"""Training data: token shards staged once by ``stage.py``, memory-mapped; windows of ``seq_len + 1`` tokens.

``--data-path`` is a folder ``stage.py`` wrote (``index.json``, ``tokens-*.bin``, ``STAGED``). Its shards
are mapped read-only, so start time and resident memory do not grow with the corpus: a rank touches only
the pages of the windows it trains on. Raw text (a folder of ``.txt`` / ``.jsonl``, a ``.jsonl`` file) is
refused with the command that stages it. ``--data-path ""`` is the built-in corpus, the Python standard
library's ``pydoc_data`` topics (about 465K characters, on every Python install), tokenized in memory as
UTF-8 bytes (ids 0-255, end-of-document 256) or with ``--tokenizer``, a local Hugging Face folder.

Batches are a pure function of the global sample counter: the step's global batch is the next
``global_batch`` samples of the epoch's seeded order of the training windows, and each rank takes its own
contiguous slice. The data position saved in a checkpoint is just that counter, so a resumed run, even on
a different number of ranks, sees the same global batches. The order is a keyed Feistel permutation,
computed per sample, so a corpus of 10^8 windows needs no 10^8-entry table.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .tokens import BYTE_VOCAB, FORMAT_VERSION, INDEX, MARKER, byte_encoder

VAL_FRACTION = 0.05
MASK64 = (1 << 64) - 1


class DataError(ValueError):
    """The corpus cannot provide what the config asks for."""


# --------------------------------------------------------------------------------------------- the order


def _mix64(value: int) -> int:
    """splitmix64's finaliser: a cheap, well-spread 64-bit hash."""
    value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9 & MASK64
    value = (value ^ (value >> 27)) * 0x94D049BB133111EB & MASK64
    return value ^ (value >> 31)


class EpochPermutation:
    """A seeded bijection of ``range(n)`` computed per index, with no O(n) table.

    A balanced 6-round Feistel network on ``2 * half_bits`` bits (the smallest even width covering n, so
    at most ~4n values) permutes that range; cycle-walking (apply it again until the value is below n)
    restricts it to ``range(n)`` and stays a bijection. Round keys come from (seed, epoch).
    """

    ROUNDS = 6

    def __init__(self, n: int, seed: int, epoch: int) -> None:
        self.n = n
        self.half_bits = ((n - 1).bit_length() + 1) // 2
        self.mask = (1 << self.half_bits) - 1
        base = _mix64(_mix64((seed & MASK64) ^ 0x9E3779B97F4A7C15) ^ epoch)
        self.keys = [_mix64(base + round_ * 0x9E3779B97F4A7C15 & MASK64) for round_ in range(self.ROUNDS)]

    def _feistel(self, value: int) -> int:
        left, right = value >> self.half_bits, value & self.mask
        for key in self.keys:
            left, right = right, left ^ (_mix64(right ^ key) & self.mask)
        return (left << self.half_bits) | right

    def __call__(self, index: int) -> int:
        if not 0 <= index < self.n:
            raise IndexError(f"index {index} outside 0..{self.n - 1}")
        value = self._feistel(index)
        while value >= self.n:
            value = self._feistel(value)
        return value


# ------------------------------------------------------------------------------------------- the windows


@dataclass
class PackedData:
    """Windows of ``seq_len + 1`` tokens (inputs and shifted targets) cut inside each token array.

    ``shards`` are read-only memory maps of staged shards (or one in-memory array for the built-in
    corpus). A window never spans two shards; global window ``g`` is found by bisecting the cumulative
    window counts. The last 5% of windows (at least one) are validation, the rest training.
    """

    shards: list[np.ndarray]
    seq_len: int
    seed: int
    vocab_size: int = BYTE_VOCAB
    num_train: int = field(init=False)
    num_val: int = field(init=False)
    _starts: list[int] = field(init=False, repr=False)
    _order: tuple[int, EpochPermutation] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        window = self.seq_len + 1
        self._starts = [0]
        for shard in self.shards:
            self._starts.append(self._starts[-1] + len(shard) // window)
        total = self._starts[-1]
        self.num_val = max(1, int(total * VAL_FRACTION))
        self.num_train = total - self.num_val

    def window(self, index: int) -> np.ndarray:
        """Global window ``index`` (training windows first, then validation): ``seq_len + 1`` tokens."""
        shard = bisect.bisect_right(self._starts, index) - 1
        offset = (index - self._starts[shard]) * (self.seq_len + 1)
        return self.shards[shard][offset : offset + self.seq_len + 1]

    def sample_indices(self, first_sample: int, count: int) -> list[int]:
        """Training window indices for global samples ``first_sample .. first_sample + count - 1``."""
        indices = []
        for counter in range(first_sample, first_sample + count):
            epoch, position = divmod(counter, self.num_train)
            indices.append(self._permutation(epoch)(position))
        return indices

    def _permutation(self, epoch: int) -> EpochPermutation:
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, EpochPermutation(self.num_train, self.seed, epoch))
        return self._order[1]

    def _stack(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        windows = torch.from_numpy(np.stack([self.window(int(i)) for i in indices]).astype(np.int64))
        return windows[:, :-1], windows[:, 1:]

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets (int64, ``[len(indices), seq_len]``) of training windows."""
        return self._stack(indices)

    def val_batch(self, index: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``index``-th validation batch, wrapping around the validation windows."""
        rows = (np.arange(index * batch_size, (index + 1) * batch_size) % self.num_val) + self.num_train
        return self._stack(rows)


# ------------------------------------------------------------------------------------------- the sources


def builtin_tokens(tokenizer: str) -> tuple[np.ndarray, int]:
    """The pydoc topics tokenized in memory (bytes, or a local tokenizer folder); returns (ids, vocab)."""
    from pydoc_data.topics import topics  # noqa: PLC0415 - only when the built-in corpus is used

    documents = [topics[key] for key in sorted(topics)]
    if not tokenizer:
        return byte_encoder(documents), BYTE_VOCAB
    from transformers import AutoTokenizer  # noqa: PLC0415 - only for real-run tokenizers

    hub = AutoTokenizer.from_pretrained(tokenizer, local_files_only=True)
    eod = hub.eos_token_id if hub.eos_token_id is not None else 0
    ids = hub(documents, add_special_tokens=False)["input_ids"]
    return np.concatenate([np.array([*piece, eod], dtype=np.int64) for piece in ids]), len(hub)


def read_index(folder: Path) -> dict:
    """``index.json`` of a completely staged folder, or a DataError that says how to stage it."""
    stage_it = f"python src/stage.py --input {folder} --out <folder>, then --data-path <folder>"
    if not (folder / INDEX).is_file():
        if folder.is_file() or any(folder.rglob("*.txt")) or any(folder.rglob("*.jsonl")):
            raise DataError(f"--data-path {folder} is raw text; tokenize it once first: {stage_it}")
        raise DataError(f"--data-path {folder} has no {INDEX}; stage a corpus first: {stage_it}")
    if not (folder / MARKER).is_file():
        raise DataError(
            f"--data-path {folder} has no {MARKER} marker: its staging did not finish; "
            "run stage.py again with the same --out"
        )
    try:
        index = json.loads((folder / INDEX).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{folder / INDEX} cannot be read ({exc}); restage with stage.py --force") from None
    if index.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"--data-path {folder} has format version {index.get('format_version')}, this trainer reads "
            f"{FORMAT_VERSION}; restage it with this repository's src/stage.py"
        )
    return index


def map_shards(folder: Path, index: dict) -> list[np.ndarray]:
    """Read-only memory maps of the shards, after checking each file's size against the index."""
    dtype = np.dtype(index["dtype"]).newbyteorder("<")
    shards = []
    for shard in index["shards"]:
        path = folder / shard["file"]
        expected = shard["tokens"] * dtype.itemsize
        size = path.stat().st_size if path.is_file() else None
        if size != expected:
            raise DataError(
                f"{path} is {size if size is not None else 'missing'} bytes, {INDEX} says {expected}; "
                "restage the folder with stage.py --force"
            )
        if shard["tokens"]:
            shards.append(np.memmap(path, dtype=dtype, mode="r", shape=(shard["tokens"],)))
    return shards


def _check_tokenizer(folder: Path, index: dict, tokenizer: str) -> None:
    """A ``--tokenizer`` given with a staged folder must be the one the tokens were made with."""
    from transformers import AutoTokenizer  # noqa: PLC0415

    hub = AutoTokenizer.from_pretrained(tokenizer, local_files_only=True)
    if (len(hub), hub.eos_token_id) != (index["vocab_size"], index["eod_id"]):
        raise DataError(
            f"--tokenizer {tokenizer} ({len(hub)} tokens, eos {hub.eos_token_id}) is not the one "
            f"--data-path {folder} was staged with ({index['tokenizer']['source']}); drop --tokenizer "
            "(the staged folder records its own) or restage with this tokenizer"
        )


def load_packed(
    data_path: str, seq_len: int, seed: int, tokenizer: str = "", vocab_size: int = 0
) -> PackedData:
    """The windows of a staged folder (memory-mapped) or of the built-in corpus (``data_path=""``)."""
    if data_path:
        folder = Path(data_path)
        index = read_index(folder)
        if tokenizer:
            _check_tokenizer(folder, index, tokenizer)
        shards, vocab = map_shards(folder, index), index["vocab_size"]
        source = f"--data-path {folder} (staged with {index['tokenizer']['source']})"
    else:
        tokens, vocab = builtin_tokens(tokenizer)
        shards, source = [tokens], f"--tokenizer {tokenizer or 'bytes'}"
    if vocab_size and vocab > vocab_size:
        raise DataError(
            f"{source} has {vocab} tokens but the model's vocabulary is {vocab_size}; "
            "use a preset with a large enough vocabulary"
        )
    data = PackedData(shards, seq_len, seed, vocab)
    if data.num_train < 1:
        total = sum(len(shard) for shard in shards)
        raise DataError(
            f"the corpus has {total} tokens, too few for two windows of --seq-len {seq_len} in one shard; "
            "give a larger --data-path or a shorter --seq-len"
        )
    return data
