#!/usr/bin/env python3
"""Tokenize a corpus once into memory-mappable token shards, so training ranks never tokenize.

    python src/stage.py --input corpus/ --out /fsx/data/corpus-bytes                # UTF-8 bytes
    python src/stage.py --input corpus/ --tokenizer /fsx/tokenizers/llama3 --out /fsx/data/corpus-llama3
    python src/stage.py --dataset allenai/c4 --dataset-config en --max-documents 200000 \\
        --tokenizer meta-llama/Llama-3.1-8B --out /fsx/data/c4-en-llama3
    python src/stage.py --tokenizer meta-llama/Llama-3.1-8B --out /fsx/tokenizers/llama3   # tokenizer only
    torchrun ... src/train.py --data-path /fsx/data/c4-en-llama3

Inputs: ``.txt`` files (one document each), ``.jsonl`` files (a ``text`` field per line) or folders of
them; or a hub dataset, streamed (needs network and ``pip install datasets``). ``--tokenizer`` is
``bytes`` (UTF-8 bytes 0-255 and end-of-document 256, no download), a local Hugging Face tokenizer folder
or a hub id; it is saved into ``<out>/tokenizer/`` so the run can use the very same one offline.

Output: ``tokens-00000.bin``... (raw little-endian uint16 when the vocabulary fits, else uint32; every
document followed by the end-of-document id), ``index.json`` (dtype, vocabulary, per-shard token counts)
and a ``STAGED`` marker. Everything is written under ``<out>/.partial/`` and moved into place at the end,
``index.json`` and then ``STAGED`` last, so a half-staged folder is never mistaken for a finished one and
a failed run leaves nothing behind. A finished folder is only restaged with ``--force``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fsdp.tokens import BYTE_EOD, BYTE_VOCAB, FORMAT_VERSION, INDEX, MARKER, SHARD_PREFIX, byte_encoder

# The format, read by fsdp/data.py (kept in step by tests/test_data.py's round trip).
PARTIAL, TOKENIZER_DIR = ".partial", "tokenizer"
BATCH_CHARS = 1 << 20  # text per task sent to a worker: large enough to amortise the pickling


class StageError(Exception):
    """Bad input or output: one line that names it and the fix."""


def token_dtype(vocab_size: int) -> str:
    """The narrowest unsigned dtype for ids ``0 .. vocab_size - 1``: half the disk and page cache."""
    if vocab_size <= 1 << 16:
        return "uint16"
    if vocab_size <= 1 << 32:
        return "uint32"
    raise StageError(f"a vocabulary of {vocab_size} tokens does not fit in uint32 ids")


# ---------------------------------------------------------------------------------------------- tokenizers


@dataclass(frozen=True)
class TokenizerSpec:
    """What a worker needs to rebuild the tokenizer, and what index.json records about it."""

    kind: str  # "bytes" or "huggingface"
    source: str
    vocab_size: int
    eod_id: int
    backend_json: str = ""  # the fast tokenizer serialised: workers rebuild it without transformers

    def describe(self) -> dict:
        folder = TOKENIZER_DIR if self.kind == "huggingface" else None
        return {"kind": self.kind, "source": self.source, "folder": folder}


def load_tokenizer(name: str, save_to: Path | None) -> TokenizerSpec:
    """``bytes``, a local tokenizer folder or a hub id; a Hugging Face one is saved to ``save_to``."""
    if name == "bytes":
        return TokenizerSpec("bytes", "bytes", BYTE_VOCAB, BYTE_EOD)
    from transformers import AutoTokenizer  # noqa: PLC0415 - seconds to import, only for real tokenizers

    try:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=Path(name).is_dir())
    except (OSError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StageError(
            f"--tokenizer {name}: cannot load it ({first_line}); give a local folder with tokenizer.json, "
            "a hub id (needs network), or bytes"
        ) from None
    if not tokenizer.is_fast or tokenizer.eos_token_id is None:
        problem = "is not a fast tokenizer" if not tokenizer.is_fast else "has no end-of-sequence token"
        raise StageError(f"--tokenizer {name} {problem}; give a tokenizer.json-based one with an eos token")
    if save_to is not None:
        tokenizer.save_pretrained(save_to)
    backend = tokenizer.backend_tokenizer
    vocab_size = max(backend.get_vocab(with_added_tokens=True).values()) + 1
    return TokenizerSpec("huggingface", name, vocab_size, tokenizer.eos_token_id, backend.to_str())


def make_encoder(spec: TokenizerSpec) -> Callable[[list[str]], np.ndarray]:
    """A function from a batch of documents to their ids, each document ended by the eod id."""
    if spec.kind == "bytes":
        return byte_encoder
    from tokenizers import Tokenizer  # noqa: PLC0415

    backend = Tokenizer.from_str(spec.backend_json)
    dtype = np.dtype(token_dtype(spec.vocab_size))
    eod = np.array([spec.eod_id], dtype=dtype)

    def encode(texts: list[str]) -> np.ndarray:
        pieces = []
        for encoding in backend.encode_batch_fast(texts, add_special_tokens=False):
            pieces += [np.asarray(encoding.ids, dtype=dtype), eod]
        return np.concatenate(pieces)

    return encode


_worker_encoder: Callable[[list[str]], np.ndarray] | None = None


def _init_worker(spec: TokenizerSpec) -> None:
    global _worker_encoder  # noqa: PLW0603 - one encoder per worker process, built once
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # the processes are the parallelism
    _worker_encoder = make_encoder(spec)


def _encode_in_worker(texts: list[str]) -> np.ndarray:
    return _worker_encoder(texts)


# ------------------------------------------------------------------------------------------------- inputs


def input_files(paths: list[Path]) -> list[Path]:
    """The ``.txt`` / ``.jsonl`` files named or found (recursively, sorted) in the folders named."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in {".txt", ".jsonl"} and p.is_file())
            if not found:
                raise StageError(f"--input {path} has no .txt or .jsonl files; give a folder that does")
            files += found
        elif path.is_file():
            if path.suffix not in {".txt", ".jsonl"}:
                raise StageError(f"--input {path} is neither .txt nor .jsonl; convert it to one of them")
            files.append(path)
        else:
            raise StageError(f"--input {path} does not exist; check the path")
    return files


