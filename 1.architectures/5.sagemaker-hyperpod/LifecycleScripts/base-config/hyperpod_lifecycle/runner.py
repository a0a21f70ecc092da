"""Everything that touches the system goes through a runner, so tests can drive the real step logic.

``SystemRunner`` runs commands and reads files under ``/``; a test passes its own runner with a fake
root folder. ``run_steps`` executes steps in order with bounded retries and exponential backoff and
prints exactly one parseable status line per step::

    LIFECYCLE step=mount_fsx status=changed attempts=1 seconds=0.42 detail="mounted ... on /fsx"

``status`` is ``changed``, ``unchanged`` (already in place: nothing was done), ``skipped`` (does
not apply to this node, with the reason) or ``failed`` (after the last attempt).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO


@dataclass(frozen=True)
class CommandResult:
    """Exit status and output of one command."""

    returncode: int
    stdout: str = ""
    stderr: str = ""


class StepError(RuntimeError):
    """One attempt of a step failed; the message is one line."""


class LifecycleError(RuntimeError):
    """A step failed after its last attempt; the message is the one-line error the user sees."""


class SystemRunner:
    """Runs commands on this machine; files are read and written under ``root``."""

    def __init__(self, root: str | Path = "/") -> None:
        self.root = Path(root)

    def path(self, absolute: str) -> Path:
        """The real location of an absolute path under this runner's root."""
        return self.root / absolute.lstrip("/")

    def run(self, argv: Sequence[str], timeout: float = 900) -> CommandResult:
        """Run ``argv``; never raises for a non-zero exit (see :func:`check`)."""
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        try:
            done = subprocess.run(
                list(argv), capture_output=True, text=True, timeout=timeout, env=env, check=False
            )
        except FileNotFoundError:
            return CommandResult(127, "", f"{argv[0]}: command not found")
        except subprocess.TimeoutExpired:
            return CommandResult(124, "", f"timed out after {timeout:g}s")
        return CommandResult(done.returncode, done.stdout, done.stderr)

    def which(self, name: str) -> str | None:
        """The program's path on PATH (and the sbin folders), or None."""
        path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/local/sbin"])
        return shutil.which(name, path=path)

    def sleep(self, seconds: float) -> None:
        """Wait between attempts (tests record instead)."""
        time.sleep(seconds)


def check(runner: SystemRunner, argv: Sequence[str]) -> str:
    """Run a command; StepError with its last stderr line when it fails. Returns stdout."""
    result = runner.run(argv)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        reason = lines[-1] if lines else "no output"
        raise StepError(f"`{' '.join(argv)}` exited {result.returncode}: {reason}")
    return result.stdout


def write_if_changed(runner: SystemRunner, absolute: str, text: str, mode: int = 0o644) -> bool:
    """Write a file atomically when its content differs; True when it was written."""
    path = runner.path(absolute)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(mode)
    os.replace(tmp, path)
    return True


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts with exponential backoff: base, 2*base, 4*base ... capped at max_delay_s."""

    attempts: int = 5
    base_delay_s: float = 2.0
    max_delay_s: float = 60.0

    def delay(self, failed_attempt: int) -> float:
        """Seconds to wait after attempt ``failed_attempt`` (1-based) failed."""
        return min(self.base_delay_s * 2 ** (failed_attempt - 1), self.max_delay_s)


@dataclass
class Step:
    """One lifecycle step: when it applies, whether it is already in place, and how to apply it."""

    name: str
    summary: str
    skip_reason: Callable[[object], str | None]
    done: Callable[[object], bool]
    apply: Callable[[object], str]
    plan: Callable[[object], str]


def status_line(step: str, status: str, attempts: int, seconds: float, detail: str) -> str:
    """``LIFECYCLE step=... status=... attempts=N seconds=S detail="..."`` (detail JSON-quoted)."""
    one_line = " ".join(detail.split())
    return (
        f"LIFECYCLE step={step} status={status} attempts={attempts} seconds={seconds:.2f} "
        f"detail={json.dumps(one_line)}"
    )


def _attempt(step: Step, ctx: object) -> str:
    """Apply once and confirm the result is in place (a step that claims success but is not is a failure)."""
    detail = step.apply(ctx)
    if not step.done(ctx):
        raise StepError(f"{step.name} ran but its result is not in place")
    return detail


def run_step(step: Step, ctx: object, runner: SystemRunner, policy: RetryPolicy, out: TextIO) -> str:
    """Run one step with retries; print its status line; return the status. LifecycleError on failure."""
    started = time.monotonic()
    try:
        reason = step.skip_reason(ctx)
        in_place = not reason and step.done(ctx)
    except StepError as exc:  # an input the step cannot work with: retrying will not help
        print(status_line(step.name, "failed", 0, time.monotonic() - started, str(exc)), file=out)
        raise LifecycleError(f"step {step.name} failed: {exc}") from None
    if reason:
        print(status_line(step.name, "skipped", 0, 0.0, reason), file=out, flush=True)
        return "skipped"
    if in_place:
        print(
            status_line(step.name, "unchanged", 0, time.monotonic() - started, "already in place"), file=out
        )
        return "unchanged"
    for attempt in range(1, policy.attempts + 1):
        try:
            detail = _attempt(step, ctx)
        except StepError as exc:
            if attempt == policy.attempts:
                print(
                    status_line(step.name, "failed", attempt, time.monotonic() - started, str(exc)), file=out
                )
                raise LifecycleError(
                    f"step {step.name} failed after {attempt} attempts: {exc}; fix the cause and rerun "
                    "on_create.sh (finished steps are skipped)"
                ) from None
            delay = policy.delay(attempt)
            print(
                f"lifecycle: {step.name} attempt {attempt} failed ({exc}); retrying in {delay:g}s",
                file=sys.stderr,
            )
            runner.sleep(delay)
            continue
        print(
            status_line(step.name, "changed", attempt, time.monotonic() - started, detail),
            file=out,
            flush=True,
        )
        return "changed"
    raise AssertionError("unreachable")  # pragma: no cover


def run_steps(
    steps: Sequence[Step], ctx: object, runner: SystemRunner, policy: RetryPolicy, out: TextIO
) -> dict[str, str]:
    """Run the steps in order, stopping at the first failure; {step: status}."""
    return {step.name: run_step(step, ctx, runner, policy, out) for step in steps}
