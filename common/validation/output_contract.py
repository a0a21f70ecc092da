"""The output contract of the validation tools, modelled on nccl-tests.

A ``#`` header (tool, version, the versions and facts found), a fixed-width table, and a footer that
ends in ``OK`` or ``FAILED``; ``--json`` gives the same content to machines. Each tool carries a
copy of this module, written from common/validation/ by common/sync.py (tests/test_sync.py checks them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

NOT_FOUND = "not found"


def header(tool: str, version: str, facts: Mapping[str, Any]) -> list[str]:
    """``# tool version`` then one ``#  key : value`` line per fact (None shows as 'not found')."""
    width = max((len(key) for key in facts), default=0)
    lines = [f"# {tool} {version}"]
    lines += [f"#  {key:<{width}} : {NOT_FOUND if value is None else value}" for key, value in facts.items()]
    return [*lines, "#"]


def table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 0, free_text_last: bool = False
) -> list[str]:
    """Fixed-width rows under a ``#`` column header; the first ``left`` columns align left, others right.

    With ``free_text_last`` the last column is a free-text detail and is left unpadded.
    """
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(columns[i]), *(len(row[i]) for row in cells)]) for i in range(len(columns))]

    def line(values: Sequence[str]) -> str:
        parts = []
        for i, value in enumerate(values):
            if free_text_last and i == len(values) - 1:
                parts.append(value)
            elif i < left:
                parts.append(value.ljust(widths[i]))
            else:
                parts.append(value.rjust(widths[i]))
        return "  ".join(parts).rstrip()

    return ["# " + line(list(columns)), *("  " + line(row) for row in cells)]


def _cell(value: Any) -> str:
    if value is None:
        return "N/A"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def footer(failures: Sequence[str], summary: str) -> list[str]:
    """``# <summary> : OK`` when nothing failed, else ``FAILED`` and one ``#  - ...`` line per failure."""
    if not failures:
        return [f"# {summary} : OK"]
    return [f"# {summary} : FAILED", *(f"#  - {failure}" for failure in failures)]


def to_json(document: Mapping[str, Any]) -> str:
    """The machine form: indented JSON with a trailing newline."""
    return json.dumps(document, indent=2, default=str) + "\n"
