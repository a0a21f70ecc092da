"""What the stager (``src/stage.py``) and the trainer (``data``) share: the staged folder's format and the
byte-level tokenizer (UTF-8 bytes are ids 0-255 and 256 ends a document, so no download is ever needed).
numpy only: the stager runs without torch."""

from __future__ import annotations

import numpy as np

BYTE_VOCAB, BYTE_EOD = 257, 256
# A staged folder: tokens-NNNNN.bin shards, index.json, and last the STAGED marker.
INDEX, MARKER, FORMAT_VERSION, SHARD_PREFIX = "index.json", "STAGED", 1, "tokens-"


def byte_encoder(texts: list[str]) -> np.ndarray:
    """UTF-8 bytes of each document followed by the end-of-document id 256 (``uint16``)."""
    encoded = [text.encode("utf-8") for text in texts]
    ends = np.cumsum([len(chunk) for chunk in encoded])
    tokens = np.frombuffer(b"".join(encoded), dtype=np.uint8).astype(np.uint16)
    return np.insert(tokens, ends, BYTE_EOD)
