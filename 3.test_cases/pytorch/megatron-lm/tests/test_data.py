"""Data preparation: JSONL -> tokens -> .bin/.idx read back through megatron-core gives the text back
exactly; GPTDataset samples come from it; bad input ends in one line with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.framework,
    # megatron-core says so at import on every machine without TE/Apex (this one): not a finding.
    pytest.mark.filterwarnings("ignore:Transformer Engine and Apex are not installed:UserWarning"),
]

DOCUMENTS = [
    "Megatron splits each layer across GPUs.",
    "  Leading spaces, tabs\tand a newline\nstay as they were. ",
    "Ünïcödé, emoji 🚀 and CJK 漢字 are bytes to a byte-level BPE.",
    *(f"document {i}: " + "the quick brown fox jumps over the lazy dog " * (i % 5 + 1) for i in range(40)),
]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    """A 300-token byte-level BPE made here (no Hub), saved as a Hugging Face tokenizer folder."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: PLC0415
    from transformers import PreTrainedTokenizerFast  # noqa: PLC0415

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<eos>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(DOCUMENTS, trainer)
    folder = tmp_path_factory.mktemp("tokenizer")
    eos = "<eos>"  # the end-of-document token prepare_data appends
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=eos).save_pretrained(folder)
    return folder


def write_jsonl(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return path


def prepare(*args: str) -> int:
    from prepare_data import main  # noqa: PLC0415

    return main([*args, "--workers", "2", "--no-progress"])


def test_round_trip_is_exact_and_gpt_dataset_reads_it(tmp_path, tokenizer_dir, capsys):
    from megatron.core.datasets.indexed_dataset import IndexedDataset  # noqa: PLC0415
    from transformers import AutoTokenizer  # noqa: PLC0415

    source = write_jsonl(tmp_path / "corpus.jsonl", DOCUMENTS)
    prefix = tmp_path / "out" / "corpus"
    prefix.parent.mkdir()
    assert (
        prepare("--input", str(source), "--tokenizer", str(tokenizer_dir), "--output-prefix", str(prefix))
        == 0
    )
    out = capsys.readouterr().out
    assert "43 documents" in out and "tokens/s" in out
    info = json.loads(Path(f"{prefix}.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    assert info["vocab_size"] == len(tokenizer) == 300 and info["eod"] == tokenizer.eos_token_id
    dataset = IndexedDataset(str(prefix))
    assert len(dataset) == len(DOCUMENTS) and dataset.document_indices.tolist() == list(
        range(len(DOCUMENTS) + 1)
    )
    for i, text in enumerate(DOCUMENTS):
        ids = dataset[i].tolist()
        assert ids[-1] == info["eod"]
        assert tokenizer.decode(ids[:-1]) == text
    assert sum(len(dataset[i]) for i in range(len(dataset))) == info["tokens"]
    assert sorted(p.name for p in prefix.parent.iterdir()) == ["corpus.bin", "corpus.idx", "corpus.json"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"text": "ok"}\n{"text": "cut', "line 2 is not JSON"),
        ('{"body": "no text field"}', "line 1 has no string field 'text'; pass --json-key"),
    ],
)
def test_a_bad_line_is_one_error_and_nothing_is_written(tmp_path, tokenizer_dir, capsys, line, message):
    source = tmp_path / "bad.jsonl"
    source.write_text(line + "\n", encoding="utf-8")
    code = prepare(
        "--input", str(source), "--tokenizer", str(tokenizer_dir), "--output-prefix", str(tmp_path / "x")
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]


def test_bad_paths_are_named_with_the_fix(tmp_path, tokenizer_dir, capsys):
    source = write_jsonl(tmp_path / "c.jsonl", ["x"])
    assert prepare("--input", str(tmp_path / "missing.jsonl"), "--tokenizer", str(tokenizer_dir),
                   "--output-prefix", str(tmp_path / "o")) == 2  # fmt: skip
    assert "missing.jsonl: no such file" in capsys.readouterr().err
    assert (
        prepare("--input", str(source), "--tokenizer", str(tmp_path), "--output-prefix", str(tmp_path / "o"))
        == 2
    )
    assert "not a Hugging Face tokenizer folder" in capsys.readouterr().err
    assert prepare("--input", str(source), "--tokenizer", str(tokenizer_dir),
                   "--output-prefix", str(tmp_path / "no" / "such" / "o")) == 2  # fmt: skip
    assert "is not a writable folder; create it first" in capsys.readouterr().err
    (tmp_path / "latin1.jsonl").write_bytes(b'{"text": "caf\xe9"}\n')
    assert prepare("--input", str(tmp_path / "latin1.jsonl"), "--tokenizer", str(tokenizer_dir),
                   "--output-prefix", str(tmp_path / "o")) == 2  # fmt: skip
    assert "is not UTF-8 text" in capsys.readouterr().err
    (tmp_path / "empty.jsonl").write_text("")
    for source, message in (
        (tmp_path, "is a folder; pass a JSONL file"),
        (tmp_path / "empty.jsonl", "no documents"),
    ):
        assert prepare("--input", str(source), "--tokenizer", str(tokenizer_dir),
                       "--output-prefix", str(tmp_path / "o")) == 2  # fmt: skip
        assert message in capsys.readouterr().err
    assert not list(tmp_path.glob("o.*")) and not list(tmp_path.glob(".o*"))
