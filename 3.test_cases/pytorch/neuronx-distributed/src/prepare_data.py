#!/usr/bin/env python3
"""Tokenize text and pack it into fixed-length blocks, in the format neuronx-distributed's Llama
pretraining scripts read: a Hugging Face ``datasets`` folder (``save_to_disk``) with ``input_ids``,
``attention_mask`` and ``labels`` columns, every row ``--seq-len`` tokens, labels equal to the inputs
(the scripts shift them). That is what the examples' ``get_dataset.py`` writes (neuronx-distributed
v2.28.0, examples/training/llama), from your own files instead of a Hub download:

    python3 src/prepare_data.py --tokenizer /fsx/tokenizers/llama3 --input corpus/*.jsonl \\
        --seq-len 8192 --output /fsx/data/llama3-8k

Inputs: ``.jsonl`` files (one JSON object per line, the document in ``--text-field``, default ``text``)
or ``.txt`` files (documents separated by blank lines). Documents are tokenized with the tokenizer's own
special tokens (Llama adds BOS), concatenated and cut into blocks; the remainder that does not fill a
block is dropped. The tokenizer folder is a local one (``tokenizer.json``/``tokenizer_config.json``, as
``save_pretrained`` writes it): nothing is downloaded. The output appears only when complete.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path


class DataError(ValueError):
    """Bad input; the message names it and the fix."""


def documents(path: Path, text_field: str) -> Iterator[str]:
    """The documents of one input file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(
            f"--input {path} does not exist; pass text (.txt) or JSON lines (.jsonl) files"
        ) from None
    except IsADirectoryError:
        raise DataError(f"--input {path} is a folder; pass the files in it (e.g. {path}/*.jsonl)") from None
    except UnicodeDecodeError:
        raise DataError(
            f"--input {path} is not UTF-8 text; convert it (iconv -t UTF-8) or leave it out"
        ) from None
    if path.suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"--input {path}:{number} is not JSON ({exc.msg}); one object per line"
                ) from None
            if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
                raise DataError(
                    f"--input {path}:{number} has no string field {text_field!r}; set --text-field"
                )
            yield record[text_field]
    elif path.suffix == ".txt":
        yield from (part.strip() for part in text.split("\n\n") if part.strip())
    else:
        raise DataError(f"--input {path}: unknown kind {path.suffix or '(none)'}; use .txt or .jsonl files")


def blocks(token_lists: Iterator[list[int]], seq_len: int) -> Iterator[list[int]]:
    """Concatenate the token lists and cut them into ``seq_len`` blocks (the remainder is dropped)."""
    buffer: list[int] = []
    for tokens in token_lists:
        buffer.extend(tokens)
        while len(buffer) >= seq_len:
            yield buffer[:seq_len]
            del buffer[:seq_len]


def load_tokenizer(folder: Path):
    if not (folder / "tokenizer.json").is_file() and not (folder / "tokenizer_config.json").is_file():
        raise DataError(
            f"--tokenizer {folder} has no tokenizer.json or tokenizer_config.json; pass the folder a "
            "tokenizer's save_pretrained wrote (e.g. the model's tokenizer files from its Hub page)"
        )
    from transformers import AutoTokenizer  # noqa: PLC0415 - import after the cheap checks

    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except Exception as exc:
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise DataError(
            f"--tokenizer {folder}: cannot load it ({why}); pass a folder a tokenizer's save_pretrained wrote"
        ) from None


def write(rows: Iterator[list[int]], output: Path) -> int:
    """Write the rows as a datasets folder at ``output`` (complete or not at all); the row count."""
    import datasets  # noqa: PLC0415

    datasets.disable_progress_bars()
    features = datasets.Features(
        {
            "input_ids": datasets.Sequence(datasets.Value("int32")),
            "attention_mask": datasets.Sequence(datasets.Value("int8")),
            "labels": datasets.Sequence(datasets.Value("int64")),
        }
    )

    from datasets.arrow_writer import ArrowWriter  # noqa: PLC0415 - streams rows to one Arrow file

    with tempfile.TemporaryDirectory(prefix=".prepare-", dir=output.parent) as scratch:
        arrow = Path(scratch) / "rows.arrow"
        with ArrowWriter(features=features, path=str(arrow)) as writer:
            for row in rows:
                writer.write({"input_ids": row, "attention_mask": [1] * len(row), "labels": row})
            count, _ = writer.finalize()
        if count == 0:
            raise DataError(
                "the inputs hold fewer tokens than one --seq-len block; add text or lower --seq-len"
            )
        staged = Path(scratch) / "dataset"
        dataset = datasets.Dataset.from_file(str(arrow))
        dataset.save_to_disk(str(staged))
        del dataset
        staged.rename(output)
    return count


def prepare(options: argparse.Namespace) -> str:
    if options.seq_len < 2:
        raise DataError(f"--seq-len {options.seq_len}: a block needs at least 2 tokens (8192 for Llama 3)")
    output = Path(options.output)
    if output.exists():
        raise DataError(f"--output {output} exists; remove it or choose another folder")
    if not output.parent.is_dir():
        raise DataError(f"--output {output}: the folder {output.parent} does not exist; create it first")
    for path in map(Path, options.input):  # the cheap checks before the tokenizer loads
        if not path.is_file():
            what = "is a folder; pass the files in it" if path.is_dir() else "does not exist"
            raise DataError(f"--input {path} {what}; pass text (.txt) or JSON lines (.jsonl) files")
        if path.suffix not in (".txt", ".jsonl"):
            raise DataError(
                f"--input {path}: unknown kind {path.suffix or '(none)'}; use .txt or .jsonl files"
            )
    tokenizer = load_tokenizer(Path(options.tokenizer))
    counts = {"documents": 0, "tokens": 0}

    def tokenized() -> Iterator[list[int]]:
        for path in options.input:
            for text in documents(Path(path), options.text_field):
                ids = tokenizer(text)["input_ids"]
                counts["documents"] += 1
                counts["tokens"] += len(ids)
                yield ids

    try:
        rows = write(blocks(tokenized(), options.seq_len), output)
    except PermissionError as exc:
        raise DataError(
            f"--output {output}: cannot write there ({exc.strerror}); choose a writable folder"
        ) from None
    return (
        f"wrote {rows} blocks of {options.seq_len} tokens from {counts['documents']} documents "
        f"({counts['tokens']} tokens) to {output}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", required=True, help="local tokenizer folder (save_pretrained layout)")
    parser.add_argument("--input", required=True, nargs="+", help=".txt or .jsonl files")
    parser.add_argument("--seq-len", type=int, required=True, help="tokens per block (the training seq_len)")
    parser.add_argument("--output", required=True, help="the datasets folder to write (must not exist)")
    parser.add_argument("--text-field", default="text", help="the document field of .jsonl records")
    options = parser.parse_args(argv)
    try:
        print(prepare(options))
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
