"""The repository's bad-input catalogue (``testbed/bad_input.py``) against this case's data step
(``src/prepare_data.py``, what ``make data`` runs), in its framework venv.

Each bad input ends with exit code 2, one ``error:`` line that names the input, no traceback and no
datasets folder written. Prints ``bad inputs: N tried, N clean``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from testbed import bad_input
from testbed.bad_input import ALL_FILES, JSONL_INPUTS, NUMBERS_AND_ZERO, OUT_INPUTS, Command

pytestmark = pytest.mark.framework

PREPARE = (sys.executable, "3.test_cases/pytorch/neuronx-distributed/src/prepare_data.py")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A 300-token BPE tokenizer trained here (no Hub) and one good JSON-lines input."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers  # noqa: PLC0415 - the nox session has it
    from transformers import PreTrainedTokenizerFast  # noqa: PLC0415 - the nox session has it

    folder = tmp_path_factory.mktemp("corpus")
    texts = [f"document {n}: the quick brown fox jumps over the lazy dog" for n in range(50)]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))  # noqa: S106 - a token, not a password
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.train_from_iterator(
        texts, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "</s>"])
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="</s>", unk_token="<unk>")  # noqa: S106
    fast.save_pretrained(folder / "tokenizer")
    (folder / "docs.jsonl").write_text("".join(f'{{"text": "{t}"}}\n' for t in texts))
    return folder


def commands(corpus: Path) -> list[Command]:
    tokenizer, docs = str(corpus / "tokenizer"), str(corpus / "docs.jsonl")
    good = ("--tokenizer", tokenizer, "--seq-len", "16", "--output", "{fresh_out}")
    return [
        Command("prepare_data --input", (*PREPARE, *good, "--input", "{file}"), ALL_FILES, suffix=".jsonl"),
        Command(
            "prepare_data --input (.txt)",
            (*PREPARE, *good, "--input", "{file}"),
            ("empty file", "binary bytes", "non-UTF-8 text"),
            suffix=".txt",
        ),
        Command(
            "prepare_data --input (.csv)",
            (*PREPARE, *good, "--input", "{file}"),
            ("Markdown",),
            suffix=".csv",
        ),
        Command(
            "prepare_data --input (JSON lines)", (*PREPARE, *good, "--input", "{jsonl}"), tuple(JSONL_INPUTS)
        ),
        Command(
            "prepare_data --tokenizer",
            (*PREPARE, "--input", docs, "--seq-len", "16", "--output", "{fresh_out}", "--tokenizer", "{dir}"),
            ("missing folder", "a file", "empty folder"),
        ),
        Command(
            "prepare_data --tokenizer (a bad tokenizer.json)",
            (
                *PREPARE,
                "--input",
                docs,
                "--seq-len",
                "16",
                "--output",
                "{fresh_out}",
                "--tokenizer",
                "{tree}",
            ),
            ("empty file", "binary bytes", "malformed JSON", "JSON list"),
            tree=(f"{tokenizer}/tokenizer.json=tokenizer.json",),
            bad_path="tokenizer.json",
        ),
        Command(
            "prepare_data --seq-len",
            (
                *PREPARE,
                "--input",
                docs,
                "--tokenizer",
                tokenizer,
                "--output",
                "{fresh_out}",
                "--seq-len",
                "{value}",
            ),
            tuple(NUMBERS_AND_ZERO),
        ),
        Command(
            "prepare_data --output",
            (*PREPARE, "--input", docs, "--tokenizer", tokenizer, "--seq-len", "16", "--output", "{out}"),
            ("a folder", *OUT_INPUTS),
        ),
        Command(
            "prepare_data --text-field",
            (*PREPARE, *good, "--input", docs, "--text-field", "{text}"),
            ("empty", "newline", "quotes"),
        ),
    ]


def test_every_command_ends_every_bad_input_cleanly(corpus, tmp_path):
    bad_input.check(commands(corpus), tmp_path)
