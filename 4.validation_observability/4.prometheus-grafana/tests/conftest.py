"""This folder's tools and test helpers importable by name (as `python training_textfile.py` would run
them); fixtures for what the exporters of the stack emit (see ``stack_metrics.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for folder in (HERE.parent, HERE.parent / "managed", HERE):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import stack_metrics  # noqa: E402


@pytest.fixture(scope="session")
def efa_sysfs_tree(tmp_path_factory) -> Path:
    """A node with two EFA devices (every counter of the driver), one port DOWN."""
    return stack_metrics.build_efa_node(tmp_path_factory.mktemp("efa") / "sys")


@pytest.fixture(scope="session")
def exporter_names(efa_sysfs_tree) -> dict[str, set[str]]:
    """{exporter: metric names it emits}."""
    return stack_metrics.exporter_names(efa_sysfs_tree)


@pytest.fixture(scope="session")
def known_metrics(exporter_names) -> set[str]:
    """Every metric name some exporter of the stack emits."""
    return set().union(*exporter_names.values())
