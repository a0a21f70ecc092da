"""The repository's bad-input catalogue (``testbed/bad_input.py``) against this case's data step
(``src/prepare_esm2_data.py``, what ``make data`` runs), in its framework venv.

Each bad input ends with exit code 2, one ``error:`` line that names the input, no traceback and no
output folder written. Prints ``bad inputs: N tried, N clean``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from testbed import bad_input
from testbed.bad_input import ALL_FILES, NUMBERS_AND_ZERO, OUT_INPUTS, VALUES, Command

pytestmark = pytest.mark.framework

PREPARE = (sys.executable, "3.test_cases/pytorch/bionemo/src/prepare_esm2_data.py")
SEQUENCES = {"A1": "MKTAYIAK", "A2": "MKTAYIAQ", "B1": "GSHMLEDP", "C1": "MSTNPKPQ", "D1": "MAAAKLLV"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Five UniRef90 members in four UniRef50 clusters: a FASTA and its cluster table that prepare well."""
    folder = tmp_path_factory.mktemp("esm2")
    (folder / "members.fasta").write_text("".join(f">UniRef90_{k} x\n{v}\n" for k, v in SEQUENCES.items()))
    rows = [f"UniRef50_{k[0]}1,UniRef90_{k}" for k in SEQUENCES]
    (folder / "clusters.csv").write_text("ur50_id,ur90_id\n" + "\n".join(rows) + "\n")
    return folder


def commands(inputs: Path) -> list[Command]:
    fasta, clusters = str(inputs / "members.fasta"), str(inputs / "clusters.csv")
    out = ("--output", "{fresh_out}")
    return [
        Command("prepare --fasta", (*PREPARE, "--clusters", clusters, *out, "--fasta", "{file}"), ALL_FILES),
        Command(
            "prepare --clusters",
            (*PREPARE, "--fasta", fasta, *out, "--clusters", "{file}"),
            ALL_FILES,
            suffix=".csv",
        ),
        Command(
            "prepare --valid-fraction",
            (*PREPARE, "--fasta", fasta, "--clusters", clusters, *out, "--valid-fraction", "{value}"),
            tuple(NUMBERS_AND_ZERO),
        ),
        Command(
            "prepare --seed",
            (*PREPARE, "--fasta", fasta, "--clusters", clusters, *out, "--seed", "{value}"),
            tuple(name for name in VALUES if name != "negative"),  # any integer is a seed
        ),
        Command(
            "prepare --output",
            (*PREPARE, "--fasta", fasta, "--clusters", clusters, "--output", "{out}"),
            ("a folder", *OUT_INPUTS),
        ),
    ]


def test_the_inputs_prepare(inputs, tmp_path):
    """The catalogue's good inputs are good: only the bad one makes a command fail."""
    import subprocess  # noqa: PLC0415

    argv = [*PREPARE, "--fasta", str(inputs / "members.fasta"), "--clusters", str(inputs / "clusters.csv")]
    done = subprocess.run(
        [*argv, "--output", str(tmp_path / "out")],
        cwd=bad_input.ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "train.db").is_file()


def test_every_command_ends_every_bad_input_cleanly(inputs, tmp_path):
    bad_input.check(commands(inputs), tmp_path)
