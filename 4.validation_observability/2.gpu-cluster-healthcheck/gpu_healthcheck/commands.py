"""Run the external tools the checks read, with timeouts, and say plainly when one is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

# Where EFA and nccl-tests tools live on the DLAMI and in the nccl-tests image, besides PATH.
EXTRA_PATHS = ("/opt/amazon/efa/bin", "/opt/nccl-tests", "/opt/nccl-tests/build", "/usr/local/cuda/bin")
DEFAULT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class CommandResult:
    """What a command did; ``found`` False when the program is not installed."""

    argv: tuple[str, ...]
    found: bool
    code: int | None = None
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.found and self.code == 0 and not self.timed_out

    def why(self) -> str:
        """One line on what went wrong (for a check's detail)."""
        name = self.argv[0]
        if not self.found:
            return f"{name} not found on PATH"
        if self.timed_out:
            return f"`{' '.join(self.argv)}` timed out"
        last = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return f"`{' '.join(self.argv)}` exited {self.code}: {last[-1] if last else 'no output'}"[:300]


def which(program: str, extra: Sequence[str] = ()) -> str | None:
    """The program's path on PATH, then ``extra`` folders, then EXTRA_PATHS."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *extra, *EXTRA_PATHS])
    return shutil.which(program, path=search)


def run(argv: Sequence[str], timeout: float = DEFAULT_TIMEOUT_S, extra: Sequence[str] = ()) -> CommandResult:
    """Run ``argv`` (its program looked up with ``which``) and capture everything."""
    path = which(argv[0], extra)
    if path is None:
        return CommandResult(tuple(argv), found=False)
    try:
        done = subprocess.run(
            [path, *argv[1:]], capture_output=True, text=True, timeout=timeout, check=False, errors="replace"
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        return CommandResult(tuple(argv), True, None, out, "", timed_out=True)
    return CommandResult(tuple(argv), True, done.returncode, done.stdout, done.stderr)


def run_pair(
    server_argv: Sequence[str],
    client_argv: Sequence[str],
    timeout: float = DEFAULT_TIMEOUT_S,
    start_delay_s: float = 1.0,
) -> tuple[CommandResult, CommandResult]:
    """Start ``server_argv``, run ``client_argv`` against it, and return both results (loopback tests)."""
    path = which(server_argv[0])
    if path is None:
        missing = CommandResult(tuple(server_argv), found=False)
        return missing, CommandResult(tuple(client_argv), found=False)
    server = subprocess.Popen(
        [path, *server_argv[1:]], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace"
    )
    time.sleep(start_delay_s)
    client = run(client_argv, timeout)
    try:
        out, err = server.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.kill()
        out, err = server.communicate()
        return CommandResult(tuple(server_argv), True, None, out, err, timed_out=True), client
    return CommandResult(tuple(server_argv), True, server.returncode, out, err), client
