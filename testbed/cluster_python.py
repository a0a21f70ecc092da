"""Do the requirements a README installs on a cluster resolve for the cluster's Python?

A cluster node's venv uses the OS image's Python unless the folder's Makefile ``venv`` target picks one
(``uv venv --python 3.11``). For every ``requirements.txt`` that a folder installs into a venv (its
Makefile has a ``venv`` target, or its README says ``pip install -r requirements.txt``), this resolves the
pins with ``uv pip compile --only-binary :all:`` for each OS image the cluster configs select, for Linux
x86_64 (glibc 2.34, Amazon Linux 2023's; Ubuntu's is newer), without downloading a wheel (uv's cache
first, then the index), and prints a table. An OS passes when one of the Pythons it installs
resolves; a folder whose Makefile pins a Python is resolved for that Python only.
``python -m testbed.cluster_python`` exits 1 on a pair that fails.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from testbed.walkthrough import REPO_ROOT, repository_files

# OS images the cluster configs select -> the Pythons a venv can use there without building one.
# ParallelCluster (create_config.py --os, default ubuntu2204) and HyperPod's Slurm AMI: Ubuntu 22.04;
# ParallelCluster ubuntu2404; EKS node groups and ParallelCluster alinux2023: Amazon Linux 2023, whose
# python3 is 3.9 and whose python3.11 package installs next to it.
OS_PYTHONS: dict[str, tuple[str, ...]] = {
    "ubuntu2204": ("3.10",),
    "ubuntu2404": ("3.12",),
    "alinux2023": ("3.11", "3.9"),
}
PLATFORM = "x86_64-manylinux_2_34"
# Pure-Python packages published as source distributions only (uv reads their metadata, builds nothing
# native): nemo-toolkit needs wget, omegaconf needs antlr4-python3-runtime 4.9.
SDIST_ONLY = ("wget", "antlr4-python3-runtime")
_VENV_PYTHON = re.compile(r"uv venv\b[^\n]*--python[ =](\S+)")
_VARIABLE = re.compile(r"^([A-Z][A-Z0-9_]*)[ \t]*[?:]?=[ \t]*(\S+)[ \t]*$", re.MULTILINE)
_EXTRA_INDEX = re.compile(r"--(?:extra-)?index-url[ =]\$\(([A-Z0-9_]+)\)")


@dataclass
class Pair:
    requirements: str
    os_name: str
    pythons: tuple[str, ...]
    index: str | None = None  # a package index other than PyPI the Makefile installs from
    resolved: str | None = None  # the Python that resolved, or None
    why: str = ""


def makefile_value(makefile: str, expression: str) -> str:
    """``$(NAME)`` looked up among the Makefile's simple assignments; anything else as written."""
    match = re.fullmatch(r"\$\(([A-Z0-9_]+)\)", expression)
    if not match:
        return expression
    values = dict(_VARIABLE.findall(makefile))
    return values.get(match[1], expression)


def venv_python(makefile: str) -> str | None:
    """The Python the Makefile's venv target creates its venv with (``uv venv --python X``), or None."""
    match = _VENV_PYTHON.search(makefile)
    return makefile_value(makefile, match[1]) if match else None


def extra_index(makefile: str) -> str | None:
    match = _EXTRA_INDEX.search(makefile)
    return makefile_value(makefile, f"$({match[1]})") if match else None


def cluster_requirements() -> list[str]:
    """Every requirements.txt a folder installs into a venv (Makefile venv target, or README pip install)."""
    found = []
    for relative in repository_files("requirements.txt", "**/requirements.txt"):
        folder = REPO_ROOT / relative.parent
        makefile = folder / "Makefile"
        readme = folder / "README.md"
        has_venv = makefile.is_file() and re.search(r"^venv:", makefile.read_text(), re.MULTILINE)
        says_pip = readme.is_file() and "pip install -r requirements.txt" in readme.read_text()
        if has_venv or says_pip:
            found.append(str(relative))
    return sorted(found)


def pairs(requirements: list[str]) -> list[Pair]:
    result = []
    for relative in requirements:
        makefile_path = REPO_ROOT / Path(relative).parent / "Makefile"
        makefile = makefile_path.read_text() if makefile_path.is_file() else ""
        pinned = venv_python(makefile)
        for os_name, pythons in OS_PYTHONS.items():
            result.append(Pair(relative, os_name, (pinned,) if pinned else pythons, extra_index(makefile)))
    return result


def resolve(uv: str, requirements: str, python: str) -> tuple[bool, str]:
    """``uv pip compile`` for one Python: (resolved, the first line of uv's reason when not). uv's cache
    first (``--offline``: index pages and wheel metadata it already holds, well under a second), then the
    index when the cache is missing a page or the pins do not resolve from it."""
    no_binary = [arg for package in SDIST_ONLY for arg in ("--no-binary", package)]
    command = [uv, "pip", "compile", "--quiet", "--no-header", "--python-version", python,
               "--python-platform", PLATFORM, "--only-binary", ":all:", *no_binary,
               str(REPO_ROOT / requirements)]  # fmt: skip
    for offline in (["--offline"], []):
        completed = subprocess.run(
            command + offline, capture_output=True, text=True, check=False, timeout=300
        )
        if completed.returncode == 0:
            return True, ""
    reasons = [line.strip() for line in completed.stderr.splitlines() if "Because" in line]
    return False, (reasons or completed.stderr.strip().splitlines() or ["?"])[0].removeprefix("cause: ")


_RESOLVED: dict[tuple[str, str], tuple[bool, str]] = {}


def check(pair: Pair, uv: str) -> Pair:
    if pair.index:
        pair.why = f"not resolved here: installs from {pair.index}, which this machine cannot reach"
        return pair
    reasons = []
    for python in pair.pythons:
        key = (pair.requirements, python)
        if key not in _RESOLVED:
            _RESOLVED[key] = resolve(uv, pair.requirements, python)
        ok, why = _RESOLVED[key]
        if ok:
            pair.resolved = python
            return pair
        reasons.append(f"{python}: {why}")
    pair.why = "; ".join(reasons)
    return pair


def table(checked: list[Pair]) -> list[str]:
    rows = {}
    for pair in checked:
        if pair.index:
            cell = "not checked"
        elif pair.resolved:
            by_makefile = pair.resolved not in OS_PYTHONS[pair.os_name]
            cell = f"ok ({pair.resolved}{', Makefile venv' if by_makefile else ''})"
        else:
            cell = "FAILS"
        rows.setdefault(pair.requirements, {})[pair.os_name] = cell
    width = max(len(r) for r in rows)
    lines = [f"{'requirements':<{width}}  " + "  ".join(f"{os_name:<24}" for os_name in OS_PYTHONS)]
    for requirements, cells in rows.items():
        lines.append(f"{requirements:<{width}}  " + "  ".join(f"{cells.get(o, '-'):<24}" for o in OS_PYTHONS))
    return lines


def main() -> int:
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=1) as pool:
        checked = list(pool.map(lambda pair: check(pair, uv), pairs(cluster_requirements())))
    for line in table(checked):
        print(line)
    failed = [p for p in checked if not p.resolved and not p.index]
    for pair in checked:
        if pair.index:
            print(f"note: {pair.requirements} on {pair.os_name}: {pair.why}")
    for pair in failed:
        print(
            f"error: {pair.requirements} does not resolve on {pair.os_name} ({pair.why}); make the folder's "
            "Makefile venv target create its venv with a Python the pins support (uv venv --python 3.11) "
            "and say so in its README",
            file=sys.stderr,
        )
    print(f"cluster Python: {len(checked)} pairs, {len(failed)} failing, {time.monotonic() - start:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
