#!/usr/bin/env python3
"""An offline stand-in for a downloaded corpus and tokenizer, for the tiny preset.

    python src/sample_data.py --output data

writes ``data/sample.jsonl`` (the Python help topics that ship with every Python, one document each) and
``data/tokenizer/`` (a 512-token byte-level BPE trained on them, saved as a Hugging Face tokenizer folder).
On a cluster use your corpus and the model's own tokenizer folder instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="data", help="folder to write into (default data)")
    parser.add_argument("--vocab-size", type=int, default=512)
    args = parser.parse_args(argv)
    if args.vocab_size < 300:
        print("error: --vocab-size must be at least 300 (256 bytes + merges + specials)", file=sys.stderr)
        return 2
    out = Path(args.output)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(
            f"error: --output {out}: cannot make the folder ({exc.strerror}); choose another", file=sys.stderr
        )
        return 2
    from pydoc_data.topics import topics  # noqa: PLC0415

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: PLC0415
    from transformers import PreTrainedTokenizerFast  # noqa: PLC0415

    texts = [topics[name] for name in sorted(topics)]
    with (out / ".sample.jsonl.tmp").open("w", encoding="utf-8") as f:
        for text in texts:
            f.write(json.dumps({"text": text}) + "\n")
    (out / ".sample.jsonl.tmp").replace(out / "sample.jsonl")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=args.vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    eos = "<|endoftext|>"
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=eos).save_pretrained(out / "tokenizer")
    print(
        f"wrote {out / 'sample.jsonl'} ({len(texts)} documents) and {out / 'tokenizer'}/ "
        f"({args.vocab_size} tokens)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
