#!/usr/bin/env python3
"""FSDP2 training of Llama / Mistral / Mixtral presets.

    torchrun --nproc-per-node 2 src/train.py --preset tiny --run-dir runs/local
    python src/train.py --preset tiny --max-steps 10     # one process, no torchrun
    python src/train.py --help                           # every option

Presets: ``fsdp/presets.py``. On GPU: bf16 mixed precision and NCCL; on CPU: fp32 and gloo.
"""

from __future__ import annotations

import os
import sys

from fsdp.config import ConfigError, config_from_args


def fail(exc: Exception) -> int:
    print(f"error: {exc}", file=sys.stderr, flush=True)
    return 2


# `make local` runs `train.py --check-config <flags>` before starting ranks: a bad flag is one line, once.
CHECK_CONFIG = "--check-config"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    check_only = CHECK_CONFIG in argv
    if check_only:
        argv.remove(CHECK_CONFIG)
    try:
        config = config_from_args(argv)
    except ConfigError as exc:
        # Every rank of a torchrun job parses the same flags: rank 0 alone says what is wrong.
        return fail(exc) if os.environ.get("RANK", "0") == "0" else 2
    if check_only:
        print(f"config ok: preset {config.preset}")
        return 0
    # Imported after validation: torch and transformers take seconds to import.
    from fsdp.trainer import USER_ERRORS, train  # noqa: PLC0415

    try:
        train(config)
    except USER_ERRORS as exc:
        return fail(exc)
    return 0


if __name__ == "__main__":
    code = main()
    # Leave without the interpreter's teardown. FSDP keeps the process group alive in C++ past
    # destroy_process_group() (on CPU its gloo threads still run at exit), and the teardown racing those
    # threads aborts a rank that has finished ("terminate called without an active exception", SIGABRT;
    # with DDP, which does the same, 7 of 32 two-rank exits on a loaded machine, 0 of 32 like this).
    # Everything is written already.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
