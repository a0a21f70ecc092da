"""The validation tools' requirements pin what pyproject.toml pins (their shared modules are copies that
common/sync.py writes; tests/test_sync.py checks them)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VALIDATION = ROOT / "4.validation_observability"


def test_requirements_pin_what_pyproject_pins():
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]
    pinned = dict(item.split("==") for group in groups.values() for item in group if isinstance(item, str))
    requirement_files = sorted(VALIDATION.glob("*/requirements.txt"))
    assert requirement_files
    for path in requirement_files:
        lines = path.read_text().splitlines()
        requirements = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        assert requirements, f"{path.relative_to(ROOT)} pins nothing"
        for line in requirements:
            name, version = line.split("==")
            assert pinned.get(name) == version, (
                f"{path.relative_to(ROOT)}: {line} but pyproject pins {pinned.get(name)}"
            )
