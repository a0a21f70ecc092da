"""Take a node out of service and back, through scontrol; reasons say which check asked for it."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

REASON_PREFIXES = ("healthcheck", "quarantine")
MAX_REASON = 200


class SlurmActionError(RuntimeError):
    """scontrol or sinfo failed; the message has their stderr."""


def _slurm(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError:
        raise SlurmActionError(
            f"{argv[0]} not found; run this on a Slurm node (PATH needs the Slurm client)"
        ) from None
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip() or f"exit {done.returncode}").splitlines()[-1]
        raise SlurmActionError(f"`{' '.join(argv)}` failed: {said}")  # its last line: one error line
    return done.stdout


def drain(node: str, reason: str) -> str:
    """DRAIN ``node`` with ``reason`` (running jobs finish, no new ones start); returns the reason set."""
    reason = " ".join(reason.split())[:MAX_REASON]
    _slurm(["scontrol", "update", f"NodeName={node}", "State=DRAIN", f"Reason={reason}"])
    return reason


def resume(node: str) -> None:
    """Return ``node`` to service."""
    _slurm(["scontrol", "update", f"NodeName={node}", "State=RESUME"])


@dataclass(frozen=True)
class NodeState:
    """A node as sinfo shows it."""

    name: str
    state: str
    reason: str

    @property
    def out_of_service(self) -> bool:
        return self.state.startswith(("drain", "down", "fail"))

    @property
    def by_healthcheck(self) -> bool:
        return self.reason.startswith(REASON_PREFIXES)


def nodes(names: list[str] | None = None) -> list[NodeState]:
    """Every node (or ``names``) with its state and reason."""
    argv = ["sinfo", "--noheader", "--Node", "--format=%N|%T|%E"]
    if names:
        argv.append(f"--nodes={','.join(names)}")
    found = {}
    for line in _slurm(argv).splitlines():
        name, state, reason = [*line.split("|", 2), "", ""][:3]
        found[name.strip()] = NodeState(
            name.strip(),
            state.strip().rstrip("*~#!%$@^-"),
            "" if reason.strip() == "none" else reason.strip(),
        )
    return list(found.values())
