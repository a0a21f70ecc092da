#!/usr/bin/env python3
"""JSONL -> Megatron indexed dataset (<prefix>.bin / .idx) with a Hugging Face tokenizer from a folder.

    python src/prepare_data.py --input corpus.jsonl --tokenizer /fsx/tokenizers/Llama-3.1-8B \\
        --output-prefix /fsx/data/corpus --workers 16

Each line is a JSON object whose ``--json-key`` (default ``text``) is one document. Documents are
tokenized in ``--workers`` processes, each ends with the tokenizer's end-of-sequence token, and they are
written with megatron-core's own IndexedDatasetBuilder (what Megatron-LM's tools/preprocess_data.py
writes; that script is not part of the megatron-core wheel). ``<prefix>.json`` records the tokenizer's
vocabulary size and end-of-document id for src/train.py. Outputs appear only when complete.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from multiprocessing import Pool
from pathlib import Path

SUFFIXES = (".bin", ".idx", ".json")
_tokenizer = None  # one per worker process


class PrepareError(ValueError):
    """Bad input, with its fix in the message."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="JSONL file, one document per line")
    parser.add_argument(
        "--tokenizer", required=True, help="folder of a Hugging Face tokenizer (tokenizer.json ...)"
    )
    parser.add_argument(
        "--output-prefix", required=True, help="writes <prefix>.bin, <prefix>.idx, <prefix>.json"
    )
    parser.add_argument("--json-key", default="text", help="the field holding the text (default text)")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--chunk-size", type=int, default=64, help="documents per task sent to a worker")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")
    return parser.parse_args(argv)


def load_tokenizer(folder: str):
    from transformers import AutoTokenizer  # noqa: PLC0415 - seconds to import; after validation

    return AutoTokenizer.from_pretrained(folder, local_files_only=True)


def _init_worker(folder: str) -> None:
    global _tokenizer  # noqa: PLW0603 - one tokenizer per worker process
    _tokenizer = load_tokenizer(folder)


def _encode(text: str) -> list[int]:
    return _tokenizer(text, add_special_tokens=False)["input_ids"]


def read_documents(path: Path, key: str):
    """Yield the documents' text; a bad line ends everything with its line number."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PrepareError(
                    f"{path} line {number} is not JSON ({exc.msg}); each line must be an object like "
                    f'{{"{key}": "..."}}'
                ) from None
            if not isinstance(record, dict) or not isinstance(record.get(key), str):
                raise PrepareError(
                    f"{path} line {number} has no string field {key!r}; pass --json-key with the field "
                    "that holds the text"
                )
            yield record[key]


def check_inputs(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    source, folder, prefix = Path(args.input), Path(args.tokenizer), Path(args.output_prefix)
    if source.is_dir():
        raise PrepareError(f"--input {source} is a folder; pass a JSONL file")
    if not source.is_file():
        raise PrepareError(f"--input {source}: no such file; pass a JSONL file")
    if not folder.is_dir() or not any(
        (folder / n).is_file() for n in ("tokenizer.json", "tokenizer_config.json")
    ):
        raise PrepareError(
            f"--tokenizer {folder}: not a Hugging Face tokenizer folder (no tokenizer.json or "
            "tokenizer_config.json); download one, e.g. huggingface-cli download <model> "
            "--include 'tokenizer*' --local-dir <folder>"
        )
    if args.workers < 1 or args.chunk_size < 1:
        raise PrepareError("--workers and --chunk-size must be at least 1")
    if not prefix.name or prefix.name.startswith("."):
        raise PrepareError(f"--output-prefix {prefix}: give a file prefix such as data/corpus")
    if not prefix.parent.is_dir() or not os.access(prefix.parent, os.W_OK):
        raise PrepareError(
            f"--output-prefix {prefix}: {prefix.parent} is not a writable folder; create it first"
        )
    return source, folder, prefix


def prepare(args: argparse.Namespace) -> dict:
    source, folder, prefix = check_inputs(args)
    import numpy  # noqa: PLC0415
    from megatron.core.datasets.indexed_dataset import DType, IndexedDatasetBuilder  # noqa: PLC0415
    from tqdm import tqdm  # noqa: PLC0415

    try:
        tokenizer = load_tokenizer(str(folder))
    except (OSError, ValueError) as exc:
        raise PrepareError(f"--tokenizer {folder}: cannot load it ({str(exc).splitlines()[0]})") from None
    eod = tokenizer.eos_token_id
    if eod is None:
        raise PrepareError(f"--tokenizer {folder}: it has no eos_token; set one in its tokenizer_config.json")
    vocab_size = len(tokenizer)
    dtype = DType.optimal_dtype(vocab_size)
    tmp = prefix.with_name(f".{prefix.name}.tmp")
    builder = IndexedDatasetBuilder(f"{tmp}.bin", dtype=dtype)
    documents = tokens = 0
    start = time.perf_counter()
    try:
        with Pool(args.workers, initializer=_init_worker, initargs=(str(folder),)) as pool:
            encoded = pool.imap(_encode, read_documents(source, args.json_key), chunksize=args.chunk_size)
            bar = tqdm(encoded, unit="doc", disable=args.no_progress, file=sys.stderr)
            for ids in bar:
                ids.append(eod)
                builder.add_document(numpy.array(ids, dtype=dtype), [len(ids)])
                documents, tokens = documents + 1, tokens + len(ids)
                bar.set_postfix(tokens=tokens, refresh=False)
        if documents == 0:
            raise PrepareError(f"--input {source}: no documents (empty file); nothing to write")
        builder.finalize(f"{tmp}.idx")
        info = {
            "tokenizer": folder.name,
            "vocab_size": vocab_size,
            "eod": eod,
            "documents": documents,
            "tokens": tokens,
            "dtype": numpy.dtype(dtype).name,
        }
        Path(f"{tmp}.json").write_text(json.dumps(info, indent=2) + "\n")
        for suffix in SUFFIXES:
            Path(f"{tmp}{suffix}").replace(f"{prefix}{suffix}")
    finally:
        builder.data_file.close()
        for suffix in SUFFIXES:
            Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    seconds = time.perf_counter() - start
    info["seconds"] = round(seconds, 3)
    info["tokens_per_s"] = round(tokens / seconds, 1)
    return info


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        info = prepare(args)
    except (PrepareError, UnicodeDecodeError, OSError) as exc:
        if isinstance(exc, UnicodeDecodeError):
            exc = PrepareError(f"--input {args.input} is not UTF-8 text ({exc.reason}); convert it to UTF-8")
        elif isinstance(exc, OSError):
            exc = PrepareError(
                f"{exc.filename or args.output_prefix}: {exc.strerror}; check the path and space"
            )
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    print(
        f"wrote {args.output_prefix}.bin/.idx: {info['documents']:,} documents, {info['tokens']:,} tokens "
        f"in {info['seconds']:.1f} s ({info['tokens_per_s']:,.0f} tokens/s, {args.workers} workers)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
