"""The repository's bad-input catalogue (``testbed/bad_input.py``) against this case's config check
(``src/check_config.py``, what ``make check-config`` runs before any job), in its framework venv.

Each bad input ends with exit code 2 and one ``error:`` line that names the option, no traceback. Every run
imports torchtitan (seconds), so each option takes the few entries that reach a different check: tyro's
parsing, torchtitan's ConfigManager, and the range checks of ``check_config.py``. Prints
``bad inputs: N tried, N clean``.
"""

from __future__ import annotations

import sys

import pytest

from testbed import bad_input
from testbed.bad_input import Command

pytestmark = pytest.mark.framework

CHECK = (sys.executable, "3.test_cases/pytorch/torchtitan/src/check_config.py")
TINY = (*CHECK, "--config", "tiny")
COMMANDS = [
    Command("check_config --config", (*CHECK, "--config", "{text}"), ("hash", "empty")),
    Command(
        "check_config --training.steps", (*TINY, "--training.steps", "{value}"), ("nan", "negative", "zero")
    ),
    Command(
        "check_config --training.max-norm", (*TINY, "--training.max-norm", "{value}"), ("inf", "negative")
    ),
    Command(
        "check_config --optimizer...lr",
        (*TINY, "--optimizer.param-groups.0.optimizer-kwargs.lr", "{value}"),
        ("nan", "zero"),
    ),
    Command(
        "check_config --parallelism.data-parallel-shard-degree",
        (*TINY, "--parallelism.data-parallel-shard-degree", "{value}"),
        ("zero",),  # -1 is valid: the degree derived from the world size
    ),
]


def test_every_command_ends_every_bad_input_cleanly(tmp_path):
    bad_input.check(COMMANDS, tmp_path)