def _decode(raw: bytes, where: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StageError(
            f"{where} is not UTF-8 (byte {exc.start}); convert it (iconv -t UTF-8) or remove it"
        ) from None
    if "\x00" in text:
        raise StageError(f"{where} holds NUL bytes, so it looks binary; remove it from the inputs")
    return text


def _jsonl_text(raw: bytes, where: str) -> str:
    try:
        record = json.loads(_decode(raw, where))
    except json.JSONDecodeError as exc:
        raise StageError(f"{where} is not valid JSON ({exc.msg}); fix or remove the line") from None
    text = record.get("text") if isinstance(record, dict) else None
    if not isinstance(text, str):
        found = "has no 'text' field" if text is None else f"has a {type(text).__name__} 'text'"
        raise StageError(f"{where} {found}; every line needs a string 'text' field")
    return text


def file_documents(files: list[Path], advance: Callable[[int], None]) -> Iterator[str]:
    """Documents of the files in order, validated as they are read; ``advance`` gets the bytes read."""
    for file in files:
        if file.suffix == ".txt":
            raw = file.read_bytes()
            yield _decode(raw, str(file))
            advance(len(raw))
            continue
        with file.open("rb") as lines:
            for number, raw in enumerate(lines, 1):
                if raw.strip():
                    yield _jsonl_text(raw, f"{file} line {number}")
                advance(len(raw))


def hub_documents(name: str, config: str | None, split: str, advance: Callable[[int], None]) -> Iterator[str]:
    """Texts of a hub dataset, streamed (nothing downloaded in full)."""
    import datasets  # noqa: PLC0415 - only needed for hub staging, with network access

    for record in datasets.load_dataset(name, config, split=split, streaming=True):
        yield record["text"]
        advance(1)


def batches(texts: Iterable[str], limit: int | None, max_chars: int = BATCH_CHARS) -> Iterator[list[str]]:
    """Non-empty documents (at most ``limit``) grouped into batches of about ``max_chars`` characters."""
    batch, chars, count = [], 0, 0
    for text in texts:
        if limit is not None and count >= limit:
            break
        if not text:
            continue
        batch.append(text)
        chars, count = chars + len(text), count + 1
        if chars >= max_chars:
            yield batch
            batch, chars = [], 0
    if batch:
        yield batch


def encoded_batches(
    spec: TokenizerSpec, workers: int, texts: Iterable[list[str]]
) -> Iterator[tuple[int, np.ndarray]]:
    """(documents, tokens) of each batch, in input order; at most ``2 * workers`` batches in flight."""
    if workers == 1:
        encode = make_encoder(spec)
        yield from ((len(batch), encode(batch)) for batch in texts)
        return
    with multiprocessing.Pool(workers, initializer=_init_worker, initargs=(spec,)) as pool:
        pending: deque = deque()
        for batch in texts:  # not pool.imap: its feeder thread would read the whole corpus ahead
            pending.append((len(batch), pool.apply_async(_encode_in_worker, (batch,))))
            if len(pending) >= 2 * workers:
                count, result = pending.popleft()
                yield count, result.get()
        for count, result in pending:
            yield count, result.get()


# ------------------------------------------------------------------------------------------------- output


class ShardWriter:
    """Appends token arrays to ``tokens-NNNNN.bin`` files of ``shard_tokens`` tokens each."""

    def __init__(self, folder: Path, dtype: str, shard_tokens: int) -> None:
        self.folder, self.dtype, self.shard_tokens = folder, np.dtype(dtype).newbyteorder("<"), shard_tokens
        self.shards: list[dict] = []
        self._file = None

    def write(self, tokens: np.ndarray) -> None:
        tokens = tokens.astype(self.dtype, copy=False)
        while len(tokens):
            if self._file is None or self.shards[-1]["tokens"] == self.shard_tokens:
                self._next_shard()
            room = self.shard_tokens - self.shards[-1]["tokens"]
            tokens[:room].tofile(self._file)
            self.shards[-1]["tokens"] += len(tokens[:room])
            tokens = tokens[room:]

    def _next_shard(self) -> None:
        self.close()
        name = f"{SHARD_PREFIX}{len(self.shards):05d}.bin"
        self._file = (self.folder / name).open("wb")
        self.shards.append({"file": name, "tokens": 0})

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class Progress:
    """A tqdm bar on a terminal; elsewhere (Slurm logs) a plain line every 30 s."""

    def __init__(self, total: int | None, unit: str) -> None:
        self.bar, self.done, self.unit = None, 0, unit
        self.started = self.last_line = time.monotonic()
        if sys.stderr.isatty():
            try:
                from tqdm import tqdm  # noqa: PLC0415 - optional, installed with huggingface_hub

                self.bar = tqdm(total=total, unit=unit, unit_scale=True, file=sys.stderr)
            except ImportError:
                pass

    def advance(self, amount: int) -> None:
        self.done += amount
        if self.bar is not None:
            self.bar.update(amount)
        elif time.monotonic() - self.last_line > 30:
            self.last_line = time.monotonic()
            rate = self.done / (self.last_line - self.started)
            print(f"staging: {self.done:,} {self.unit} read, {rate:,.0f} {self.unit}/s", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def prepare_out(out: Path, force: bool) -> tuple[Path, bool]:
    """Check ``--out`` and create ``<out>/.partial``; returns it and whether ``out`` was created here."""
    if out.exists() and not out.is_dir():
        raise StageError(f"--out {out} is a file; give a folder (new or empty)")
    if (out / MARKER).exists() and not force:
        raise StageError(f"--out {out} is already staged; give --force to restage it, or another --out")
    ours = {INDEX, MARKER, PARTIAL, TOKENIZER_DIR}
    foreign = sorted(
        p.name for p in (out.iterdir() if out.is_dir() else []) if p.name not in ours and not _is_shard(p)
    )
    if foreign:
        raise StageError(
            f"--out {out} holds other files ({', '.join(foreign[:3])}); give a new or empty folder"
        )
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(out / PARTIAL, ignore_errors=True)  # left by a killed run
        (out / PARTIAL).mkdir()
    except OSError as exc:
        raise StageError(
            f"--out {out} is not writable ({exc.strerror}); give a folder you can write"
        ) from None
    return out / PARTIAL, created


def _is_shard(path: Path) -> bool:
    return path.name.startswith(SHARD_PREFIX) and path.suffix == ".bin"


def publish(partial: Path, out: Path, index: dict) -> None:
    """Replace what ``out`` held (marker first) with the new shards, then index.json, then STAGED."""
    (out / MARKER).unlink(missing_ok=True)
    (out / INDEX).unlink(missing_ok=True)
    for old in out.iterdir():
        if _is_shard(old):
            old.unlink()
    shutil.rmtree(out / TOKENIZER_DIR, ignore_errors=True)
    for item in partial.iterdir():
        os.replace(item, out / item.name)
    (out / f"{INDEX}.tmp").write_text(json.dumps(index, indent=1) + "\n")
    os.replace(out / f"{INDEX}.tmp", out / INDEX)
    (out / MARKER).write_text(json.dumps({"tokens": index["tokens"], "shards": len(index["shards"])}) + "\n")
    partial.rmdir()


# ---------------------------------------------------------------------------------------------------- run


def documents_of(args: argparse.Namespace) -> tuple[Iterator[str], Progress]:
    """The source's documents and a progress display sized for it (bytes locally, documents from the hub)."""
    if args.dataset:
        try:
            import datasets  # noqa: F401, PLC0415 - only checked here: hub staging needs it
        except ImportError:
            raise StageError("--dataset needs the datasets package: pip install datasets") from None
        progress = Progress(args.max_documents, "docs")
        return hub_documents(args.dataset, args.dataset_config, args.split, progress.advance), progress
    files = input_files(args.input)
    progress = Progress(sum(f.stat().st_size for f in files), "B")
    return file_documents(files, progress.advance), progress


def stage(args: argparse.Namespace) -> dict:
    """Tokenize the source into ``args.out``; returns the index written."""
    texts, progress = documents_of(args)  # validates the inputs before --out is touched
    partial, created = prepare_out(args.out, args.force)
    try:
        spec = load_tokenizer(args.tokenizer, partial / TOKENIZER_DIR)
        writer = ShardWriter(partial, token_dtype(spec.vocab_size), args.shard_tokens)
        documents = 0
        try:
            for count, tokens in encoded_batches(spec, args.workers, batches(texts, args.max_documents)):
                writer.write(tokens)
                documents += count
        finally:
            writer.close()
            progress.close()
        sources = [args.dataset] if args.dataset else [str(p) for p in args.input]
        if not writer.shards:
            raise StageError(f"{', '.join(sources)} holds no text (every document is empty); give some")
        index = {
            "format_version": FORMAT_VERSION,
            "dtype": token_dtype(spec.vocab_size),
            "byte_order": "little",
            "vocab_size": spec.vocab_size,
            "eod_id": spec.eod_id,
            "tokenizer": spec.describe(),
            "sources": sources,
            "documents": documents,
            "tokens": sum(shard["tokens"] for shard in writer.shards),
            "shards": writer.shards,
        }
        publish(partial, args.out, index)
        return index
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        if created:
            shutil.rmtree(args.out, ignore_errors=True)
        raise


def stage_tokenizer_only(name: str, out: Path) -> None:
    """Save a hub tokenizer to ``out`` (for ``--tokenizer`` with the built-in corpus)."""
    if name == "bytes":
        raise StageError("--tokenizer bytes needs nothing staged; give a hub id or an --input to tokenize")
    if out.exists() and not out.is_dir():
        raise StageError(f"--out {out} is a file; give a folder (new or empty)")
    load_tokenizer(name, out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    default_workers = min(len(os.sched_getaffinity(0)), 8)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--input", type=Path, nargs="+", help=".txt / .jsonl files or folders of them")
    source.add_argument("--dataset", help="hub dataset id, e.g. allenai/c4 (streamed; needs network)")
    parser.add_argument("--dataset-config", default=None, help="dataset configuration, e.g. en")
    parser.add_argument("--split", default="train")
    parser.add_argument("--max-documents", type=int, default=None, help="stop after N documents")
    parser.add_argument("--tokenizer", default="bytes", help="bytes (default), a local folder or a hub id")
    parser.add_argument("--out", type=Path, required=True, help="folder on shared storage")
    parser.add_argument("--workers", type=int, default=default_workers, help=f"default {default_workers}")
    parser.add_argument("--shard-tokens", type=int, default=1 << 28, help="tokens per shard file")
    parser.add_argument("--force", action="store_true", help="restage a folder that is already staged")
    args = parser.parse_args(argv)
    return args


def check_args(args: argparse.Namespace) -> None:
    """Counts at least 1, a tokenizer folder with its tokenizer.json: checked before anything is read."""
    for flag in ("workers", "shard_tokens", "max_documents"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise StageError(f"--{flag.replace('_', '-')}={value} must be at least 1")
    folder = Path(args.tokenizer)
    if args.tokenizer != "bytes" and folder.exists() and not (folder / "tokenizer.json").is_file():
        raise StageError(f"--tokenizer {folder} has no tokenizer.json; give a fast tokenizer's folder")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        check_args(args)
        if not args.input and not args.dataset:
            stage_tokenizer_only(args.tokenizer, args.out)
            print(f"staged tokenizer {args.tokenizer} in {args.out}")
            return 0
        index = stage(args)
    except StageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    print(
        f"staged {index['documents']:,} documents, {index['tokens']:,} tokens ({index['dtype']}) in "
        f"{len(index['shards'])} shards to {args.out} in {elapsed:.1f} s: "
        f"{index['tokens'] / elapsed:,.0f} tokens/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
