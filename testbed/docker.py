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
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import docker
from docker.errors import DockerException

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


class LocalDocker:
    """``dockerd`` on a socket in ``state_dir``; a context manager that starts and stops it."""

    def __init__(
        self, state_dir: Path = DEFAULT_STATE_DIR, keep: bool = False, storage_drivers=STORAGE_DRIVERS
    ):
        self.state_dir = Path(state_dir).resolve()
        self.keep = keep
        self.storage_drivers = tuple(storage_drivers)
        self.storage_driver: str | None = None
        self.pid: int | None = None
        self.started_in_s: float | None = None
        self._process: subprocess.Popen | None = None

    @property
    def socket(self) -> Path:
        return self.state_dir / "docker.sock"

    @property
    def host(self) -> str:
        """The ``DOCKER_HOST`` value of this daemon."""
        return f"unix://{self.socket}"

    @classmethod
    def attach(cls, state_dir: Path = DEFAULT_STATE_DIR) -> LocalDocker:
        """The daemon started earlier (``up``) whose state is in ``state_dir``."""
        state_file = Path(state_dir) / STATE_FILE
        if not state_file.is_file():
            raise DockerError(
                f"no daemon state in {state_file}; start one with `python -m testbed.docker up`"
            )
        daemon = cls(Path(state_dir))
        daemon.pid = json.loads(state_file.read_text())["pid"]
        return daemon

    def __enter__(self) -> LocalDocker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def client(self, timeout: int = 600) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.host, timeout=timeout)

    def start(self) -> LocalDocker:
        """Start dockerd with the first storage driver that works; raise ``DockerError`` with the log tail
        of each attempt when none does."""
        reason = cannot_start_reason()
        if reason:
            raise DockerError(reason)
        if (self.state_dir / STATE_FILE).exists():
            raise DockerError(f"{self.state_dir / STATE_FILE} exists: a daemon runs there; stop it first")
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
                self._remove_state()
        raise DockerError("\n".join(failures))

    def _start(self, driver: str) -> LocalDocker:
        self.state_dir.mkdir(parents=True, exist_ok=True)
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
        with (self.state_dir / LOG_FILE).open("w") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._process, self.pid = process, process.pid
        while not self._answers():
            if process.poll() is not None:
                self.pid = None
                raise DockerError(f"dockerd exited with {process.returncode}:\n{self.log_tail()}")
            if time.monotonic() - started > START_TIMEOUT_S:
                tail = self.log_tail()
                self.stop()
                raise DockerError(f"dockerd did not answer within {START_TIMEOUT_S:.0f}s:\n{tail}")
            time.sleep(0.2)
        self.started_in_s = time.monotonic() - started
        self.storage_driver = driver
        state = {"pid": self.pid, "host": self.host, "storage_driver": driver}
        (self.state_dir / STATE_FILE).write_text(json.dumps(state) + "\n")
        return self

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

    def log_tail(self, lines: int = 20) -> str:
        log = self.state_dir / LOG_FILE
        return (
            "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.is_file() else "(no log)"
        )

    def running(self) -> bool:
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self) -> None:
        """Stop the daemon this object started (SIGTERM: it stops its containers and containerd)."""
        if self.pid is not None and self.running():
            os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while self.running() and time.monotonic() < deadline:
                _reap(self.pid)
                time.sleep(0.1)
            if self.running():
                os.killpg(self.pid, signal.SIGKILL)
            _reap(self.pid)
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=10)
            self._process = None
        self.pid = None
        (self.state_dir / STATE_FILE).unlink(missing_ok=True)
        if not self.keep:
            self._remove_state()

    def _remove_state(self) -> None:
        """Unmount what a daemon that did not stop cleanly left under the state folder, then remove it."""
        prefix = f"{self.state_dir}/"
        mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        shutil.rmtree(self.state_dir, ignore_errors=True)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def main(argv: list[str] | None = None) -> int:
    """``up`` | ``status`` | ``down``."""
    parser = argparse.ArgumentParser(prog="python -m testbed.docker", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "status", "down"])
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            daemon = LocalDocker(args.state_dir, keep=True).start()
            print(f"dockerd up in {daemon.started_in_s:.1f} s ({daemon.storage_driver}, pid {daemon.pid})")
            print(f"export DOCKER_HOST={daemon.host}")
        elif args.command == "status":
            daemon = LocalDocker.attach(args.state_dir)
            state = "running" if daemon.running() else "not running (stale state; run down)"
            print(f"dockerd {state}: export DOCKER_HOST={daemon.host}")
        else:
            LocalDocker.attach(args.state_dir).stop()
            print(f"dockerd stopped and {args.state_dir} removed")
    except DockerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
