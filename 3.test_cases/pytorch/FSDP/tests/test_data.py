"""Data: packing honours --seq-len, batches depend only on the sample counter, staged shards and a
local Hugging Face tokenizer work end to end (all offline)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import stage
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from training.data import DataError, load_packed, read_documents
from transformers import PreTrainedTokenizerFast

FOLDER = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("seq_len", [32, 128, 300])
def test_windows_honour_the_sequence_length(seq_len):
    data = load_packed("", seq_len, seed=1)
    assert data.train.shape[1] == data.val.shape[1] == seq_len + 1
    inputs, targets = data.batch(data.sample_indices(0, 3))
    assert inputs.shape == targets.shape == (3, seq_len)
    assert (inputs[:, 1:] == targets[:, :-1]).all()  # targets are the next tokens


def test_global_batches_do_not_depend_on_the_rank_count():
    data = load_packed("", 64, seed=3)
    global_batch = data.sample_indices(40, 8)
    two_ranks = data.sample_indices(40, 4) + data.sample_indices(44, 4)
    assert global_batch == two_ranks and len(set(global_batch)) == 8
    epoch = data.sample_indices(0, len(data.train))
    assert sorted(epoch) == list(range(len(data.train)))  # one epoch visits every window once


def test_too_small_corpus_is_a_clear_error(tmp_path):
    (tmp_path / "a.txt").write_text("short")
    with pytest.raises(DataError, match="too few for two windows of --seq-len 128"):
        load_packed(str(tmp_path), 128, seed=0)


def make_tokenizer(folder: Path, vocab_size: int) -> Path:
    """A byte-level BPE trained here in well under a second, saved like a hub tokenizer."""
    from pydoc_data.topics import topics  # noqa: PLC0415

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<eos>"])
    bpe.train_from_iterator(list(topics.values())[:200], trainer=trainer)
    hub_tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>")  # noqa: S106 - not a secret
    hub_tokenizer.save_pretrained(folder)
    return folder


def test_staged_shards_and_local_tokenizer_train(tmp_path):
    from pydoc_data.topics import topics  # noqa: PLC0415

    texts = [topics[k] for k in sorted(topics)]
    assert stage.write_shards(iter(texts), tmp_path / "data", documents_per_shard=400) == len(texts)
    shards = sorted(p.name for p in (tmp_path / "data").glob("shard-*.jsonl"))
    assert len(shards) == -(-len(texts) // 400) and (tmp_path / "data" / "STAGED").is_file()
    assert read_documents(str(tmp_path / "data")) == texts
    tokenizer = make_tokenizer(tmp_path / "tok", vocab_size=400)
    command = [
        sys.executable,
        "src/train.py",
        "--preset",
        "tiny",
        "--max-steps",
        "3",
        "--val-every",
        "0",
        "--data-path",
        str(tmp_path / "data"),
        "--tokenizer",
        str(tokenizer),
        "--run-dir",
        str(tmp_path / "run"),
    ]
    result = subprocess.run(command, cwd=FOLDER, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3]


def test_tokenizer_larger_than_the_vocabulary_is_refused(tmp_path):
    tokenizer = make_tokenizer(tmp_path / "tok", vocab_size=600)
    with pytest.raises(DataError, match="has 600 tokens but the model's vocabulary is 512"):
        load_packed("", 64, seed=0, tokenizer=str(tokenizer), vocab_size=512)
