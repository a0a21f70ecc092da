"""Data: stage.py tokenizes once into shards the trainer memory-maps; windows honour --seq-len, batches
depend only on the sample counter, bad inputs end in one line and leave nothing behind (all offline)."""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import stage
import torch
from fsdp.data import DataError, EpochPermutation, load_packed
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

FOLDER = Path(__file__).resolve().parents[1]


def topics() -> list[str]:
    from pydoc_data.topics import topics as texts  # noqa: PLC0415

    return [texts[key] for key in sorted(texts)]


def write_corpus(folder: Path) -> list[str]:
    """A .jsonl of the pydoc topics and a non-ASCII .txt; returns the documents in staging order."""
    folder.mkdir(parents=True)
    documents = topics()
    (folder / "a.jsonl").write_text("".join(json.dumps({"text": text}) + "\n" for text in documents))
    (folder / "b.txt").write_text("héllo wörld ✓\n", encoding="utf-8")
    return [*documents, "héllo wörld ✓\n"]


def run_stage(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "src/stage.py", *map(str, args)]
    return subprocess.run(command, cwd=FOLDER, capture_output=True, text=True, timeout=300, check=False)


def staged_tokens(folder: Path) -> np.ndarray:
    index = json.loads((folder / "index.json").read_text())
    dtype = np.dtype(index["dtype"]).newbyteorder("<")
    return np.concatenate([np.fromfile(folder / shard["file"], dtype=dtype) for shard in index["shards"]])


