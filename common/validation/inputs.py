"""Reading what users and other programs hand the validation tools, and writing results, without
tracebacks: every failure is an ``InputError`` (a ``ValueError``) whose message names the input and the
fix, which the tools print as one ``error:`` line before exiting 2.

Numbers from the command line or the environment go through ``number``: ``nan`` and ``inf`` are refused
(a verdict must never pass on a value it could not compare), and so are values below the allowed range.
Outputs are written to a temporary name beside the target and renamed, so a failure leaves no half file.
Each tool carries a copy of this module, written from common/validation/ by common/sync.py.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


class InputError(ValueError):
    """Bad input: the message names it and says what to do."""


def read_text(path: str | Path, what: str) -> str:
    """The UTF-8 text of ``path``; ``what`` names it in the message (e.g. 'nccl-tests log')."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder; pass the file itself")
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist; check the path") from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{what} {path} is not UTF-8 text (byte {exc.start}); is it the right file?"
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror}") from None


def read_json(path: str | Path, what: str, kind: type = dict) -> Any:
    """``path`` parsed as JSON whose top level is ``kind`` (an object unless said otherwise)."""
    text = read_text(path, what)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{what} {path} is not JSON ({exc.msg}, line {exc.lineno}); is it the right file?"
        ) from None
    if not isinstance(value, kind):
        expected = {dict: "an object", list: "a list"}.get(kind, kind.__name__)
        raise InputError(f"{what} {path} holds {type(value).__name__} at the top, not {expected}")
    return value


def number(text: str | float, name: str, minimum: float | None = None, above: float | None = None) -> float:
    """``text`` as a finite float, at least ``minimum`` / more than ``above``; ``name`` is the flag or
    variable it came from."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InputError(f"{name}={text!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{name}={text} is not a finite number; give a value such as 1.5")
    if minimum is not None and value < minimum:
        raise InputError(f"{name}={text} must be at least {minimum:g}")
    if above is not None and value <= above:
        raise InputError(f"{name}={text} must be more than {above:g}")
    return value


def output_path(path: str | Path, what: str) -> Path:
    """Check before any work that ``path`` can be written as a file: not a folder, and its folder exists
    or can be made (missing folders are created)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder; give a file name inside it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        raise InputError(
            f"{what} {path}: cannot make its folder {path.parent} (part of it is a file?)"
        ) from None
    return path


def write_text(path: str | Path, text: str, what: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, then rename it there."""
    path = output_path(path, what)
    temporary = None
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except OSError as exc:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        raise InputError(f"cannot write {what} {path}: {exc.strerror}") from None
