"""A run folder has one owner, and workers die with their launcher (the shared run_folder.py and
distributed.py, tested here once for every trainer that carries them)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.ports import free_port

TEST_CASE_DIR = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SLOW = ["--preset", "tiny", "--max-steps", "100000", "--step-delay-s", "0.2", "--checkpoint-every", "1000"]


def wait_for(condition, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) counts as gone.
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().split(")")[-1].split()[0] != "Z"


@pytest.fixture
def launcher(run_dir) -> Iterator[subprocess.Popen]:
    """torchrun with 2 ranks training slowly into ``run_dir``, in a session of its own (as under a shell)."""
    process = subprocess.Popen(
        [
            str(BIN / "torchrun"),
            "--nproc-per-node",
            "2",
            "--rdzv-backend",
            "c10d",
            "--rdzv-endpoint",
            f"127.0.0.1:{free_port()}",
            "src/train.py",
            "--run-dir",
            str(run_dir),
            *SLOW,
        ],
        cwd=TEST_CASE_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    ranks = [run_dir / "ranks" / f"rank{r}.json" for r in (0, 1)]
    wait_for(lambda: all(p.exists() for p in ranks) and (run_dir / "metrics.jsonl").exists(), "both ranks")
    process.worker_pids = [json.loads(p.read_text())["pid"] for p in ranks]
    yield process
    for pid in [process.pid, *process.worker_pids]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=30)


def test_a_second_job_into_a_folder_in_use_stops_with_one_line(launcher, run_dir):
    second = subprocess.run(
        [sys.executable, "src/train.py", "--preset", "tiny", "--max-steps", "5", "--run-dir", str(run_dir)],
        cwd=TEST_CASE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = second.stderr.strip().splitlines()
    assert second.returncode == 2 and len(lines) == 1, second.stderr[-2000:]
    assert lines[0].startswith(f"error: run folder {run_dir} is in use by PID {launcher.worker_pids[0]} on ")
    assert lines[0].endswith("wait for it to end or choose another --run-dir")
    assert "summary" not in (run_dir / "metrics.jsonl").read_text()  # the first run is untouched


def test_workers_die_with_their_launcher_and_the_folder_is_free_again(launcher, run_dir):
    os.kill(launcher.pid, signal.SIGKILL)  # what the OOM killer or kill -9 of torchrun's group does
    launcher.wait(timeout=30)
    wait_for(lambda: not any(alive(pid) for pid in launcher.worker_pids), "the workers to end", timeout=30)
    rerun = subprocess.run(
        [sys.executable, "src/train.py", "--preset", "tiny", "--max-steps", "3", "--run-dir", str(run_dir)],
        cwd=TEST_CASE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="a PID namespace needs root")
def test_workers_of_a_launcher_that_is_pid_1_train(run_dir):
    """In a container started without --init, torchrun is PID 1: a worker's parent is PID 1 from the
    start, which must not read as 'the launcher died'."""
    command = ["unshare", "--pid", "--fork", "--kill-child", str(BIN / "torchrun"), "--nproc-per-node", "2"]
    command += ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "src/train.py"]
    command += ["--preset", "tiny", "--max-steps", "3", "--run-dir", str(run_dir)]
    result = subprocess.run(
        command, cwd=TEST_CASE_DIR, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((run_dir / "result.json").read_text())["world_size"] == 2
