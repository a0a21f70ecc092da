"""A local Docker daemon for the container tests, where none runs: Debian's ``dockerd`` as root.

``LocalDocker`` starts ``dockerd`` with its own data root, exec root and socket under a state folder, so
it never meets a system daemon's images or socket. Storage: ``overlay2`` where the state folder's file
system takes overlay mounts (ext4, xfs: a layer costs its own files), else ``vfs``, which works anywhere
(inside a container too) but copies the whole file system for every layer and container (measured here:
the cpu-ddp image builds in about 50 s on overlay2, over 5 minutes on vfs). It leaves the host's
networking alone: no ``docker0`` bridge, no iptables rules (``--bridge=none --iptables=false``); builds
and containers that need the network use the host's (``network_mode="host"``). ``stop()`` ends exactly
the process it started (dockerd stops the containerd it spawned) and removes the state folder unless kept.

Command line (state in ``.testbed/docker`` under the current folder unless ``--state-dir``)::

    python -m testbed.docker up        # prints the `export DOCKER_HOST=...` line
    python -m testbed.docker status
    python -m testbed.docker down
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker
from docker.errors import DockerException

from testbed.service import Service, run_cli

DEFAULT_STATE_DIR = Path(".testbed/docker")
STATE_FILE = "daemon.json"
LOG_FILE = "dockerd.log"
START_TIMEOUT_S = 60.0
STORAGE_DRIVERS = ("overlay2", "vfs")
SOCKET_PATH_MAX = 107  # a Unix socket's path (sun_path), less its terminating NUL
STOP_TIMEOUT_S = 30.0
SYSTEM_SOCKET = Path("/var/run/docker.sock")


class DockerError(RuntimeError):
    """The daemon could not be started (the message says why, with its log tail)."""


def reachable_daemon() -> tuple[docker.DockerClient | None, str]:
    """A client of the daemon the environment names (``DOCKER_HOST``, else the system socket) when it
    answers a ping; else ``(None, why)``."""
    if not os.environ.get("DOCKER_HOST") and not SYSTEM_SOCKET.exists():
        return None, f"no {SYSTEM_SOCKET} and DOCKER_HOST unset"
    client = None
    try:
        client = docker.from_env()
        client.ping()
    except DockerException as exc:
        if client is not None:
            client.close()
        return None, str(exc).splitlines()[0][:200]
    return client, ""


def cannot_start_reason() -> str | None:
    """Why this process cannot start a daemon (not root, no dockerd), or None when it can."""
    if os.geteuid() != 0:
        return "starting dockerd needs root (CI runs `make test` as root)"
    if not find_dockerd():
        return "dockerd is not installed (Debian's docker.io: run `make system-deps` as root)"
    return None


def find_dockerd() -> str | None:
    return shutil.which("dockerd", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))


class LocalDocker(Service):
    """``dockerd`` on a socket in ``state_dir``; a context manager that starts and stops it."""

    error = DockerError
    state_file = STATE_FILE
    stop_timeout_s = STOP_TIMEOUT_S

    def __init__(
        self, state_dir: Path = DEFAULT_STATE_DIR, keep: bool = False, storage_drivers=STORAGE_DRIVERS
    ):
        super().__init__(Path(state_dir), keep)
        self.storage_drivers = tuple(storage_drivers)
        self.storage_driver: str | None = None
        self.started_in_s: float | None = None

    @property
    def socket(self) -> Path:
        return self.state_dir / "docker.sock"

    @property
    def host(self) -> str:
        """The ``DOCKER_HOST`` value of this daemon."""
        return f"unix://{self.socket}"

    @property
    def pid(self) -> int | None:
        """dockerd's PID (None when not started)."""
        return self._pids.get("dockerd")

    @classmethod
    def attach(cls, state_dir: Path = DEFAULT_STATE_DIR) -> LocalDocker:
        """The daemon started earlier (``up``) whose state is in ``state_dir``."""
        state_file = Path(state_dir) / STATE_FILE
        state = cls._read_state(
            state_dir, f"no daemon state in {state_file}; start one with `python -m testbed.docker up`"
        )
        return cls(Path(state_dir))._adopt(state)

    def client(self, timeout: int = 600) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.host, timeout=timeout)

    def start(self) -> LocalDocker:
        """Start dockerd with the first storage driver that works; raise ``DockerError`` with the log tail
        of each attempt when none does."""
        reason = cannot_start_reason()
        if reason:
            raise DockerError(reason)
        self._replace_stale(f"{self.state_dir / STATE_FILE} exists: a daemon runs there; stop it first")
        longest = self.state_dir / "exec" / "containerd" / "containerd.sock.ttrpc"
        if len(str(longest)) > SOCKET_PATH_MAX:
            raise DockerError(
                f"state folder {self.state_dir} is too long for dockerd's sockets ({longest} is over "
                f"{SOCKET_PATH_MAX} characters); give a shorter one"
            )
        failures = []
        for driver in self.storage_drivers:
            try:
                return self._start(driver)
            except DockerError as exc:
                failures.append(f"--storage-driver={driver}: {exc}")
                self._remove_state_dir()
        raise DockerError("\n".join(failures))

    def _start(self, driver: str) -> LocalDocker:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._claim_state_dir()
        command = [
            find_dockerd(),
            f"--storage-driver={driver}",
            f"--data-root={self.state_dir / 'data'}",
            f"--exec-root={self.state_dir / 'exec'}",
            f"--pidfile={self.state_dir / 'dockerd.pid'}",
            f"--host={self.host}",
            "--bridge=none",
            "--iptables=false",
            "--ip-masq=false",
        ]
        started = time.monotonic()
        self.storage_driver = driver
        try:
            self._spawn("dockerd", command, self.state_dir / LOG_FILE)
            self._wait_until(self._answers, START_TIMEOUT_S, "dockerd did not answer")
        except BaseException:
            self.storage_driver = None
            self.stop()
            raise
        self.started_in_s = time.monotonic() - started
        self._save_state()
        return self

    def _state(self) -> dict[str, Any]:
        return {"pid": self.pid, "host": self.host, "storage_driver": self.storage_driver}

    def _answers(self) -> bool:
        """Whether the API answers ``/_ping`` with 200 (a raw request: the SDK's client, built on a socket
        that does not answer yet, leaks its connection)."""
        if not self.socket.exists():
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(5)
            try:
                connection.connect(str(self.socket))
                connection.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                return connection.recv(64).split(b"\r\n", 1)[0].split()[1:2] == [b"200"]
            except OSError:
                return False

    def _remove_state_dir(self) -> None:
        """Unmount what a daemon that did not stop cleanly left under the state folder, then remove it."""
        prefix = f"{self.state_dir}/"
        mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        shutil.rmtree(self.state_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """``up`` | ``status`` | ``down``."""
    commands = [
        ("up", _cli_up, "start a daemon that keeps running after this command"),
        ("status", _cli_status, "say whether it runs, and its DOCKER_HOST"),
        ("down", _cli_down, "stop it and remove its state folder"),
    ]
    description = __doc__.splitlines()[0]
    return run_cli(argv, "python -m testbed.docker", description, DEFAULT_STATE_DIR, commands, (DockerError,))


def _cli_up(args: argparse.Namespace) -> None:
    daemon = LocalDocker(args.state_dir, keep=True).start()
    print(f"dockerd up in {daemon.started_in_s:.1f} s ({daemon.storage_driver}, pid {daemon.pid})")
    print(f"export DOCKER_HOST={daemon.host}")


def _cli_status(args: argparse.Namespace) -> None:
    daemon = LocalDocker.attach(args.state_dir)
    state = "running" if daemon.running() else "not running (stale state; run down)"
    print(f"dockerd {state}: export DOCKER_HOST={daemon.host}")


def _cli_down(args: argparse.Namespace) -> None:
    LocalDocker.attach(args.state_dir).stop()
    print(f"dockerd stopped and {args.state_dir} removed")


if __name__ == "__main__":
    sys.exit(main())
