"""Every folder under 3.test_cases/ follows the contract of 3.test_cases/README.md, and the check fails
with one line naming the folder and the missing piece when a piece is removed."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import pytest

from testbed.contract import (
    REPO_ROOT,
    case_folders,
    check_case,
    missing_shared_modules,
    rules,
    shared_module_copies,
)

CPU_DDP = REPO_ROOT / "3.test_cases" / "pytorch" / "cpu-ddp"


def test_the_contract_page_lists_the_cases_it_governs():
    names = {str(folder.relative_to(REPO_ROOT / "3.test_cases")) for folder in case_folders()}
    assert {"pytorch/FSDP", "pytorch/cpu-ddp"} <= names
    page = (REPO_ROOT / "3.test_cases" / "README.md").read_text()
    assert all(f"({name}/README.md)" in page for name in names), "add every case to the contract page's table"


@pytest.mark.parametrize(
    "folder", case_folders(), ids=lambda p: str(p.relative_to(REPO_ROOT / "3.test_cases"))
)
def test_case_follows_the_contract(folder):
    assert check_case(folder) == []


def test_every_trainer_carries_every_shared_module():
    copies = shared_module_copies()
    assert all(len(paths) >= 2 for paths in copies.values()), copies
    assert missing_shared_modules() == []


def test_markers_of_the_contract_are_registered():
    markers = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"][
        "markers"
    ]
    registered = {line.split(":", 1)[0] for line in markers}
    assert set(rules()["markers"]) <= registered


@pytest.fixture(scope="module")
def good_copy(tmp_path_factory) -> Path:
    """A copy of cpu-ddp that passes, to break one piece at a time."""
    folder = tmp_path_factory.mktemp("contract") / "cpu-ddp"
    shutil.copytree(CPU_DDP, folder, ignore=shutil.ignore_patterns("runs", ".venv", "__pycache__", "*.out"))
    # The copy sits outside the repository: point its Makefile's REPO_ROOT back at it.
    makefile = folder / "Makefile"
    makefile.write_text(makefile.read_text().replace("$(abspath ../../..)", str(REPO_ROOT)))
    assert check_case(folder) == []
    return folder


def broken(good: Path, tmp_path: Path, change) -> Path:
    folder = tmp_path / "cpu-ddp"
    shutil.copytree(good, folder)
    change(folder)
    return folder


def drop_target(folder: Path) -> None:
    text = (folder / "Makefile").read_text()
    (folder / "Makefile").write_text(re.sub(r"^enroot:.*\n(\t.*\n)*", "", text, flags=re.MULTILINE))


def drop_section(folder: Path) -> None:
    readme = (folder / "README.md").read_text()
    (folder / "README.md").write_text(readme.replace("## Results", "## Numbers"))


def break_sbatch(folder: Path) -> None:
    script = next(folder.glob("slurm/*.sbatch"))
    script.write_text(script.read_text().replace("set -euo pipefail", "set -euo pipefail\nexit 3", 1))


def unmark_block(folder: Path) -> None:
    readme = (folder / "README.md").read_text()
    marker = r"<!-- (?:illustrative|walkthrough):[^>]*-->\n"  # the first block's, whichever kind
    (folder / "README.md").write_text(re.sub(marker, "", readme, count=1))


def break_manifest(folder: Path) -> None:
    template = next((folder / "kubernetes").iterdir())
    template.write_text(template.read_text().replace("replicas:", "replica_count:", 1))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: (f / "tests" / "test_slurm.py").unlink(), "no tests/test_slurm.py"),
        (lambda f: (f / "requirements.txt").unlink(), "no requirements.txt"),
        (drop_target, "Makefile has no 'enroot' target"),
        (drop_section, "README.md has no '## Results' section"),
        (break_sbatch, "DRY_RUN=1 bash slurm/cpu-ddp.sbatch fails"),
        (break_manifest, "does not validate"),
        (unmark_block, "is neither a walkthrough tests/test_walkthrough.py runs nor marked"),
    ],
    ids=["test file", "requirements", "make target", "readme section", "sbatch", "manifest", "readme block"],
)
def test_a_removed_piece_is_named_in_one_line(good_copy, tmp_path, change, message):
    folder = broken(good_copy, tmp_path, change)
    problems = check_case(folder)
    assert len(problems) == 1 and problems[0].startswith(f"{folder}: ") and message in problems[0], problems


def test_a_missing_shared_module_is_named(tmp_path):
    for name in ("a", "b"):
        package = tmp_path / name / "src" / "pkg"
        package.mkdir(parents=True)
        for module in rules()["shared_modules"]:
            (package / module).write_text("same\n")
    (tmp_path / "b" / "src" / "pkg" / "metrics.py").unlink()
    assert missing_shared_modules(tmp_path) == [
        f"{tmp_path}/b/src/pkg: no metrics.py (a shared module; run 'make sync')"
    ]
