"""Make ``src/`` importable for the unit tests, as ``python src/train.py`` would, and share one JAX
compilation cache between the runs of a session (every tiny run compiles the same step)."""

import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))


@pytest.fixture(scope="session")
def jax_env(tmp_path_factory) -> dict[str, str]:
    """Environment for JAX subprocesses: one thread per op pool, a compilation cache for the session."""
    cache = tmp_path_factory.mktemp("jax-cache")
    return {
        "OMP_NUM_THREADS": "1",
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }
