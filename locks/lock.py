"""Lock files: every version an install set takes, its direct pins and all they pull in, one file per set.

Each install of the repository's Python packages takes its set's lock as a constraint (``pip install -c``,
``uv pip install -c``), so a fresh clone gets the versions that were locked, not the newest releases of
the packages the pins pull in. The sets:

- ``venv``: the project venv (Makefile ``setup``: the ``torch`` group, then ``dev``, with pip);
- ``lint``, ``security``, ``pcluster``, ``docs``: the nox session of that name (its pyproject group, uv);
- one per framework case of ``noxfile.py`` (``FRAMEWORK_CASES``): the case's ``requirements-cpu.txt`` or
  ``requirements.txt`` plus the ``case-tests`` group, named as the session.

Usage (``make lock`` runs the first; it needs the package index and uv):

    python locks/lock.py             rewrite every lock: keep each locked version the pins still allow
    python locks/lock.py --upgrade   rewrite every lock with the newest versions the pins allow
    python locks/lock.py --check     offline: name every stale lock (``tests/test_locks.py`` checks the same;
                                     ``--check venv``: that set's alone, as ``make setup`` does first)

Locks are resolved by uv for Python 3.11 on x86_64-manylinux_2_28, where each install looks: the package
index, plus the local wheels pip is pointed at (``PIP_FIND_LINKS``) for the sets that see them (pip's
venv, and the framework sessions, whose uv is given the same folder). So ``torch==2.13.0`` resolves to the
CPU wheel and no CUDA package (``nvidia-*``, ``triton``) enters a lock through torch. torch is written
without its local label (``+cpu``): the same lock then installs PyPI's build where that is the one found.

Standard library only: it runs when the venv cannot be set up because a pin changed and the lock has not.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ROOT / "locks"
PYTHON_VERSION = "3.11"
PLATFORM = "x86_64-manylinux_2_28"
FIX = "rewrite the locks with `make lock`"
# The pyproject groups of the sets that are not framework cases (Makefile setup; the noxfile sessions).
GROUP_SETS: dict[str, tuple[str, ...]] = {
    "venv": ("torch", "dev"),
    "lint": ("lint",),
    "security": ("security",),
    "pcluster": ("pcluster",),
    "docs": ("docs",),
}
FIND_LINKS_SETS = {"venv"}  # besides the framework cases: pip sees PIP_FIND_LINKS, the other sessions' uv not
CASE_TESTS_GROUP = "case-tests"
_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;#]+)")
_CUDA = re.compile(r"nvidia-.*|cuda-.*|triton")
_LOCKED = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


class BadInput(Exception):
    """A pin source this script cannot read: one line for the user."""


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def public(version: str) -> str:
    """The version without its local label: ``2.13.0+cpu`` -> ``2.13.0``."""
    return version.split("+", 1)[0]


@dataclass(frozen=True)
class Pin:
    name: str  # normalized
    version: str
    text: str  # as written, extras included
    source: str  # where it is written, for messages


@dataclass(frozen=True)
class InstallSet:
    name: str
    groups: tuple[str, ...]
    requirements: str | None = None  # a case's requirements file, relative to the root
    find_links: bool = False

    @property
    def lock(self) -> Path:
        return LOCKS / f"{self.name}.txt"

    def installed_by(self) -> str:
        return "`make setup` (pip)" if self.name == "venv" else f"`nox -s {self.name}` (uv)"


def framework_cases(noxfile: Path = ROOT / "noxfile.py") -> dict[str, str]:
    """``FRAMEWORK_CASES`` of the noxfile (read, not imported: importing needs nox)."""
    for node in ast.parse(noxfile.read_text()).body:
        target = getattr(node, "target", None) or (node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and target.id == "FRAMEWORK_CASES":
            return ast.literal_eval(node.value)
    raise BadInput(f"{noxfile.name} has no FRAMEWORK_CASES dict; the framework sessions' locks need it")


def framework_requirements(folder: str) -> str:
    """What a framework session installs (the noxfile's rule): requirements-cpu.txt, else requirements.txt."""
    cpu = f"{folder}/requirements-cpu.txt"
    return cpu if (ROOT / cpu).is_file() else f"{folder}/requirements.txt"


def install_sets() -> list[InstallSet]:
    sets = [
        InstallSet(name, groups, find_links=name in FIND_LINKS_SETS) for name, groups in GROUP_SETS.items()
    ]
    for name, folder in framework_cases().items():
        sets.append(InstallSet(name, (CASE_TESTS_GROUP,), framework_requirements(folder), find_links=True))
    return sets


def parse_pin(line: str, source: str) -> Pin:
    match = _PIN.fullmatch(line.split(";", 1)[0].strip())
    if not match:
        raise BadInput(f"{source}: {line.strip()!r} is not a pin; write it as name==version")
    return Pin(normalize(match[1]), match[3], line.strip(), source)


def group_pins(groups: Iterable[str], pyproject: Path = ROOT / "pyproject.toml") -> list[Pin]:
    """The pins of pyproject dependency groups, ``include-group`` entries followed."""
    try:
        table = tomllib.loads(pyproject.read_text())["dependency-groups"]
    except (OSError, tomllib.TOMLDecodeError, KeyError) as exc:
        raise BadInput(f"{pyproject.name}: no readable [dependency-groups] table ({exc})") from None

    def expand(group: str, seen: tuple[str, ...]) -> list[Pin]:
        if group not in table or group in seen:
            raise BadInput(f"{pyproject.name}: dependency group {group!r} is missing or includes itself")
        pins = []
        for entry in table[group]:
            if isinstance(entry, dict):
                pins += expand(entry["include-group"], (*seen, group))
            else:
                pins.append(parse_pin(entry, f"{pyproject.name} group {group}"))
        return pins

    return [pin for group in groups for pin in expand(group, ())]


def requirement_pins(path: str) -> list[Pin]:
    file = ROOT / path
    if not file.is_file():
        raise BadInput(f"{path}: missing; a framework session installs it")
    lines = [line.split(" #", 1)[0] for line in file.read_text().splitlines()]
    return [parse_pin(line, path) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def pins(install_set: InstallSet) -> list[Pin]:
    """The direct pins of a set, first written first; a pin written twice the same way counts once."""
    found = requirement_pins(install_set.requirements) if install_set.requirements else []
    found += group_pins(install_set.groups)
    return list({(pin.name, pin.text): pin for pin in found}.values())


@dataclass(frozen=True)
class Lock:
    pins: dict[str, set[str]]  # recorded pins: normalized name -> the pins as written
    versions: dict[str, str]  # every locked package: normalized name -> version
    via: dict[str, set[str]]  # normalized name -> what pulls it in (uv's annotations)


def read_lock(path: Path) -> Lock:
    recorded, versions, via = {}, {}, {}
    current = None
    for line in path.read_text().splitlines():
        if line.startswith("# pin: "):
            text = line.removeprefix("# pin: ").strip()
            match = _PIN.match(text)
            recorded.setdefault(normalize(match[1]) if match else text, set()).add(text)
        elif not line.startswith((" ", "#")) and (match := _LOCKED.fullmatch(line.strip())):
            current = normalize(match[1])
            versions[current], via[current] = match[2], set()
        elif current and line.startswith("    #"):
            words = re.sub(r"^via\b", "", line.strip("# ")).split()
            if words:
                via[current].add(normalize(words[0]))
    return Lock(recorded, versions, via)


def cuda_through_torch(lock: Lock) -> list[str]:
    """The CUDA packages (nvidia-*, cuda-*, triton) a lock holds only because of torch: a CUDA build of
    torch was resolved (none is when the CPU wheel is found)."""
    found: set[str] = set()
    while True:
        more = {
            name
            for name, via in lock.via.items()
            if _CUDA.fullmatch(name) and name not in found and via and via <= {"torch"} | found
        }
        if not more:
            return sorted(found)
        found |= more


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def stale(install_set: InstallSet, lock_path: Path | None = None) -> list[str]:
    """Every way the set's lock no longer matches its pins, one line each (naming the lock, the package
    and the fix); none when it is current. Offline."""
    path = lock_path or install_set.lock
    name = relative(path)
    if not path.is_file():
        return [f"{name}: missing (the lock of {install_set.installed_by()}); {FIX}"]
    lock, problems = read_lock(path), []
    current = pins(install_set)
    for pin in current:
        locked = lock.versions.get(pin.name)
        if locked is None:
            problems.append(f"{name}: {pin.name} is not locked but {pin.source} pins {pin.text}; {FIX}")
        elif public(locked) != pin.version:
            problems.append(
                f"{name}: {pin.name} is locked at {locked} but {pin.source} pins {pin.version}; {FIX}"
            )
        elif pin.text not in lock.pins.get(pin.name, set()):
            problems.append(f"{name}: was not written for the pin {pin.text} ({pin.source}); {FIX}")
    for removed in sorted(set(lock.pins) - {pin.name for pin in current}):
        texts = ", ".join(sorted(lock.pins[removed]))
        problems.append(f"{name}: was written for the pin {texts}, which nothing pins now; {FIX}")
    return problems


def stale_all() -> list[str]:
    sets = install_sets()
    problems = [line for install_set in sets for line in stale(install_set)]
    known = {install_set.lock for install_set in sets}
    for orphan in sorted(set(LOCKS.glob("*.txt")) - known):
        problems.append(f"{relative(orphan)}: no install set uses it (a session gone?); {FIX}")
    return problems


def installed_problems(
    lock_path: Path, distributions: Iterable[tuple[str, str, Iterable[str]]], skip: Iterable[str] = ("pip",)
) -> list[str]:
    """Every installed package whose version is not the locked one, or that is not locked at all.
    ``distributions``: (name, version, the names it requires). ``skip``: pinned elsewhere (the Makefile's
    pip). A CUDA torch's own requirements (a GPU machine takes PyPI's torch) are not locked here."""
    lock, name, problems = read_lock(lock_path), relative(lock_path), []
    installed = {normalize(dist): (version, requires) for dist, version, requires in distributions}
    torch_requires = {normalize(req) for req in installed.get("torch", ("", []))[1]}
    for dist, (version, _) in sorted(installed.items()):
        locked = lock.versions.get(dist)
        if dist in {normalize(s) for s in skip} or (locked is None and dist in torch_requires):
            continue
        if locked is None:
            problems.append(
                f"{name}: {dist} {version} is installed in .venv but not locked; remove it "
                f"(.venv/bin/pip uninstall {dist}) or add its pin to pyproject.toml and run `make lock`"
            )
        elif public(version) != public(locked) or ("+" in locked and version != locked):
            problems.append(
                f"{name}: .venv has {dist} {version}, the lock {locked}; run `make setup` (it re-installs "
                f"when the lock changes), or `make lock` first if a pin changed"
            )
    return problems


def find_uv() -> str:
    here = os.pathsep.join([str(Path(sys.executable).parent), str(ROOT / ".venv/bin"), os.environ["PATH"]])
    uv = shutil.which("uv", path=here)
    if not uv:
        raise BadInput("uv not found (the venv's, or on PATH); run `make setup` once, or pip install uv")
    return uv


def header(install_set: InstallSet, current: list[Pin]) -> str:
    what = f"groups {', '.join(install_set.groups)}"
    if install_set.requirements:
        what = f"{install_set.requirements} + group {', '.join(install_set.groups)}"
    lines = [
        f"# {relative(install_set.lock)}: the versions {install_set.installed_by()} installs ({what}).",
        f"# Written by `make lock` (locks/lock.py) for Python {PYTHON_VERSION} on {PLATFORM}; do not edit.",
        "# The pins it was written for:",
        *(f"# pin: {pin.text}" for pin in current),
    ]
    return "\n".join(lines) + "\n"


def write(install_set: InstallSet, uv: str, upgrade: bool) -> int:
    """Resolve one set into its lock (kept as it was when uv fails); the number of packages locked."""
    current = pins(install_set)
    command = [uv, "pip", "compile", "--quiet", "--no-header", "--python-version", PYTHON_VERSION]
    command += ["--python-platform", PLATFORM]
    if install_set.requirements:
        command.append(install_set.requirements)
    command += [f"--group=pyproject.toml:{group}" for group in install_set.groups]
    if install_set.find_links and os.environ.get("PIP_FIND_LINKS"):
        command += [f"--find-links={link}" for link in os.environ["PIP_FIND_LINKS"].split()]
    if upgrade:
        command.append("--upgrade")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / install_set.lock.name
        if install_set.lock.is_file():
            # uv keeps the versions of the file it writes over; torch's without its label is PyPI's build.
            locked = install_set.lock.read_text()
            out.write_text(re.sub(r"^torch==.*$", "", locked, flags=re.MULTILINE))
        command += ["--output-file", str(out)]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        if done.returncode:
            reason = (done.stderr.strip().splitlines() or ["?"])[-1]
            raise BadInput(f"uv could not resolve {relative(install_set.lock)}: {reason}")
        body = re.sub(r"^(torch==[^+\s]+)\+\S+", r"\1", out.read_text(), flags=re.MULTILINE)
        out.write_text(body)
        cuda = cuda_through_torch(read_lock(out))
        if cuda:
            raise BadInput(
                f"{relative(install_set.lock)}: torch resolved to a CUDA build ({', '.join(cuda[:3])}, ...); "
                "set PIP_FIND_LINKS to the folder of the torch CPU wheel, as pip finds it"
            )
    text = header(install_set, current) + body
    if (
        not install_set.lock.is_file() or install_set.lock.read_text() != text
    ):  # make setup re-runs on a change
        install_set.lock.write_text(text)
    return len(read_lock(install_set.lock).versions)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check",
        nargs="*",
        metavar="SET",
        help="offline: name every stale lock (or those of SETs), exit 1 if any",
    )
    parser.add_argument("--upgrade", action="store_true", help="take the newest versions the pins allow")
    args = parser.parse_args(argv)
    try:
        if args.check is not None:
            sets = {install_set.name: install_set for install_set in install_sets()}
            unknown = sorted(set(args.check) - set(sets))
            if unknown:
                raise BadInput(
                    f"--check {' '.join(unknown)}: no such install set; choose from {', '.join(sets)}"
                )
            problems = [p for name in args.check for p in stale(sets[name])] if args.check else stale_all()
            current = ", ".join(relative(sets[name].lock) for name in args.check) + ": current"
            print(
                "\n".join(problems)
                or (current if args.check else f"locks: {len(sets)} install sets, all current")
            )
            return 1 if problems else 0
        uv, sets = find_uv(), install_sets()
        for install_set in sets:
            count = write(install_set, uv, args.upgrade)
            print(f"{relative(install_set.lock)}: {count} packages")
        for orphan in sorted(set(LOCKS.glob("*.txt")) - {s.lock for s in sets}):
            orphan.unlink()
            print(f"{relative(orphan)}: removed (no install set uses it)")
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
