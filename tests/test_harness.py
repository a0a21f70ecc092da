"""The harness itself: `--keep-artifacts=t` keeps what tests create and says where; markers are strict."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pytest_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_keep_artifacts_keeps_the_session_folder_and_prints_it():
    # A test that writes into its run folder (the `run_dir` fixture, under the session's artifacts).
    target = ["3.test_cases/pytorch/cpu-ddp/tests/test_training.py", "-k", "bad_input and nope"]
    kept = pytest_run("--keep-artifacts=t", *target)
    assert kept.returncode == 0, kept.stdout[-2000:]
    match = re.search(r"artifacts kept in (\S+)", kept.stdout)
    assert match, kept.stdout[-2000:]
    folder = Path(match.group(1))
    try:
        assert folder.is_dir()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    plain = pytest_run(*target)
    assert plain.returncode == 0 and "artifacts kept" not in plain.stdout


def test_unknown_markers_are_errors(tmp_path):
    probe = ROOT / "tests" / f"test_probe_{tmp_path.name}.py"
    probe.write_text("import pytest\n\n\n@pytest.mark.not_a_marker\ndef test_x():\n    pass\n")
    try:
        result = pytest_run(str(probe.relative_to(ROOT)))
    finally:
        probe.unlink()
    assert result.returncode != 0 and "not_a_marker" in result.stdout + result.stderr


def test_make_test_runs_every_default_session_once():
    """`make test` runs `nox -t main` beside `nox -t side`: together they are nox's default sessions,
    each in one of them, so a session added to the noxfile is never left out of make test."""

    def listed(*selection: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-m", "nox", "-l", "--json", *selection],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return [session["name"] for session in json.loads(done.stdout)]

    main, side = listed("-t", "main"), listed("-t", "side")
    defaults = listed()  # nox.options.sessions: what plain `nox` runs
    assert not set(main) & set(side), set(main) & set(side)
    assert sorted(main + side) == sorted(defaults), defaults
    recipe = (ROOT / "Makefile").read_text().split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "$(NOX) -t main;" in recipe and "$(NOX) -t side >" in recipe


def test_the_lanes_split_the_suite_and_the_side_lane_holds_no_test_case():
    """`make test` runs the suite in two lanes at once (`--lane main|side`, conftest.py): each test is in
    one; the side lane holds the test bed's, the repository's and the AWS architectures' tests only."""

    def collected(*lane: str) -> set[str]:
        done = pytest_run("--collect-only", *lane, "tests", "testbed/tests", "1.architectures")
        assert done.returncode == 0, done.stdout[-2000:]
        return {line for line in done.stdout.splitlines() if "::" in line}

    side, main, every = collected("--lane", "side"), collected("--lane", "main"), collected()
    assert len(side) > 300 and not side & main and side | main == every
    assert {test.split("/")[0] for test in side} == {"tests", "testbed", "1.architectures"}
    assert not any(
        test.startswith(("tests/test_make_run.py", "testbed/tests/test_docker.py")) for test in side
    )
    assert not any(test.startswith("1.architectures/2.aws-parallelcluster/") for test in side)


def test_a_missing_system_program_skips_here_and_fails_under_ci(tmp_path):
    """testbed.system.require_programs raises a plain exception (no pytest in the test bed's runtime); the
    root conftest applies the policy: a skip naming the fix, or a failure when CI=true."""
    probe = ROOT / "tests" / f"test_probe_{tmp_path.name}.py"
    probe.write_text(
        "from testbed.system import require_programs\n\n\n"
        "def test_x():\n    require_programs('probe', 'no-such-program-xyz')\n"
    )
    try:
        skipped, failed = (
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-q",
                    "-rs",
                    "-p",
                    "no:cacheprovider",
                    str(probe.relative_to(ROOT)),
                ],
                cwd=ROOT,
                env={**{k: v for k, v in os.environ.items() if k != "CI"}, **ci},
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            for ci in ({}, {"CI": "true"})
        )
    finally:
        probe.unlink()
    message = "probe unavailable: no-such-program-xyz not found; run `sudo make system-deps`"
    assert skipped.returncode == 0 and "1 skipped" in skipped.stdout and message in skipped.stdout
    assert failed.returncode == 1 and message in failed.stdout and "Traceback" not in failed.stdout