def make_tokenizer(folder: Path, vocab_size: int) -> Path:
    """A byte-level BPE trained here in well under a second, saved like a hub tokenizer."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<eos>"])
    bpe.train_from_iterator(topics()[:200], trainer=trainer)
    hub_tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>")  # noqa: S106 - not a secret
    hub_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def staged_bytes(tmp_path_factory) -> tuple[Path, list[str]]:
    """The test corpus staged with the byte tokenizer, in small shards, by two worker processes."""
    root = tmp_path_factory.mktemp("bytes")
    documents = write_corpus(root / "corpus")
    result = run_stage(
        "--input", root / "corpus", "--out", root / "staged", "--workers", 2, "--shard-tokens", 100_000
    )
    assert result.returncode == 0, result.stderr
    assert "tokens/s" in result.stdout
    return root / "staged", documents


# ------------------------------------------------------------------------------------------- the windows


@pytest.mark.parametrize("seq_len", [32, 128, 300])
def test_windows_honour_the_sequence_length(seq_len):
    data = load_packed("", seq_len, seed=1)
    inputs, targets = data.batch(data.sample_indices(0, 3))
    assert inputs.shape == targets.shape == (3, seq_len)
    assert (inputs[:, 1:] == targets[:, :-1]).all()  # targets are the next tokens
    assert data.val_batch(0, 2)[0].shape == (2, seq_len)
    tokens = np.concatenate([np.append(np.frombuffer(t.encode(), np.uint8), 256) for t in topics()])
    assert data.num_train + data.num_val == len(tokens) // (seq_len + 1)
    assert data.num_val == max(1, int((data.num_train + data.num_val) * 0.05))


def test_global_batches_do_not_depend_on_the_rank_count():
    data = load_packed("", 64, seed=3)
    global_batch = data.sample_indices(40, 8)
    two_ranks = data.sample_indices(40, 4) + data.sample_indices(44, 4)
    assert global_batch == two_ranks and len(set(global_batch)) == 8
    epoch = data.sample_indices(0, data.num_train)
    assert sorted(epoch) == list(range(data.num_train))  # one epoch visits every window once
    assert data.sample_indices(data.num_train, 50) != epoch[:50]  # the next epoch is reshuffled


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 64, 255, 1000, 1024, 1025])
def test_epoch_order_is_a_bijection(n):
    for seed, epoch in [(0, 0), (7, 3)]:
        order = EpochPermutation(n, seed, epoch)
        assert sorted(order(i) for i in range(n)) == list(range(n))
    with pytest.raises(IndexError):
        order(n)


def test_epoch_order_depends_on_seed_and_epoch_only():
    def order(seed, epoch):
        return [EpochPermutation(1000, seed, epoch)(i) for i in range(1000)]

    assert order(0, 0) == order(0, 0)
    assert len({tuple(order(s, e)) for s, e in [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)]}) == 5
    assert order(0, 0) != list(range(1000))
    # A shuffle, not a rotation: neighbours land far apart on average.
    assert np.mean(np.abs(np.diff(order(0, 0)))) > 200


def test_dtype_is_the_narrowest_that_holds_every_id():
    assert stage.token_dtype(257) == stage.token_dtype(1 << 16) == "uint16"
    assert stage.token_dtype((1 << 16) + 1) == stage.token_dtype(128_256) == "uint32"


# ---------------------------------------------------------------------------------------------- staging


def test_staged_bytes_read_back_as_the_tokens(staged_bytes):
    folder, documents = staged_bytes
    index = json.loads((folder / "index.json").read_text())
    expected = np.concatenate([np.append(np.frombuffer(d.encode(), np.uint8), 256) for d in documents])
    assert (index["dtype"], index["vocab_size"], index["eod_id"]) == ("uint16", 257, 256)
    assert index["documents"] == len(documents) and index["tokens"] == len(expected)
    assert [s["file"] for s in index["shards"]] == [f"tokens-{i:05d}.bin" for i in range(5)]
    assert sorted(p.name for p in folder.iterdir()) == ["STAGED", "index.json"] + [
        s["file"] for s in index["shards"]
    ]
    assert (staged_tokens(folder) == expected).all()

    window = 97  # does not divide the 100,000-token shards: windows must stop at each shard's end
    data = load_packed(str(folder), window - 1, seed=0, vocab_size=512)
    assert all(isinstance(s, np.memmap) and not s.flags.writeable for s in data.shards)
    starts = np.cumsum([0] + [s["tokens"] for s in index["shards"]])
    cut = [expected[a:b][: (b - a) // window * window].reshape(-1, window) for a, b in pairwise(starts)]
    got = np.stack([data.window(g) for g in range(data.num_train + data.num_val)])
    assert got.shape == (sum(len(c) for c in cut), window) and (got == np.concatenate(cut)).all()
    inputs, targets = data.batch([5, len(cut[0])])  # the first window of the second shard
    assert inputs.dtype == targets.dtype == torch.int64 and inputs.shape == (2, window - 1)
    assert (inputs[1].numpy() == expected[starts[1] : starts[1] + window - 1]).all()
    assert (targets[0].numpy() == expected[5 * window + 1 : 6 * window]).all()


def test_staging_with_a_local_bpe(tmp_path):
    documents = write_corpus(tmp_path / "corpus")
    tokenizer = make_tokenizer(tmp_path / "tok", vocab_size=400)
    result = run_stage("--input", tmp_path / "corpus", "--tokenizer", tokenizer, "--out", tmp_path / "staged")
    assert result.returncode == 0, result.stderr
    index = json.loads((tmp_path / "staged" / "index.json").read_text())
    hub = PreTrainedTokenizerFast.from_pretrained(
        tmp_path / "staged" / "tokenizer"
    )  # saved beside the tokens
    assert (index["dtype"], index["vocab_size"], index["eod_id"]) == ("uint16", 400, hub.eos_token_id)
    expected = [i for d in documents for i in [*hub.encode(d, add_special_tokens=False), hub.eos_token_id]]
    assert staged_tokens(tmp_path / "staged").tolist() == expected
    assert index["tokenizer"] == {"kind": "huggingface", "source": str(tokenizer), "folder": "tokenizer"}


def test_a_vocabulary_past_65536_is_staged_as_uint32(tmp_path):
    eos = "<eos>"
    words = {f"w{i}": i for i in range(70_000)} | {eos: 70_000}
    word_level = Tokenizer(models.WordLevel(vocab=words, unk_token=eos))
    word_level.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=word_level, eos_token=eos).save_pretrained(tmp_path / "tok")
    (tmp_path / "corpus.txt").write_text("w1 w65535 w65536 w69999")
    result = run_stage(
        "--input", tmp_path / "corpus.txt", "--tokenizer", tmp_path / "tok", "--out", tmp_path / "s"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "s" / "index.json").read_text())["dtype"] == "uint32"
    assert staged_tokens(tmp_path / "s").tolist() == [1, 65535, 65536, 69999, 70_000]


def test_restaging_needs_force_and_replaces_every_shard(tmp_path):
    write_corpus(tmp_path / "corpus")
    assert (
        run_stage(
            "--input", tmp_path / "corpus", "--out", tmp_path / "s", "--shard-tokens", 100_000
        ).returncode
        == 0
    )
    refused = run_stage("--input", tmp_path / "corpus", "--out", tmp_path / "s")
    assert refused.returncode == 2 and "already staged; give --force" in refused.stderr
    forced = run_stage("--input", tmp_path / "corpus" / "b.txt", "--out", tmp_path / "s", "--force")
    assert forced.returncode == 0, forced.stderr
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["STAGED", "index.json", "tokens-00000.bin"]
    assert bytes(staged_tokens(tmp_path / "s")[:-1].astype(np.uint8)).decode() == "héllo wörld ✓\n"


def bad_input(tmp_path: Path, case: str) -> list[str]:
    """Arguments for one bad-input case, with its files created under ``tmp_path``."""
    good = tmp_path / "good.txt"
    good.write_text("some text")
    jsonl = tmp_path / "bad.jsonl"
    lines = {
        "malformed JSON": b'{"text": "a"}\n{"text": "b"}\n{"text": \n',
        "no text field": b'{"content": "a"}\n',
        "non-string text": b'{"text": "a"}\n{"text": 42}\n',
        "non-UTF-8 line": b'{"text": "a"}\n{"text": "\xff\xfe"}\n',
    }
    if case in lines:
        big = tmp_path / "a-big.jsonl"  # more than one batch, so shards are written before the failure
        big.write_text("".join(json.dumps({"text": t}) + "\n" for t in topics() * 3))
        jsonl.write_bytes(lines[case])
        return ["--input", big, jsonl, "--workers", "2", "--shard-tokens", "100000"]
    files = {"non-UTF-8 text": b"caf\xe9 au lait", "binary file": b"\x7fELF\x00\x00\x01", "empty file": b""}
    if case in files:
        (tmp_path / "in.txt").write_bytes(files[case])
        return ["--input", tmp_path / "in.txt"]
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.csv").write_text("a,b")
    (tmp_path / "tok").mkdir()
    return {
        "missing file": ["--input", tmp_path / "missing.txt"],
        "folder without text": ["--input", tmp_path / "folder"],
        "other suffix": ["--input", tmp_path / "folder" / "notes.csv"],
        "out is a file": ["--input", good, "--out", good],
        "out not writable": ["--input", good, "--out", good / "sub"],
        "out holds other files": ["--input", good, "--out", tmp_path],
        "zero workers": ["--input", good, "--workers", "0"],
        "negative workers": ["--input", good, "--workers", "-3"],
        "tokenizer without tokenizer.json": ["--input", good, "--tokenizer", tmp_path / "tok"],
    }[case]


BAD_INPUTS = {
    "missing file": "missing.txt does not exist",
    "folder without text": "folder has no .txt or .jsonl files",
    "other suffix": "notes.csv is neither .txt nor .jsonl",
    "empty file": "in.txt holds no text",
    "non-UTF-8 text": "in.txt is not UTF-8 (byte 3); convert it",
    "binary file": "in.txt holds NUL bytes",
    "malformed JSON": "bad.jsonl line 3 is not valid JSON",
    "no text field": "bad.jsonl line 1 has no 'text' field",
    "non-string text": "bad.jsonl line 2 has a int 'text'",
    "non-UTF-8 line": "bad.jsonl line 2 is not UTF-8",
    "out is a file": "good.txt is a file; give a folder",
    "out not writable": "sub is not writable",
    "out holds other files": "holds other files (folder, good.txt, tok); give a new or empty folder",
    "zero workers": "--workers=0 must be at least 1",
    "negative workers": "--workers=-3 must be at least 1",
    "tokenizer without tokenizer.json": "tok has no tokenizer.json",
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_line_and_leaves_nothing(tmp_path, case):
    args = bad_input(tmp_path, case)
    if "--out" not in args:
        args += ["--out", tmp_path / "out"]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = run_stage(*args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert BAD_INPUTS[case] in result.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written


# -------------------------------------------------------------------------------------------- the trainer


def test_trainer_trains_from_a_staged_folder(tmp_path):
    write_corpus(tmp_path / "corpus")
    tokenizer = make_tokenizer(tmp_path / "tok", vocab_size=400)
    staged = tmp_path / "staged"
    assert (
        run_stage("--input", tmp_path / "corpus", "--tokenizer", tokenizer, "--out", staged).returncode == 0
    )
    command = [sys.executable, "src/train.py", "--preset", "tiny", "--max-steps", "3", "--val-every", "0"]
    command += ["--data-path", str(staged), "--run-dir", str(tmp_path / "run")]
    result = subprocess.run(command, cwd=FOLDER, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3]


def test_raw_text_is_refused_with_the_staging_command(tmp_path):
    write_corpus(tmp_path / "corpus")
    for raw in (tmp_path / "corpus", tmp_path / "corpus" / "a.jsonl"):
        with pytest.raises(DataError, match="raw text; tokenize it once first") as error:
            load_packed(str(raw), 64, seed=0)
        assert f"python src/stage.py --input {raw} --out <folder>" in str(error.value)


def test_unfinished_or_damaged_staging_is_refused(staged_bytes, tmp_path):
    folder, _ = staged_bytes
    copy = tmp_path / "copy"
    copy.mkdir()
    for item in folder.iterdir():
        (copy / item.name).write_bytes(item.read_bytes())
    (copy / "STAGED").unlink()
    with pytest.raises(DataError, match="no STAGED marker: its staging did not finish"):
        load_packed(str(copy), 64, seed=0)
    (copy / "STAGED").touch()
    (copy / "tokens-00002.bin").write_bytes(b"\x00\x01")
    with pytest.raises(DataError, match=r"tokens-00002\.bin is 2 bytes, index\.json says 200000"):
        load_packed(str(copy), 64, seed=0)


def test_too_small_corpus_is_a_clear_error(tmp_path):
    (tmp_path / "a.txt").write_text("short")
    assert run_stage("--input", tmp_path / "a.txt", "--out", tmp_path / "s").returncode == 0
    with pytest.raises(DataError, match="too few for two windows of --seq-len 128"):
        load_packed(str(tmp_path / "s"), 128, seed=0)


def test_tokenizer_larger_than_the_vocabulary_is_refused(tmp_path, staged_bytes):
    tokenizer = make_tokenizer(tmp_path / "tok", vocab_size=600)
    with pytest.raises(DataError, match="has 600 tokens but the model's vocabulary is 512"):
        load_packed("", 64, seed=0, tokenizer=str(tokenizer), vocab_size=512)
    with pytest.raises(
        DataError, match=r"staged with bytes\) has 257 tokens but the model's vocabulary is 200"
    ):
        load_packed(str(staged_bytes[0]), 64, seed=0, vocab_size=200)
    with pytest.raises(DataError, match=r"is not the one --data-path .* was staged with"):
        load_packed(str(staged_bytes[0]), 64, seed=0, tokenizer=str(tokenizer))
