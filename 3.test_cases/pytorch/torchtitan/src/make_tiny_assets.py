"""The tiny preset's tokenizer and corpus, made offline from text every Python install ships.

    python src/make_tiny_assets.py [--out assets/tiny] [--vocab-size 512]

Writes ``OUT/tokenizer.json`` and ``OUT/tokenizer_config.json`` (a byte-level BPE that torchtitan's
HuggingFaceTokenizer loads) and ``OUT/c4_test/data.json`` (one ``{"text": ...}`` per line, the layout of
torchtitan's ``c4_test`` dataset). The folder appears whole or not at all. Needs ``tokenizers``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

BOS, EOS = "<|begin_of_text|>", "<|end_of_text|>"
MAX_VOCAB = 2048  # torchtitan's debugmodel embeds 2048 token ids


class InputError(ValueError):
    """Bad input: printed as one ``error:`` line, exit 2."""


def corpus() -> list[str]:
    """The standard library's help topics (~465K characters of English prose and code)."""
    from pydoc_data.topics import topics  # noqa: PLC0415

    return [text for _, text in sorted(topics.items()) if text.strip()]


def train_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: PLC0415

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def write_assets(out: Path, vocab_size: int) -> Path:
    """Build everything in a scratch folder beside ``out``, then move it into place."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; name a folder (default assets/tiny)")
    if not 300 <= vocab_size <= MAX_VOCAB:
        raise InputError(f"--vocab-size {vocab_size} is outside 300..{MAX_VOCAB} (the debug model's vocab)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as exc:
        raise InputError(f"--out {out}: cannot write there ({exc.strerror}); pick another folder") from None
    try:
        texts = corpus()
        train_tokenizer(texts, vocab_size).save(str(scratch / "tokenizer.json"))
        config = {"bos_token": BOS, "eos_token": EOS, "add_bos_token": True, "add_eos_token": False}
        (scratch / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
        (scratch / "c4_test").mkdir()
        lines = "".join(json.dumps({"text": text}) + "\n" for text in texts)
        (scratch / "c4_test" / "data.json").write_text(lines)
        if out.exists():
            shutil.rmtree(out)
        scratch.chmod(0o755)
        scratch.rename(out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("assets/tiny"), help="folder to write (replaced)")
    parser.add_argument("--vocab-size", type=int, default=512, help=f"BPE vocabulary, 300..{MAX_VOCAB}")
    args = parser.parse_args(argv)
    try:
        out = write_assets(args.out, args.vocab_size)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}/tokenizer.json, tokenizer_config.json and c4_test/data.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
