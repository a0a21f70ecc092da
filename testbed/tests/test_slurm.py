"""The local Slurm cluster behaves like Slurm: multi-node jobs, exit codes, requeue, node failures.

All tests run real daemons. Tests on the shared ``local_slurm`` leave every node idle.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testbed import slurm
from testbed.slurm import REQUIRED_PROGRAMS, STATE_FILE, LocalSlurm, SlurmError, cluster_processes
from testbed.system import require_programs

pytestmark = pytest.mark.slurm

REPO_ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    """Exists and is not a zombie (this sandbox's init leaves orphans unreaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_for_file(path: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path} not written in {timeout}s"
        time.sleep(0.1)
    return path.read_text()


def _script(*lines: str, nodes: int = 1) -> str:
    return "\n".join(["#!/bin/bash", f"#SBATCH --nodes={nodes} --ntasks-per-node=1", *lines, ""])


def test_cluster_comes_up_with_all_nodes_idle(local_slurm: LocalSlurm) -> None:
    out = subprocess.run(
        ["sinfo", "--noheader", "--Node", "--format=%N %T"],
        env=local_slurm.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert dict(line.split() for line in out.splitlines()) == {"n1": "idle", "n2": "idle"}
    assert local_slurm.node_names == ["n1", "n2"]
    assert [local_slurm.node_addr(name) for name in local_slurm.node_names] == ["127.0.0.1"] * 2


def test_two_node_job_runs_one_task_per_node(local_slurm: LocalSlurm) -> None:
    job = local_slurm.submit(_script("srun bash -c 'echo $SLURMD_NODENAME $SLURM_PROCID'", nodes=2))

    assert job.wait(60) == "COMPLETED"
    assert job.exit_code == 0
    assert job.nodes == ["n1", "n2"]
    assert sorted(job.output().split("\n")[:2]) == ["n1 0", "n2 1"]


def _listening_ports(pid: int) -> set[int]:
    """TCP ports process ``pid`` listens on (its socket inodes matched against /proc/net/tcp)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_srun_listens_outside_the_ephemeral_port_range(local_slurm: LocalSlurm) -> None:
    low, high = map(int, slurm.srun_port_range().split("-"))
    ephemeral = tuple(map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()))
    assert high < ephemeral[0] or low > ephemeral[1]
    marker = f"srun-port-probe-{os.getpid()}"
    job = local_slurm.submit(_script(f"srun --job-name={marker} sleep 4", nodes=2))
    deadline, ports = time.monotonic() + 30, set()
    while not ports and time.monotonic() < deadline:
        probe = ["pgrep", "-f", f"srun --job-name={marker}"]
        found = subprocess.run(probe, capture_output=True, text=True, check=False)
        for pid in found.stdout.split():
            with contextlib.suppress(OSError):
                ports |= _listening_ports(int(pid))
        time.sleep(0.2)
    assert job.wait(60) == "COMPLETED"
    assert ports and all(low <= port <= high for port in ports), (ports, low, high)


def test_failing_job_ends_failed_with_its_exit_code(local_slurm: LocalSlurm) -> None:
    job = local_slurm.submit(_script("echo about to fail", "exit 3"))

    assert job.wait(60) == "FAILED"
    assert job.exit_code == 3
    assert job.output() == "about to fail\n"


def test_submit_passes_args_env_and_cwd(local_slurm: LocalSlurm, tmp_path: Path) -> None:
    script = tmp_path / "job.sbatch"
    script.write_text(_script('echo "$1 $GREETING $(pwd)"'))

    job = local_slurm.submit("job.sbatch", args=["hello"], env={"GREETING": "world"}, cwd=tmp_path)

    assert job.wait(60) == "COMPLETED"
    assert job.stdout_path == tmp_path / f"slurm-{job.id}.out"
    assert job.output() == f"hello world {tmp_path}\n"


def test_requeued_job_goes_back_to_pending_and_runs_again(local_slurm: LocalSlurm, tmp_path: Path) -> None:
    starts = tmp_path / "starts.txt"
    job = local_slurm.submit(
        _script(
            f'echo "start ${{SLURM_RESTART_COUNT:-unset}}" | tee -a {starts}',
            '[ "${SLURM_RESTART_COUNT:-0}" -ge 1 ] && exit 0',
            "sleep 300",
        )
    )
    job.wait_for_state({"RUNNING"}, 30)
    _wait_for_file(starts)
    with pytest.raises(TimeoutError, match=rf"(?s)job {job.id} still RUNNING .*output tail:\nstart unset"):
        job.wait(timeout=0.5)

    local_slurm.requeue(job)

    assert job.wait_for_state({"PENDING"}, 30) == "PENDING"
    assert job.wait(60) == "COMPLETED"
    assert job.restart_count == 1
    assert starts.read_text().splitlines() == ["start unset", "start 1"]


@pytest.mark.parametrize(
    ("take_out", "node", "other", "states"),
    [("set_node_down", "n2", "n1", {"DOWN"}), ("drain", "n1", "n2", {"DRAIN", "DRAINED"})],
)
def test_node_out_of_service_gets_no_jobs_until_resumed(
    local_slurm: LocalSlurm, take_out: str, node: str, other: str, states: set[str]
) -> None:
    reason = f"testbed {take_out} check"
    getattr(local_slurm, take_out)(node, reason)
    try:
        assert local_slurm.node_state(node) in states
        assert local_slurm.node_reason(node) == reason
        one = local_slurm.submit(_script("srun hostname"))
        assert one.wait(60) == "COMPLETED"
        assert one.nodes == [other]
        both = local_slurm.submit(_script("srun hostname", nodes=2))
        time.sleep(3)  # several scheduling passes (sched_interval=1)
        assert both.state == "PENDING"
    finally:
        local_slurm.resume(node)

    assert local_slurm.node_state(node) == "IDLE"
    assert local_slurm.node_reason(node) == ""
    assert both.wait(60) == "COMPLETED"
    assert both.nodes == ["n1", "n2"]


def test_stop_leaves_no_daemon_job_process_or_state(tmp_path: Path) -> None:
    require_programs("local Slurm", *REQUIRED_PROGRAMS)
    cluster = LocalSlurm(nodes=1, state_dir=tmp_path / "slurm")
    pids_file = tmp_path / "job-pids"
    try:
        cluster.start()
        daemons = cluster.pids
        job = cluster.submit(
            _script(f"echo $$ >> {pids_file}", f"srun bash -c 'echo $$ >> {pids_file}; sleep 300'")
        )
        job.wait_for_state({"RUNNING"}, 30)
        deadline = time.monotonic() + 30
        while len(_wait_for_file(pids_file).split()) < 2:
            assert time.monotonic() < deadline, "job step did not start"
            time.sleep(0.1)
        running = cluster_processes(cluster.conf_path)
        assert len(running) >= 4  # batch and step slurmstepd, the script, srun, the task...
    finally:
        cluster.stop()

    assert set(daemons) == {"munged", "slurmctld", "slurmd-n1"}
    assert [pid for pid in daemons.values() if _alive(pid)] == []
    assert [pid for pid in running if _alive(pid)] == []
    assert [int(pid) for pid in pids_file.read_text().split() if _alive(int(pid))] == []
    assert cluster_processes(cluster.conf_path) == []
    assert not cluster.state_dir.exists()
    cluster.stop()  # idempotent


def test_start_refuses_a_folder_that_is_not_its_own(tmp_path: Path) -> None:
    require_programs("local Slurm", *REQUIRED_PROGRAMS)
    (tmp_path / "notes.txt").write_text("mine")

    with pytest.raises(SlurmError, match="not empty and holds no LocalSlurm cluster"):
        LocalSlurm(nodes=1, state_dir=tmp_path).start()
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_cli_says_how_to_install_missing_programs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(slurm.daemons, "find_programs", lambda *names: {name: None for name in names})

    assert slurm.main(["up", "--state-dir", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "slurmctld" in err and "sudo make system-deps" in err
    assert not (tmp_path / "x").exists()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "testbed.slurm", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_up_status_down(tmp_path: Path) -> None:
    require_programs("local Slurm", *REQUIRED_PROGRAMS)
    state_dir = tmp_path / "cli"
    up = _cli("up", "--nodes", "1", "--state-dir", str(state_dir))
    try:
        assert up.returncode == 0, up.stderr
        assert f"export SLURM_CONF={state_dir / 'slurm.conf'}" in up.stdout.splitlines()
        pids = json.loads((state_dir / STATE_FILE).read_text())["pids"]
        assert all(_alive(pid) for pid in pids.values())

        again = _cli("up", "--nodes", "1", "--state-dir", str(state_dir))
        assert again.returncode != 0
        assert again.stderr.count("\n") == 1 and "already up" in again.stderr and "down" in again.stderr

        status = _cli("status", "--state-dir", str(state_dir))
        assert status.returncode == 0, status.stderr
        assert "n1" in status.stdout and "idle" in status.stdout
    finally:
        down = _cli("down", "--state-dir", str(state_dir))
    assert down.returncode == 0, down.stderr
    assert [pid for pid in pids.values() if _alive(pid)] == []
    assert not state_dir.exists()

    for command in ("down", "status"):
        after = _cli(command, "--state-dir", str(state_dir))
        assert after.returncode != 0
        assert after.stderr.count("\n") == 1 and "no LocalSlurm cluster" in after.stderr


def test_cli_reports_a_dead_daemon_and_up_replaces_the_stale_cluster(tmp_path: Path) -> None:
    require_programs("local Slurm", *REQUIRED_PROGRAMS)
    state_dir = str(tmp_path / "cli")
    assert _cli("up", "--nodes", "1", "--state-dir", state_dir).returncode == 0
    try:
        pids = json.loads((tmp_path / "cli" / STATE_FILE).read_text())["pids"]
        os.kill(pids["slurmctld"], signal.SIGKILL)

        status = _cli("status", "--state-dir", state_dir)
        assert status.returncode != 0
        assert status.stderr.count("\n") == 1 and "slurmctld gone" in status.stderr

        again = _cli("up", "--nodes", "1", "--state-dir", state_dir)
        assert again.returncode == 0, again.stderr
        assert [pid for pid in pids.values() if _alive(pid)] == []  # the stale daemons were stopped
        assert _cli("status", "--state-dir", state_dir).returncode == 0
    finally:
        assert _cli("down", "--state-dir", state_dir).returncode == 0


def test_prolog_and_epilog_run_on_every_node_of_a_job(tmp_path: Path) -> None:
    require_programs("local Slurm", *REQUIRED_PROGRAMS)
    marks = tmp_path / "marks"
    marks.mkdir()
    hooks = {}
    for name in ("prolog", "epilog"):
        hook = tmp_path / f"{name}.sh"
        # slurmd gives hooks an almost empty environment: the node name, the job id, its exit code.
        line = f'echo "$SLURM_JOB_ID ${{SLURM_JOB_EXIT_CODE2:-}}" > {marks}/{name}-$SLURMD_NODENAME'
        hook.write_text(f"#!/bin/bash\n{line}\n")
        hook.chmod(0o755)
        hooks[name] = hook
    with LocalSlurm(nodes=2, state_dir=tmp_path / "slurm", **hooks) as cluster:
        conf = cluster.conf_path.read_text()
        assert f"Prolog={hooks['prolog']}\nEpilog={hooks['epilog']}\nPrologFlags=Alloc\n" in conf
        job = cluster.submit(_script("exit 3", nodes=2))  # the batch script runs on n1 only
        assert job.wait(60) == "FAILED"
        assert _wait_for_file(marks / "epilog-n2").split() == [str(job.id), "3:0"]
        assert sorted(path.name for path in marks.iterdir()) == [
            "epilog-n1",
            "epilog-n2",
            "prolog-n1",
            "prolog-n2",
        ]
        assert (marks / "prolog-n2").read_text().split() == [str(job.id)]


def test_a_hook_that_cannot_run_is_refused(tmp_path: Path) -> None:
    require_programs("local Slurm", *REQUIRED_PROGRAMS)
    hook = tmp_path / "prolog.sh"
    hook.write_text("#!/bin/bash\n")
    cluster = LocalSlurm(nodes=1, state_dir=tmp_path / "slurm", prolog=hook)
    with pytest.raises(SlurmError, match=f"prolog {hook} is not an executable file; chmod \\+x it"):
        cluster.start()
    assert not (tmp_path / "slurm").exists()  # nothing started, nothing left
