"""Shared by this case's tests: where things are, and running this folder's scripts as a user does."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

FOLDER = Path(__file__).resolve().parents[1]
REGISTRY = FOLDER / "src" / "aws_llama3" / "config_registry.py"


def preset_names() -> list[str]:
    """The config functions of src/aws_llama3/config_registry.py (what torchtitan's --config accepts),
    read without importing torchtitan."""
    tree = ast.parse(REGISTRY.read_text())
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]


def run_python(*args: str, cwd: Path = FOLDER, **env: str) -> subprocess.CompletedProcess:
    """``python ARGS`` with this interpreter, one thread, as a user would run the scripts."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, "OMP_NUM_THREADS": "1", **env},
        capture_output=True,
        text=True,
        check=False,
    )
