"""testbed.service, the base of every started service: an early, explained failure when a daemon dies
while starting, TERM then KILL, a reused PID spared, a stale state replaced, the state folder's fate."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testbed.service import Service, alive

REPO_ROOT = Path(__file__).resolve().parents[2]
SH, SLEEP = shutil.which("sh"), shutil.which("sleep")


class Toy(Service):
    """One daemon: ``argv``, logging to ``toy.log``; attach-able through ``toy.json``."""

    error = ValueError
    state_file = "toy.json"
    stop_timeout_s = 0.5

    def __init__(self, argv: list[str], state_dir: Path | None = None, keep: bool = False):
        super().__init__(state_dir, keep, temp_prefix="toy-")
        self.argv = argv

    @classmethod
    def attach(cls, state_dir: Path) -> Toy:
        return cls([], state_dir)._adopt(cls._read_state(state_dir, "no toy here"))

    def start(self) -> Toy:
        self._replace_stale("a toy runs there")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._claim_state_dir()
        self._spawn("toy", self.argv, self.state_dir / "toy.log")
        return self


def test_a_daemon_that_dies_while_waited_for_fails_at_once_with_its_log() -> None:
    toy = Toy([SH, "-c", "echo no config here >&2; exit 3"]).start()
    started = time.monotonic()
    try:
        with pytest.raises(ValueError, match=r"^toy exited with 3:\nno config here$"):
            toy._wait_until(lambda: False, 30, "never")
    finally:
        toy.stop()
    assert time.monotonic() - started < 5
    assert not toy.state_dir.exists()


def test_waiting_too_long_says_what_was_last_seen_and_returns_the_checks_answer() -> None:
    with Toy([SH, "-c", f"echo listening; exec {SLEEP} 60"]) as toy:
        seen = []
        with pytest.raises(ValueError, match=r"^not ready \(saw \d+ polls\) within 0.3s:\nlistening$"):
            toy._wait_until(lambda: seen.append(1), 0.3, lambda: f"not ready (saw {len(seen)} polls)")
        assert toy._wait_until(lambda: 41 + 1, 1, "never") == 42
        pid = toy.pids["toy"]
        assert toy.running()
    assert not alive(pid) and not toy.running() and toy.pids == {}


def test_a_daemon_that_ignores_term_is_killed_with_its_process_group() -> None:
    toy = Toy([])
    child = toy.state_dir / "child"
    toy.argv = [SH, "-c", f"trap '' TERM; {SLEEP} 60 & echo $! > {child}; wait"]
    toy.start()
    try:
        toy._wait_until(lambda: child.is_file() and child.read_text().strip(), 10, "no child")
        daemon, grandchild = toy.pids["toy"], int(child.read_text())
        started = time.monotonic()
    finally:
        toy.stop()
    assert 0.5 <= time.monotonic() - started < 5
    assert not alive(daemon) and not alive(grandchild)


def test_attach_stops_the_recorded_daemon_and_spares_a_reused_pid(tmp_path: Path) -> None:
    first = Toy([SLEEP, "60"], tmp_path / "a", keep=True).start()
    state = json.loads((tmp_path / "a" / "toy.json").read_text())
    assert state["pids"] == first.pids and state["programs"] == {"toy": "sleep"}

    other = subprocess.Popen([SLEEP, "60"], start_new_session=True)
    try:
        # A state file whose PID now runs another program (the PID was reused): nothing is signalled.
        (tmp_path / "b").mkdir()
        reused = {"pids": {"toy": other.pid}, "programs": {"toy": "slurmd"}}
        (tmp_path / "b" / "toy.json").write_text(json.dumps(reused))
        Toy.attach(tmp_path / "b").stop()
        assert other.poll() is None and not (tmp_path / "b").exists()
    finally:
        other.kill()
        other.wait()

    attached = Toy.attach(tmp_path / "a")
    assert attached.running()
    attached.stop()
    assert not alive(first.pids["toy"]) and not (tmp_path / "a").exists()
    first.stop()  # the kept object: its daemon is gone already, nothing to do


def test_start_refuses_a_running_service_and_replaces_a_stale_one(tmp_path: Path) -> None:
    running = Toy([SLEEP, "60"], tmp_path / "s").start()
    try:
        with pytest.raises(ValueError, match="a toy runs there"):
            Toy([SLEEP, "60"], tmp_path / "s").start()
        os.kill(running.pids["toy"], 9)
        running._wait_gone("toy", 5)
        assert not running.running()
        (tmp_path / "s" / "leftover").write_text("of the stale one")
        again = Toy([SLEEP, "60"], tmp_path / "s").start()
        assert again.running() and not (tmp_path / "s" / "leftover").exists()
        again.stop()
    finally:
        running.stop()


def test_a_given_folder_is_kept_until_claimed_and_keep_keeps_it(tmp_path: Path) -> None:
    given = Toy([SLEEP, "60"], tmp_path / "given")
    given.stop()  # never started: a folder it did not make or claim is not its to remove
    (tmp_path / "given").mkdir()
    given.stop()
    assert (tmp_path / "given").is_dir()
    with Toy([SLEEP, "60"], keep=True) as kept:
        pass
    assert (kept.state_dir / "toy.log").is_file()
    shutil.rmtree(kept.state_dir)


def test_the_services_run_without_pytest() -> None:
    modules = "testbed.service, testbed.slurm, testbed.aws, testbed.docker, testbed.prometheus"
    modules += ", testbed.system, testbed.standins, testbed.walkthrough, testbed.kube"
    modules += ", testbed.moto_extensions"
    code = f"import sys, {modules}; sys.exit('pytest' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=False, capture_output=True)
    assert done.returncode == 0, done.stderr
