"""The repository's bad-input catalogue (``testbed/bad_input.py``) against this case's own commands, in its
framework venv: the training entry (``src/train.py``) and the data step (``src/prepare_data.py``).

Each bad input ends with exit code 2, one ``error:`` line that names the input, no traceback and nothing
written (no run folder, no dataset). Prints ``bad inputs: N tried, N clean``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from testbed import bad_input
from testbed.bad_input import NUMBERS_AND_ZERO, OUT_INPUTS, TEXTS, VALUES, Command

pytestmark = pytest.mark.framework

CASE = "3.test_cases/pytorch/megatron-lm"
TRAIN = (sys.executable, f"{CASE}/src/train.py", "--max-steps", "6", "--run-dir", "{fresh_out}")
PREPARE = (sys.executable, f"{CASE}/src/prepare_data.py", "--no-progress", "--workers", "1")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A tokenizer and a small dataset, made by the case's own commands (sample_data, prepare_data)."""
    folder = tmp_path_factory.mktemp("data")
    for argv in (
        ["src/sample_data.py", "--output", str(folder)],
        [
            "src/prepare_data.py",
            "--no-progress",
            "--workers",
            "1",
            "--input",
            str(folder / "sample.jsonl"),
            "--tokenizer",
            str(folder / "tokenizer"),
            "--output-prefix",
            str(folder / "corpus"),
        ],
    ):
        subprocess.run(
            [sys.executable, *argv],
            cwd=bad_input.ROOT / CASE,
            check=True,
            capture_output=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    return folder


def commands(data: Path) -> list[Command]:
    corpus = tuple(f"{data}/corpus{suffix}=corpus{suffix}" for suffix in (".bin", ".idx", ".json"))
    tokenizer = str(data / "tokenizer")
    return [
        Command("train --lr", (*TRAIN, "--data-prefix", f"{data}/corpus", "--lr", "{value}"), tuple(VALUES)),
        Command(
            "train --tensor-parallel",
            (*TRAIN, "--data-prefix", f"{data}/corpus", "--tensor-parallel", "{value}"),
            tuple(NUMBERS_AND_ZERO),
        ),
        Command(
            "train --preset", (*TRAIN, "--data-prefix", f"{data}/corpus", "--preset", "{text}"), tuple(TEXTS)
        ),
        Command(
            "train --data-prefix (a bad .idx)",
            (*TRAIN, "--data-prefix", "{tree}/corpus"),
            ("missing file", "a folder", "empty file", "binary bytes"),
            tree=corpus,
            bad_path="corpus.idx",
        ),
        Command(
            "train --data-prefix (a bad .bin)",
            (*TRAIN, "--data-prefix", "{tree}/corpus"),
            ("empty file", "binary bytes"),
            tree=corpus,
            bad_path="corpus.bin",
        ),
        Command(
            "train --data-prefix (a bad .json)",
            (*TRAIN, "--data-prefix", "{tree}/corpus"),
            ("malformed JSON", "JSON list", "non-UTF-8 text"),
            tree=corpus,
            bad_path="corpus.json",
        ),
        Command(
            "prepare_data --input",
            (
                *PREPARE,
                "--tokenizer",
                tokenizer,
                "--output-prefix",
                "{fresh_dir}/corpus",
                "--input",
                "{file}",
            ),
            ("missing file", "a folder", "binary bytes"),  # each bad content: 10 s of imports and a worker
            suffix=".jsonl",
        ),
        Command(
            "prepare_data --input (JSON lines)",
            (
                *PREPARE,
                "--tokenizer",
                tokenizer,
                "--output-prefix",
                "{fresh_dir}/corpus",
                "--input",
                "{jsonl}",
            ),
            ("no text key",),  # the other bad lines: tests/test_data.py
        ),
        Command(
            "prepare_data --tokenizer",
            (
                *PREPARE,
                "--input",
                f"{data}/sample.jsonl",
                "--output-prefix",
                "{fresh_dir}/c",
                "--tokenizer",
                "{dir}",
            ),
            ("missing folder", "a file", "empty folder"),
        ),
        Command(
            "prepare_data --tokenizer (a bad tokenizer.json)",
            (
                *PREPARE,
                "--input",
                f"{data}/sample.jsonl",
                "--output-prefix",
                "{fresh_dir}/c",
                "--tokenizer",
                "{tree}",
            ),
            ("binary bytes",),
            tree=(f"{tokenizer}/tokenizer.json=tokenizer.json",),
            bad_path="tokenizer.json",
        ),
        Command(
            "prepare_data --output-prefix",
            (
                *PREPARE,
                "--input",
                f"{data}/sample.jsonl",
                "--tokenizer",
                tokenizer,
                "--output-prefix",
                "{out}",
            ),
            tuple(OUT_INPUTS),
        ),
        Command(
            "prepare_data --workers",
            (
                *PREPARE[:-2],
                "--input",
                f"{data}/sample.jsonl",
                "--tokenizer",
                tokenizer,
                "--output-prefix",
                "{fresh_dir}/c",
                "--workers",
                "{value}",
            ),
            tuple(NUMBERS_AND_ZERO),
        ),
    ]


def test_every_command_ends_every_bad_input_cleanly(dataset, tmp_path):
    bad_input.check(commands(dataset), tmp_path)
