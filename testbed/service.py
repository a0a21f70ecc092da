"""What every service of the test bed shares: daemons spawned with logs to files, a readiness wait that
fails early with the logs' tail, TERM -> wait -> KILL, a state folder kept or removed, a context manager,
a JSON state file for ``attach``, and the ``up | status | down`` command line.

``Service`` is the base of ``LocalSlurm`` (munged, slurmctld, the slurmd), ``AwsEmulator`` (moto's
server), ``LocalPrometheus``, ``LocalNodeExporter`` and ``LocalDocker`` (dockerd). A subclass says how
to start (``start()``: ``_spawn`` each daemon, then ``_wait_until`` it answers) and what its state file
holds (``_state()``); stopping, reaping, ``running()``, ``pids`` and the log tail are the base's.

Processes are tracked by PID and, when this object did not spawn them (``attach`` in another process,
such as ``python -m testbed.slurm down``), by their program name (psutil): a PID is only signalled while it
still runs the program that was recorded for it, so a reused PID is never killed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self, TypeVar

import psutil

T = TypeVar("T")
POLL_S = 0.2


class Service:
    """Daemons started by this object, with their logs and state in ``state_dir``."""

    #: the exception class of the service's errors (each module has its own)
    error: type[Exception] = RuntimeError
    #: name of the JSON state file in ``state_dir`` (``attach`` reads it); None: no state file
    state_file: str | None = None
    #: how long a daemon gets to stop after SIGTERM before SIGKILL
    stop_timeout_s: float = 10.0

    def __init__(self, state_dir: Path | None = None, keep: bool = False, temp_prefix: str = "service-"):
        self.keep = keep
        # stop() removes state_dir unless kept, and only when this object made it or claimed it.
        self._owns_state_dir = state_dir is None
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix=temp_prefix)).resolve()
        self._pids: dict[str, int] = {}
        self._programs: dict[str, str] = {}  # each daemon's program, as the kernel names it (15 characters)
        self._procs: dict[str, subprocess.Popen] = {}
        self._logs: list[Path] = []

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what a subclass provides ------------------------------------------------------------

    def start(self) -> Self:
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        """What the state file records besides the PIDs (enough for ``attach``)."""
        return {}

    def _before_stop(self) -> None:
        """Runs first in ``stop()`` (e.g. cancel jobs while the daemons still answer)."""

    def _after_stop(self) -> None:
        """Runs after the daemons are gone, before the state folder is removed (e.g. kill leftovers)."""

    # -- processes ---------------------------------------------------------------------------

    @property
    def pids(self) -> dict[str, int]:
        """PIDs of the daemons this service started, by name."""
        return dict(self._pids)

    def running(self) -> bool:
        """True when every daemon this service started is alive."""
        return bool(self._pids) and not self._dead_daemons()

    def _spawn(
        self,
        name: str,
        argv: Sequence[str],
        log: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        program: str | None = None,
    ) -> subprocess.Popen:
        """Start one daemon in its own session, stdout and stderr appended to ``log``; record its PID.
        ``program``: the daemon's program when ``argv`` starts with a launcher that execs it."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [str(arg) for arg in argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=None if env is None else dict(env),
                cwd=cwd,
                start_new_session=True,
            )
        self._procs[name], self._pids[name] = proc, proc.pid
        # What the process's name will be (not read now: it may still name this process, exec sets it late).
        self._programs[name] = Path(str(program or argv[0])).name[:15]
        if log not in self._logs:
            self._logs.append(log)
        self._save_state()
        return proc

    def _dead_daemons(self) -> list[str]:
        """Names of recorded daemons that are no longer running (this process's children are reaped)."""
        return [name for name in self._pids if not self._alive(name)]

    def _alive(self, name: str) -> bool:
        proc = self._procs.get(name)
        return proc.poll() is None if proc is not None else alive(self._pids[name])

    def _wait_until(self, check: Callable[[], T], timeout: float, what: str | Callable[[], str]) -> T:
        """Poll ``check()`` until it returns something true, and return that.

        A daemon that exits meanwhile is an error at once (``<name> exited with <code>:`` and the
        logs' tail); so is ``timeout`` seconds passing (``<what> within <timeout>s:`` and the tail).
        ``what`` may be a function, to say what was last seen.
        """
        deadline = time.monotonic() + timeout
        while True:
            dead = self._dead_daemons()
            if dead:
                raise self.error(f"{', '.join(map(self._exit_status, dead))}:\n{self.log_tail()}")
            result = check()
            if result:
                return result
            if time.monotonic() > deadline:
                said = what() if callable(what) else what
                raise self.error(f"{said} within {timeout:g}s:\n{self.log_tail()}")
            time.sleep(POLL_S)

    def _exit_status(self, name: str) -> str:
        """``<name> exited with <code>`` (the code is known for a child of this process only)."""
        proc = self._procs.get(name)
        return f"{name} exited" if proc is None else f"{name} exited with {proc.returncode}"

    def _terminate(self, name: str) -> None:
        """SIGTERM one recorded daemon, SIGKILL its process group when it lingers past
        ``stop_timeout_s``, reap it. A daemon of an earlier process (``attach``) only while its PID
        still runs the program recorded for it: a child of this one keeps its PID until reaped."""
        pid = self._pids[name]
        recorded = self._programs.get(name)
        reused = name not in self._procs and recorded and program(pid) != recorded
        if not alive(pid) or reused:
            self._reap(name)
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not self._wait_gone(name, self.stop_timeout_s):
            # Spawned daemons lead their own session: their group holds what they started.
            with contextlib.suppress(ProcessLookupError):
                if _leads_group(pid):
                    os.killpg(pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
            self._wait_gone(name, 5.0)

    def _wait_gone(self, name: str, timeout: float) -> bool:
        proc = self._procs.get(name)
        if proc is None:
            return wait_dead([self._pids[name]], timeout)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def _reap(self, name: str) -> None:
        if name in self._procs:
            self._procs[name].poll()
        else:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self._pids[name], os.WNOHANG)

    def stop(self) -> None:
        """Stop exactly the daemons this service started (last started first), forget them, and remove
        the state folder unless kept or not this service's. Safe to call twice."""
        try:
            self._before_stop()
            for name in reversed(list(self._pids)):
                self._terminate(name)
            self._after_stop()
        finally:
            self._pids.clear()
            self._programs.clear()
            self._procs.clear()
            if not self.keep and self._owns_state_dir:
                self._remove_state_dir()

    # -- state folder and file ---------------------------------------------------------------

    @classmethod
    def attach(cls, state_dir: Path) -> Self:
        """The service an earlier ``start`` (another process's, say) recorded in ``state_dir``."""
        raise NotImplementedError

    def _replace_stale(self, already_up: str) -> None:
        """Refuse to start where a service of this kind runs (``already_up`` says so); stop and remove
        a stale one, whose daemons are gone."""
        if self.state_file and (self.state_dir / self.state_file).exists():
            previous = type(self).attach(self.state_dir)
            if previous.running():
                raise self.error(already_up)
            previous.stop()

    def _claim_state_dir(self) -> None:
        """From now on ``stop()`` removes ``state_dir`` (unless kept)."""
        self._owns_state_dir = True

    def _remove_state_dir(self) -> None:
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def _save_state(self) -> None:
        if self.state_file and self.state_dir.is_dir():
            state = {**self._state(), "pids": self._pids, "programs": self._programs}
            (self.state_dir / self.state_file).write_text(json.dumps(state, indent=2) + "\n")

    @classmethod
    def _read_state(cls, state_dir: Path, missing: str) -> dict[str, Any]:
        """The state file in ``state_dir``; the service's error saying ``missing`` when there is none."""
        path = Path(state_dir) / str(cls.state_file)
        fix = "pass the folder `up` wrote its state to"
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            raise _bad_input(cls.error(missing)) from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not a state file"
            raise _bad_input(cls.error(f"cannot read {path}: {reason}; {fix}")) from None
        if not isinstance(state, dict):
            raise _bad_input(cls.error(f"cannot read {path}: not a state file; {fix}"))
        return state

    def _adopt(self, state: Mapping[str, Any]) -> Self:
        """Take over the daemons a state file records (``attach``): ``stop()`` ends them."""
        self._pids = {name: int(pid) for name, pid in state.get("pids", {}).items()}
        self._programs = dict(state.get("programs", {}))
        self._claim_state_dir()
        return self

    # -- logs --------------------------------------------------------------------------------

    def _log_paths(self) -> list[Path]:
        """The log files behind ``log_tail`` (by default those the daemons were spawned with)."""
        return list(self._logs)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the log (of each log, headed by its path, when there are several)."""
        paths = self._log_paths()
        if len(paths) == 1:
            return tail(paths[0], lines) if paths[0].is_file() else "(no log)"
        parts = [(path, tail(path, lines)) for path in paths if path.is_file()]
        return "\n".join(f"--- {path}\n{text}" for path, text in parts if text) or "(no log)"


# -- processes of this machine (psutil) ---------------------------------------------------------


def alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie (this machine's init does not reap orphans)."""
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.Error:
        return False


