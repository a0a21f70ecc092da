"""requirements.txt pins exactly what the repository pins (pyproject.toml dependency groups)."""

from __future__ import annotations

import tomllib
from pathlib import Path

FOLDER = Path(__file__).resolve().parents[1]
ROOT = FOLDER.parents[1]


def test_requirements_are_pinned_like_the_repository():
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"].values()
    pins = {item for group in groups for item in group if isinstance(item, str)}
    requirements = (FOLDER / "requirements.txt").read_text().split()
    assert requirements and all("==" in line for line in requirements)
    assert set(requirements) <= pins, set(requirements) - pins
