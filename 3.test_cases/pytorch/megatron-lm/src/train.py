#!/usr/bin/env python3
"""Pretrain a GPT/Llama model on megatron-core (tensor, pipeline, context and data parallel).

    torchrun --nproc-per-node 2 src/train.py --preset tiny --data-prefix data/corpus --run-dir runs/local
    torchrun --nproc-per-node 2 src/train.py --preset tiny --tensor-parallel 2 ...   # TP=2 on CPU
    python src/train.py --help                                                      # every option

Presets and validation: ``megatron_gpt/config.py``. GPUs: Megatron's DDP, distributed optimizer and
pipeline schedules, TE layers, NCCL. CPU: the same GPTModel over gloo (see megatron_gpt/engine.py).
"""

from __future__ import annotations

import multiprocessing
import os
import sys

from megatron_gpt.config import ConfigError, check_indexed_dataset, config_from_args, read_data_info


def fail(exc: Exception) -> int:
    print(f"error: {exc}", file=sys.stderr, flush=True)
    return 2


def main(argv: list[str] | None = None) -> int:
    try:
        config = config_from_args(argv)
        read_data_info(config.data_prefix)  # the dataset too, before the seconds of importing torch
        check_indexed_dataset(config.data_prefix)
    except ConfigError as exc:
        return fail(exc)
    # Imported after validation: torch and megatron take seconds to import.
    from megatron_gpt.trainer import USER_ERRORS, train  # noqa: PLC0415

    try:
        train(config)
    except USER_ERRORS as exc:
        return fail(exc)
    return 0


if __name__ == "__main__":
    code = main()
    # dist_checkpointing keeps a multiprocessing manager (its write-results queue) alive for the life of
    # the process; stop it, since the exit below skips the atexit hook that would.
    for child in multiprocessing.active_children():
        child.terminate()
        child.join(timeout=10)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # no interpreter teardown racing gloo's threads (see the FSDP case's train.py)
