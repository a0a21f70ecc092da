"""The lock files (``locks/*.txt``, written by ``make lock``): one per install set, each current with the
pins it was written for, the project venv installed at the locked versions, no CUDA package brought in by
torch, and every install path taking its lock as a constraint. Offline: the check reads files only."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("lock_under_test", ROOT / "locks" / "lock.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


lock = _load()
SETS = {install_set.name: install_set for install_set in lock.install_sets()}


def test_every_lock_is_current():
    problems = lock.stale_all()
    assert not problems, "stale locks:\n" + "\n".join(problems)


def test_every_session_that_installs_has_a_lock():
    noxfile = (ROOT / "noxfile.py").read_text()
    assert set(SETS) == {"venv", "lint", "security", "pcluster", "docs", *lock.framework_cases()}
    groups = set(re.findall(r'dependency_groups\(PYPROJECT, "([\w-]+)"\)', noxfile))
    assert groups == {g for name, gs in lock.GROUP_SETS.items() if name != "venv" for g in gs} | {
        lock.CASE_TESTS_GROUP
    }
    assert {install_set.lock for install_set in SETS.values()} == set((ROOT / "locks").glob("*.txt"))


def test_every_install_takes_its_lock():
    """Each ``session.install`` of the noxfile, and each pip install of the Makefile's setup, passes the
    lock as a constraint; a lock change re-runs setup."""
    installs = [line for line in (ROOT / "noxfile.py").read_text().splitlines() if "session.install(" in line]
    assert len(installs) == 5, installs
    assert all('session.install("-c", lock(' in line for line in installs), installs
    makefile = (ROOT / "Makefile").read_text()
    setup = makefile.split("\n$(VENV)/.setup-done:", 1)[1].split("\n\n", 1)[0]
    assert "locks/venv.txt" in setup.splitlines()[0]
    pip_installs = [line for line in setup.splitlines() if "--group" in line]
    assert [re.search(r"--group (\S+)", line)[1] for line in pip_installs] == list(lock.GROUP_SETS["venv"])
    assert all("-c locks/venv.txt" in line for line in pip_installs), pip_installs
    assert re.search(r"^lock: .*## ", makefile, re.MULTILINE) and "locks/lock.py" in makefile


def test_no_cuda_package_through_torch():
    """Locks are resolved against the local CPU wheel: torch's line has no local label (the same lock
    installs PyPI's build on a GPU machine), and no nvidia-*, cuda-* or triton package is there for torch
    (torchtitan pins triton itself; nemo-run's nvidia-modelopt brings nvidia-ml-py)."""
    for name, install_set in SETS.items():
        locked = lock.read_lock(install_set.lock)
        if "torch" in locked.versions:
            assert locked.versions["torch"] == "2.13.0", name
        assert lock.cuda_through_torch(locked) == [], name


def test_a_cuda_torch_is_recognized(tmp_path):
    cuda = tmp_path / "cuda.txt"
    cuda.write_text(
        "torch==2.13.0\n    # via -r requirements.txt\ncuda-toolkit==13.0.3.0\n    # via torch\n"
        "nvidia-cublas==13.1.1.3\n    # via\n    #   cuda-toolkit\n    #   torch\n"
        "nvidia-modelopt==0.37.0\n    # via -r requirements.txt\nnvidia-ml-py==13.615.71\n"
        "    # via nvidia-modelopt\ntriton==3.9.0\n    # via\n    #   -r requirements.txt\n    #   torch\n"
    )
    assert lock.cuda_through_torch(lock.read_lock(cuda)) == ["cuda-toolkit", "nvidia-cublas"]


def test_project_venv_has_the_locked_versions():
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        pytest.skip(f"not run in the project venv ({sys.prefix}); it checks .venv's packages")
    distributions = [
        (dist.metadata["Name"], dist.version, _requires(dist)) for dist in importlib.metadata.distributions()
    ]
    problems = lock.installed_problems(SETS["venv"].lock, distributions)
    assert not problems, "\n".join(problems)


def _requires(dist: importlib.metadata.Distribution) -> list[str]:
    return [re.match(r"[A-Za-z0-9._-]+", req)[0] for req in dist.requires or []]


def _copy_with(tmp_path: Path, old: str, new: str) -> Path:
    text = SETS["venv"].lock.read_text()
    assert text.count(old) == 1, old
    copy = tmp_path / "venv.txt"
    copy.write_text(text.replace(old, new))
    return copy


def test_a_changed_locked_version_is_stale(tmp_path):
    numpy = lock.read_lock(SETS["venv"].lock).versions["numpy"]
    copy = _copy_with(tmp_path, f"\nnumpy=={numpy}\n", "\nnumpy==1.0.0\n")
    problems = lock.stale(SETS["venv"], copy)
    assert problems == [
        f"{copy}: numpy is locked at 1.0.0 but pyproject.toml group train pins {numpy}; "
        "rewrite the locks with `make lock`"
    ]


def test_a_changed_pin_is_stale(tmp_path):
    """A pin bumped in pyproject.toml without `make lock`: the lock records (and locks) the old one."""
    numpy = lock.read_lock(SETS["venv"].lock).versions["numpy"]
    copy = _copy_with(tmp_path, f"# pin: numpy=={numpy}\n", "# pin: numpy==2.0.0\n")
    copy.write_text(copy.read_text().replace(f"\nnumpy=={numpy}\n", "\nnumpy==2.0.0\n"))
    copy.write_text(copy.read_text() + "# pin: leftpad==1.0\n")
    problems = lock.stale(SETS["venv"], copy)
    assert any("numpy is locked at 2.0.0" in line and "make lock" in line for line in problems), problems
    assert any("leftpad==1.0, which nothing pins now" in line for line in problems), problems
    assert not lock.stale(SETS["venv"])


def test_a_missing_lock_is_stale(tmp_path):
    (problem,) = lock.stale(SETS["jax"], tmp_path / "jax.txt")
    assert "missing" in problem and "`nox -s jax`" in problem and "make lock" in problem


def test_installed_packages_against_the_lock():
    """What the venv check reports: a version that differs, a package nobody locked; not torch's local
    label, not pip (the Makefile pins it), not a CUDA torch's own nvidia packages (a GPU machine)."""
    versions = lock.read_lock(SETS["venv"].lock).versions
    good = [(name, version, []) for name, version in versions.items() if name != "torch"]
    cpu_torch = ("torch", "2.13.0+cpu", ["filelock"])
    assert lock.installed_problems(SETS["venv"].lock, [*good, cpu_torch, ("pip", "25.3", [])]) == []
    cuda_torch = ("torch", "2.13.0", ["filelock", "nvidia-cublas"])
    assert (
        lock.installed_problems(SETS["venv"].lock, [*good, cuda_torch, ("nvidia-cublas", "13.0", [])]) == []
    )
    numpy = versions["numpy"]
    bad = [(n, "1.0" if n == "numpy" else v, r) for n, v, r in good] + [
        cpu_torch,
        ("pytest-xdist", "3.8.0", []),
    ]
    problems = lock.installed_problems(SETS["venv"].lock, bad)
    assert len(problems) == 2, problems
    assert f".venv has numpy 1.0, the lock {numpy}; run `make setup`" in problems[0]
    assert "pytest-xdist 3.8.0 is installed in .venv but not locked" in problems[1]


def test_bad_pin_line_is_one_error():
    with pytest.raises(lock.BadInput, match=r"x\.txt: 'torch>=2' is not a pin; write it as name==version"):
        lock.parse_pin("torch>=2", "x.txt")


def test_check_command_offline():
    done = subprocess.run(
        [sys.executable, "locks/lock.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == f"locks: {len(SETS)} install sets, all current"
    bad = subprocess.run(
        [sys.executable, "locks/lock.py", "--nope"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and "error:" in bad.stderr.splitlines()[-1] and "Traceback" not in bad.stderr
