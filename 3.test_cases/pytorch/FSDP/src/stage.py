#!/usr/bin/env python3
"""Stage a Hugging Face dataset and tokenizer to shared storage once, so training ranks read local files.

    python src/stage.py --dataset allenai/c4 --dataset-config en --max-documents 200000 --out /fsx/data/c4-en
    python src/stage.py --tokenizer meta-llama/Llama-3.1-8B --out /fsx/tokenizers/llama3
    torchrun ... src/train.py --data-path /fsx/data/c4-en --tokenizer /fsx/tokenizers/llama3

Run it on one node (the head node, or a one-task job). Documents are streamed (nothing is downloaded in
full) and written as JSONL shards, each to a temporary name and renamed when complete; a ``STAGED``
marker is written last, so a half-staged folder is never mistaken for a finished one. Needs network
access to the hub and the ``datasets`` package (``pip install datasets``); training itself needs neither.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path

MARKER = "STAGED"


def write_shards(texts: Iterable[str], out: Path, documents_per_shard: int) -> int:
    """Write ``texts`` as ``shard-NNNNN.jsonl`` files atomically; return the number of documents."""
    out.mkdir(parents=True, exist_ok=True)
    count, shard, lines = 0, 0, []

    def flush() -> None:
        nonlocal shard, lines
        tmp = out / f".shard-{shard:05d}.jsonl.tmp"
        tmp.write_text("".join(lines), encoding="utf-8")
        os.replace(tmp, out / f"shard-{shard:05d}.jsonl")
        shard, lines = shard + 1, []

    for text in texts:
        lines.append(json.dumps({"text": text}) + "\n")
        count += 1
        if len(lines) == documents_per_shard:
            flush()
    if lines:
        flush()
    (out / MARKER).write_text(json.dumps({"documents": count, "shards": shard}) + "\n")
    return count


def stream_dataset(name: str, config: str | None, split: str, limit: int) -> Iterable[str]:
    """Texts of a hub dataset, streamed."""
    import datasets  # noqa: PLC0415 - only needed for staging, with network access

    for index, record in enumerate(datasets.load_dataset(name, config, split=split, streaming=True)):
        if index >= limit:
            return
        yield record["text"]


def stage_tokenizer(name: str, out: Path) -> None:
    from transformers import AutoTokenizer  # noqa: PLC0415

    AutoTokenizer.from_pretrained(name).save_pretrained(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", help="hub dataset id, e.g. allenai/c4")
    parser.add_argument("--dataset-config", default=None, help="dataset configuration, e.g. en")
    parser.add_argument("--split", default="train")
    parser.add_argument("--max-documents", type=int, default=100_000)
    parser.add_argument("--documents-per-shard", type=int, default=10_000)
    parser.add_argument("--tokenizer", help="hub tokenizer id, e.g. meta-llama/Llama-3.1-8B")
    parser.add_argument("--out", type=Path, required=True, help="folder on shared storage")
    args = parser.parse_args(argv)
    if not args.dataset and not args.tokenizer:
        parser.error("nothing to stage: give --dataset and/or --tokenizer")
    if args.tokenizer:
        stage_tokenizer(args.tokenizer, args.out)
        print(f"staged tokenizer {args.tokenizer} in {args.out}")
    if args.dataset:
        texts = stream_dataset(args.dataset, args.dataset_config, args.split, args.max_documents)
        count = write_shards(texts, args.out, args.documents_per_shard)
        print(f"staged {count} documents of {args.dataset} in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
