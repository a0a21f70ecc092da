#!/usr/bin/env python3
"""DDP over gloo on CPU, on scikit-learn's bundled digits.

    torchrun --nproc-per-node 2 src/train.py --preset digits --run-dir runs/local
    python src/train.py --preset tiny                 # one process, no torchrun needed
    python src/train.py --help                        # every option

Presets and validation: ``cpu_ddp/config.py``; the loop: ``cpu_ddp/trainer.py``.
"""

from __future__ import annotations

import os
import sys

from cpu_ddp.config import ConfigError, config_from_args
from cpu_ddp.run_folder import RunFolderError


def fail(message: object, code: int = 2) -> int:
    """One ``error:`` line; 2 for bad input, 1 for a run that finished below its bar."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    return code


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
    # Imported after validation: torch takes seconds to import, a bad value should not wait for it.
    from cpu_ddp.atomic_checkpoint import CheckpointError  # noqa: PLC0415
    from cpu_ddp.trainer import train  # noqa: PLC0415

    try:
        result = train(config)
    except (ConfigError, CheckpointError, RunFolderError) as exc:
        return fail(exc)
    if result["accuracy"] < config.min_accuracy:
        return fail(
            f"held-out accuracy {result['accuracy']:.4f} is below --min-accuracy {config.min_accuracy}", 1
        )
    return 0


if __name__ == "__main__":
    code = main()
    # Leave without the interpreter's teardown. DDP's reducer keeps the process group alive in C++ past
    # destroy_process_group(), so its gloo threads still run while the interpreter and C++ statics are torn
    # down, and that race aborts a rank that has finished ("terminate called without an active exception",
    # SIGABRT): 7 of 32 two-rank exits on a loaded machine, 0 of 32 like this. Everything is written already.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
