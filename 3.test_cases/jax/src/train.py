#!/usr/bin/env python3
"""Train a Llama-class model with JAX + Flax + Optax, checkpoints with Orbax.

    python src/launch.py --nproc 2 -- src/train.py --preset tiny     # 2 processes on this machine
    python src/train.py --preset tiny --max-steps 10                 # one process
    python src/train.py --help                                       # every option

Multi-process: each process is started by a launcher (src/launch.py here, srun on Slurm, a Kubernetes
Job) with JAX_COORDINATOR_ADDRESS and its process count and id; see jax_llm/parallel.py.
"""

from __future__ import annotations

import os
import sys

from jax_llm.config import ConfigError, config_from_args


def fail(exc: Exception) -> int:
    # Every process sees the same bad value; process 0 says it, once.
    if os.environ.get("JAX_PROCESS_ID", os.environ.get("SLURM_PROCID", "0")) == "0":
        print(f"error: {exc}", file=sys.stderr, flush=True)
    return 2


def main(argv: list[str] | None = None) -> int:
    try:
        config = config_from_args(argv)
    except ConfigError as exc:
        return fail(exc)
    # Imported after validation: JAX takes seconds to import and to find its devices.
    from jax_llm.trainer import USER_ERRORS, train  # noqa: PLC0415

    try:
        train(config)
    except USER_ERRORS as exc:
        return fail(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