def program(pid: int) -> str:
    """Base name of a process's program as the kernel names it (15 characters): slurmd, slurmstepd, ...
    ('' if gone)."""
    try:
        name = psutil.Process(pid).name()
    except psutil.Error:
        return ""
    return "slurmstepd" if name.startswith("slurmstepd") else name


def wait_dead(pids: Iterable[int], timeout: float) -> bool:
    """Wait until none of ``pids`` is alive; False when ``timeout`` seconds pass first."""
    pids = list(pids)
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S / 4)
    return True


def kill(pids: Iterable[int]) -> None:
    """SIGKILL processes and wait until they are gone."""
    pids = list(pids)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_dead(pids, 10.0)


def _leads_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a text file ('' when it cannot be read)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return tail_text(text, lines)


def tail_text(text: str, lines: int = 20) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


# -- command line --------------------------------------------------------------------------------


def run_cli(
    argv: Sequence[str] | None,
    prog: str,
    description: str,
    default_state_dir: Path,
    commands: Sequence[tuple[str, Callable[[argparse.Namespace], int | None], str]],
    errors: tuple[type[Exception], ...],
    options: Callable[[str, argparse.ArgumentParser], None] | None = None,
) -> int:
    """The ``up | status | down`` command line of a service: one sub-command per entry of ``commands``
    (name, function, help), each with ``--state-dir``; ``options(name, parser)`` adds the rest. An
    error of ``errors`` prints one ``error: ...`` line and exits 2 when the input was wrong (a
    ``--state-dir`` with no state of the service), else 1 (a daemon that would not start or stop)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    subcommands = parser.add_subparsers(dest="command", required=True)
    for name, func, text in commands:
        sub = subcommands.add_parser(name, help=text)
        sub.set_defaults(func=func)
        sub.add_argument("--state-dir", type=Path, default=default_state_dir, help="default: %(default)s")
        if options is not None:
            options(name, sub)
    ns = parser.parse_args(argv)
    try:
        return ns.func(ns) or 0
    except errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if getattr(exc, "bad_input", False) else 1


def _bad_input(error: Exception) -> Exception:
    """``error``, marked as one about the command's input (run_cli exits 2 on it)."""
    error.bad_input = True  # type: ignore[attr-defined]
    return error
