"""The data step (src/prepare_data.py through `make data`) on CPU: a tokenizer trained here (no Hub), a
small corpus from the Python docs, and the output read back the way neuronx-distributed's pretraining
scripts read it (datasets.load_from_disk, default_data_collator). Needs datasets and transformers: the
case's nox session (`nox -s neuronx-distributed`) runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.framework
FOLDER = Path(__file__).resolve().parents[1]
SEQ_LEN = 64


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    """A 400-token BPE tokenizer that adds BOS (as Llama's does), saved as save_pretrained writes it, and
    two inputs: JSON lines and blank-line separated text."""
    from pydoc_data.topics import topics  # noqa: PLC0415 - the nox session has it, the project venv not

    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers  # noqa: PLC0415 - the nox session has it, the project venv not
    from transformers import PreTrainedTokenizerFast  # noqa: PLC0415 - the nox session has it, the project venv not

    root = tmp_path_factory.mktemp("corpus")
    texts = [topics[name] for name in sorted(topics)][:60]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))  # noqa: S106 - a token, not a password
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.train_from_iterator(
        texts, trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"])
    )
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",  # noqa: S106 - special tokens, not passwords
        eos_token="</s>",  # noqa: S106
        unk_token="<unk>",  # noqa: S106
    )
    fast.save_pretrained(root / "tokenizer")
    (root / "docs.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts[:40]))
    (root / "more.txt").write_text("\n\n".join(texts[40:]))
    return {"root": root, "tokenizer": root / "tokenizer", "texts": texts}


def make_data(
    corpus: dict, output: Path, *inputs: str, seq_len: int = SEQ_LEN
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            "data",
            f"VENV={sys.prefix}",
            f"TOKENIZER={corpus['tokenizer']}",
            f"TEXT={' '.join(inputs)}",
            f"SEQ_LEN={seq_len}",
            f"DATA_DIR={output}",
        ],
        cwd=FOLDER,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_blocks_are_the_tokenized_documents_in_order(corpus, tmp_path):
    import datasets  # noqa: PLC0415 - the nox session has it, the project venv not
    from transformers import AutoTokenizer, default_data_collator  # noqa: PLC0415 - the nox session has it, the project venv not

    out = tmp_path / "llama-64"
    root = corpus["root"]
    done = make_data(corpus, out, str(root / "docs.jsonl"), str(root / "more.txt"))
    assert done.returncode == 0, done.stderr
    data = datasets.load_from_disk(str(out))  # what training_utils.create_llama_pretraining_dataset does
    assert data.column_names == ["input_ids", "attention_mask", "labels"]
    assert (data.features["input_ids"].feature.dtype, data.features["labels"].feature.dtype) == (
        "int32",
        "int64",
    )
    tokenizer = AutoTokenizer.from_pretrained(str(corpus["tokenizer"]))
    texts = corpus["texts"]
    documents = texts[:40] + [part.strip() for part in "\n\n".join(texts[40:]).split("\n\n") if part.strip()]
    stream = [i for text in documents for i in tokenizer(text)["input_ids"]]
    assert stream.count(tokenizer.bos_token_id) == len(documents) > len(texts)  # one BOS per document
    assert len(data) == len(stream) // SEQ_LEN and len(data) > 100
    rows = data[:]
    flat = [i for row in rows["input_ids"] for i in row]
    assert flat == stream[: len(data) * SEQ_LEN]  # concatenated in order, the remainder dropped
    assert rows["labels"] == rows["input_ids"] and all(set(m) == {1} for m in rows["attention_mask"])
    assert f"wrote {len(data)} blocks of {SEQ_LEN} tokens from {len(documents)} documents" in done.stdout
    batch = default_data_collator([data[i] for i in range(4)], return_tensors="np")
    assert batch["input_ids"].shape == batch["labels"].shape == (4, SEQ_LEN)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".prepare-")]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "--input {root}/nope.txt does not exist"),
        ("latin1", "is not UTF-8 text"),
        ("badjson", "more.jsonl:2 is not JSON"),
        ("nofield", "has no string field 'text'; set --text-field"),
        ("csv", "unknown kind .csv; use .txt or .jsonl files"),
        ("short", "fewer tokens than one --seq-len block"),
        ("exists", "exists; remove it or choose another folder"),
        ("notokenizer", "has no tokenizer.json or tokenizer_config.json"),
    ],
)
def test_bad_input_is_one_error_line_and_writes_nothing(corpus, tmp_path, setup, message):
    root = tmp_path
    bad = {
        "missing": root / "nope.txt",
        "latin1": root / "latin.txt",
        "badjson": root / "more.jsonl",
        "nofield": root / "fields.jsonl",
        "csv": root / "table.csv",
        "short": root / "short.txt",
        "exists": corpus["root"] / "more.txt",
        "notokenizer": corpus["root"] / "more.txt",
    }[setup]
    (root / "latin.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (root / "more.jsonl").write_text('{"text": "fine"}\n{"text": \n')
    (root / "fields.jsonl").write_text('{"body": "no text field"}\n')
    (root / "table.csv").write_text("a,b\n")
    (root / "short.txt").write_text("a few words")
    out = root / "out"
    if setup == "exists":
        out.mkdir()
    if setup == "notokenizer":
        corpus = {**corpus, "tokenizer": root}
    done = make_data(corpus, out, str(bad))
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode != 0 and len(errors) == 1, done.stderr
    assert message.format(root=root) in errors[0] and "Traceback" not in done.stderr
    assert not [p for p in root.iterdir() if p.name.startswith(".prepare-")]
    if setup != "exists":
        assert not out.exists()
