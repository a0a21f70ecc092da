"""The repository's bad-input catalogue (``testbed/bad_input.py``) against this case's launcher
(``src/launch.py``, what ``make local`` runs) and the trainer it starts, in the framework venv.

Each bad input ends with exit code 2 and one ``error:`` line that names the input (once, not once per
process), no traceback and no run folder. Prints ``bad inputs: N tried, N clean``.
"""

from __future__ import annotations

import sys

import pytest

from testbed import bad_input
from testbed.bad_input import NUMBERS_AND_ZERO, VALUES, Command

pytestmark = pytest.mark.framework

LAUNCH = (sys.executable, "3.test_cases/jax/src/launch.py")
TRAIN = ("3.test_cases/jax/src/train.py", "--preset", "tiny", "--max-steps", "1", "--run-dir", "{fresh_out}")
COMMANDS = [
    Command("launch --nproc", (*LAUNCH, "--nproc", "{value}", "--", *TRAIN), tuple(NUMBERS_AND_ZERO)),
    Command("launch --port", (*LAUNCH, "--port", "{value}", "--", *TRAIN), tuple(NUMBERS_AND_ZERO)),
    Command("launch --max-restarts", (*LAUNCH, "--max-restarts", "{value}", "--", *TRAIN), tuple(VALUES)),
    Command(
        "launch -- SCRIPT",
        (*LAUNCH, "--nproc", "2", "--", "{file}", "--run-dir", "{fresh_out}"),
        ("missing file", "a folder"),
        suffix=".py",
        mentions=("script",),
    ),
    Command(
        "launch -- train.py --lr",
        (*LAUNCH, "--nproc", "2", "--port", "24731", "--", *TRAIN, "--lr", "{value}"),
        tuple(VALUES),
    ),
]


def test_every_command_ends_every_bad_input_cleanly(tmp_path):
    bad_input.check(COMMANDS, tmp_path, workers=1)  # one port for the group of each --lr run
