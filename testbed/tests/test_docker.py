"""testbed.docker: a dockerd of its own (as root), the next storage driver when one fails, the reason when
none works, and nothing left behind (process, mounts, state folder)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.docker import DockerError, LocalDocker, cannot_start_reason

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(bool(cannot_start_reason()), reason=str(cannot_start_reason()))


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A state folder short enough for dockerd's sockets (pytest's tmp_path is too long for them)."""
    path = Path(tempfile.mkdtemp(prefix="dtr-docker-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def mounts_under(path: Path) -> list[str]:
    return [
        line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines() if str(path) in line
    ]


def test_a_failing_storage_driver_falls_back_and_stop_leaves_nothing(short_dir):
    daemon = LocalDocker(short_dir / "docker", storage_drivers=("no-such-driver", "vfs"))
    with daemon:
        assert daemon.storage_driver == "vfs" and daemon.running()
        client = daemon.client()
        assert client.info()["Driver"] == "vfs"
        assert {network.name for network in client.networks.list()} == {"host", "none"}  # no bridge
        client.close()
        pid = daemon.pid
    assert not Path(f"/proc/{pid}").exists()
    assert not (short_dir / "docker").exists() and mounts_under(short_dir) == []


def test_no_working_driver_names_each_attempt_with_its_log(short_dir, tmp_path):
    with pytest.raises(DockerError, match="too long for dockerd's sockets"):
        LocalDocker(tmp_path / ("x" * 80)).start()
    with pytest.raises(DockerError) as error:
        LocalDocker(short_dir / "docker", storage_drivers=("bogus",)).start()
    message = str(error.value)
    assert message.startswith("--storage-driver=bogus: dockerd exited with 1:") and "bogus" in message
    assert not (short_dir / "docker").exists()


def test_command_line_up_status_down(short_dir):
    state = short_dir / "state"

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "testbed.docker", *args, "--state-dir", str(state)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    up = cli("up")
    assert up.returncode == 0, up.stderr
    assert f"export DOCKER_HOST=unix://{state / 'docker.sock'}" in up.stdout
    status = cli("status")
    assert status.returncode == 0 and status.stdout.startswith("dockerd running:"), status
    down = cli("down")
    assert down.returncode == 0 and not state.exists(), down
    again = cli("down")
    assert again.returncode == 2 and again.stderr.startswith("error: no daemon state in ")
