"""batch_mnp.py for real: the launcher as 3 local "Batch nodes" (main + 2 children on 127.0.0.1-3, each
with its own AWS_BATCH_* environment) and a real Open MPI mpirun across them.

mpirun reaches the children through ssh_shim.py (OMPI_MCA_plm_rsh_agent), which runs the remote command
here in a fresh environment, as ssh would; in --ssh mode the children start fake_sshd.py, and the shim
lets mpirun in only with the job key the main node handed out. The ranks run a small program that
records its rank, world size, "host" and environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testbed.ports import free_port
from testbed.system import require_programs

TOOL_DIR = Path(__file__).resolve().parents[1]
LAUNCHER = TOOL_DIR / "batch_mnp.py"
SHIM = TOOL_DIR / "tests" / "ssh_shim.py"
FAKE_SSHD = TOOL_DIR / "tests" / "fake_sshd.py"
HOW = "install Open MPI: `apt-get install openmpi-bin` (testbed/system-deps.sh, `sudo make system-deps`)"
# Each rank writes one record; exits with the code given for its rank (argv: folder, failing rank, code).
RANK_PROGRAM = """
import json, os, pathlib, sys
rank = int(os.environ["OMPI_COMM_WORLD_RANK"])
record = {"rank": rank, "size": int(os.environ["OMPI_COMM_WORLD_SIZE"]),
          "host": os.environ.get("SHIM_HOST", "main"), "nccl": os.environ.get("NCCL_BATCH_MNP_TEST"),
          "main_only": os.environ.get("MAIN_ONLY")}
pathlib.Path(sys.argv[1], f"rank-{rank}.json").write_text(json.dumps(record))
sys.exit(int(sys.argv[3]) if rank == int(sys.argv[2]) else 0)
"""


STARTED: list[subprocess.Popen] = []


def stop(process: subprocess.Popen) -> tuple[str, str]:
    """Stop a launcher with everything it started (mpirun, orted, ranks, sshd), which may hold its pipes.

    SIGTERM first, so mpirun stops the ranks it put in process groups of their own; then SIGKILL.
    """
    for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            return process.communicate(timeout=grace)
    return "", "(output lost: a descendant of the launcher kept its pipes open)"


@pytest.fixture(autouse=True)
def _nodes(tmp_path, monkeypatch):
    """Each test's own TMPDIR for the nodes (Open MPI's session folders; ssh_shim.py gives each other
    "host" a folder of its own below it); afterwards, stop the nodes a failed assertion left waiting
    (they would time out on their own)."""
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))  # batch_env copies it into every node
    yield
    while STARTED:
        stop(STARTED.pop())


@pytest.fixture
def mpirun():
    return require_programs("Open MPI", "mpirun", "ssh-keygen", how=HOW)["mpirun"]


def rank_command(folder: Path, failing_rank: int = -1, code: int = 0) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    return [sys.executable, "-c", RANK_PROGRAM, str(folder), str(failing_rank), str(code)]


def batch_env(node: int, nodes: int, main: int = 0, **extra: str) -> dict[str, str]:
    """This machine's environment as a Batch node sees it: the AWS_BATCH_* variables, ssh = the shim."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_BATCH_", "OMPI_", "BATCH_MNP_"))}
    env.update(AWS_BATCH_JOB_NUM_NODES=str(nodes), AWS_BATCH_JOB_NODE_INDEX=str(node))
    env.update(AWS_BATCH_JOB_MAIN_NODE_INDEX=str(main), OMPI_MCA_plm_rsh_agent=str(SHIM))
    # The "nodes" are loopback addresses, so their network is lo: keep Open MPI's daemons on it (left to
    # itself, Open MPI leaves lo out whenever another interface is up and dials that interface's address).
    env["OMPI_MCA_oob_tcp_if_include"] = "lo"
    if node != main:
        env["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"] = "127.0.0.1"
    return {**env, **extra}


def start(env: dict[str, str], *args: str, command: list[str] | None = None) -> subprocess.Popen:
    argv = [sys.executable, str(LAUNCHER), *args, "--", *(command or ["true"])]
    process = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    STARTED.append(process)
    return process


def finish(process: subprocess.Popen, timeout: float = 60) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out, err = stop(process)
        pytest.fail(f"launcher did not finish in {timeout:g} s:\n{out}\n{err}")
    return process.returncode, out, err


def phases(stdout: str) -> list[dict[str, str]]:
    """The status lines, parsed as documented: shell words of key=value after 'batch_mnp: '."""
    lines = [line.split(": ", 1)[1] for line in stdout.splitlines() if line.startswith("batch_mnp: phase=")]
    return [dict(word.split("=", 1) for word in shlex.split(line)) for line in lines]


def start_children(nodes: int, port: int, tmp_path: Path, children=None, **extra: str) -> dict:
    """Children first (they wait for the main node), each on its own loopback address and state folder."""
    processes = {}
    for node in children or range(1, nodes):
        args = ["--slots", "1", "--port", str(port), "--address", f"127.0.0.{node + 1}", "--timeout", "20"]
        args += ["--state-dir", str(tmp_path / f"node{node}"), "--sshd", str(FAKE_SSHD)]
        processes[node] = start(batch_env(node, nodes, **extra), *args)
    return processes


def main_args(port: int, tmp_path: Path, slots: int = 1, timeout: str = "20") -> list[str]:
    args = ["--slots", str(slots), "--port", str(port), "--timeout", timeout]
    return [*args, "--state-dir", str(tmp_path / "main")]


def records(folder: Path) -> list[dict]:
    return sorted((json.loads(p.read_text()) for p in folder.glob("rank-*.json")), key=lambda r: r["rank"])


def test_one_mpirun_spans_the_main_node_and_two_children(mpirun, tmp_path):
    port = free_port()
    children = start_children(3, port, tmp_path)
    time.sleep(0.5)  # the children retry until the main node listens
    env = batch_env(0, 3, NCCL_BATCH_MNP_TEST="forwarded", MAIN_ONLY="not forwarded")
    main = start(env, *main_args(port, tmp_path, slots=2), command=rank_command(tmp_path / "ranks"))
    code, out, err = finish(main)
    assert code == 0, out + err

    ranks = records(tmp_path / "ranks")
    assert [r["rank"] for r in ranks] == [0, 1, 2, 3] and {r["size"] for r in ranks} == {4}
    assert [r["host"] for r in ranks] == ["main", "main", "127.0.0.2", "127.0.0.3"]  # hostfile order
    assert {r["nccl"] for r in ranks} == {"forwarded"}  # mpirun -x NCCL_*, through the fresh environment
    assert [r["main_only"] for r in ranks[2:]] == [None, None]
    hostfile = tmp_path / "main" / "hostfile"
    assert hostfile.read_text() == "127.0.0.1 slots=2\n127.0.0.2 slots=1\n127.0.0.3 slots=1\n"

    steps = phases(out)
    assert [s["phase"] for s in steps] == ["listen", "joined", "joined", "hostfile", "launch", "done"]
    assert {s["node"] for s in steps} == {"0"} and steps[0]["port"] == str(port)
    assert sorted(s["child"] for s in steps if s["phase"] == "joined") == ["1", "2"]
    assert steps[3] == {"phase": "hostfile", "node": "0", "path": str(hostfile), "hosts": "3", "slots": "4"}
    launch = shlex.split(steps[4]["command"])
    assert launch[0] == mpirun and launch[launch.index("-np") + 1] == "4" and "NCCL_BATCH_MNP_TEST" in launch
    assert {"--allow-run-as-root", "--bind-to", "none"} <= set(launch) and "MAIN_ONLY" not in launch
    assert steps[5]["exit"] == "0"
    for node, child in children.items():
        child_code, child_out, child_err = finish(child)
        assert child_code == 0, child_err
        steps = phases(child_out)
        assert [s["phase"] for s in steps] == ["connect", "ready", "done"]
        assert steps[0]["address"] == f"127.0.0.{node + 1}" and steps[0]["main"] == f"127.0.0.1:{port}"
        assert steps[2] == {"phase": "done", "node": str(node), "exit": "0"}


def test_a_failing_rank_fails_the_launcher(mpirun, tmp_path):
    port = free_port()
    children = start_children(2, port, tmp_path)
    command = rank_command(tmp_path / "ranks", failing_rank=1, code=3)  # rank 1 is on the child
    code, out, err = finish(start(batch_env(0, 2), *main_args(port, tmp_path), command=command))
    assert code == 3, out + err
    assert phases(out)[-1]["exit"] == "3"
    child_code, child_out, _ = finish(children[1])
    assert child_code == 0 and phases(child_out)[-1] == {"phase": "done", "node": "1", "exit": "3"}


def test_ssh_mode_gives_each_child_sshd_the_job_key(mpirun, tmp_path):
    sshd_dir = tmp_path / "sshd"
    sshd_dir.mkdir()
    port, ssh_port = free_port(), free_port()
    children = start_children(2, port, tmp_path, FAKE_SSHD_DIR=str(sshd_dir))
    env = batch_env(0, 2, FAKE_SSHD_DIR=str(sshd_dir))  # the shim lets mpirun in only with the job key
    args = [*main_args(port, tmp_path), "--ssh", "--ssh-port", str(ssh_port)]
    code, out, err = finish(start(env, *args, command=rank_command(tmp_path / "ranks")))
    assert code == 0, out + err
    assert [r["host"] for r in records(tmp_path / "ranks")] == ["main", "127.0.0.2"]

    child_code, child_out, child_err = finish(children[1])
    assert child_code == 0, child_err
    assert [s["phase"] for s in phases(child_out)] == ["connect", "sshd", "ready", "done"]
    sshd = json.loads((sshd_dir / "127.0.0.2.json").read_text())
    assert sshd["port"] == ssh_port and sshd["PasswordAuthentication"] == "no"
    job_key = (tmp_path / "main" / "id_ed25519.pub").read_text()
    assert Path(sshd["authorized_keys"]).read_text() == job_key  # only the key of this job
    assert str(Path(sshd["authorized_keys"]).parent) == str(tmp_path / "node1")  # not ~/.ssh
    with pytest.raises(ProcessLookupError):  # the child stopped its sshd
        os.kill(sshd["pid"], 0)


def test_a_child_that_never_arrives_times_out_with_its_index(mpirun, tmp_path):
    port = free_port()
    children = start_children(3, port, tmp_path, children=[1])
    code, out, err = finish(start(batch_env(0, 3), *main_args(port, tmp_path, timeout="2")))
    assert code == 1, out + err
    assert err.count("\n") == 1 and err.startswith("batch_mnp: error: node 0: timed out after 2 s")
    assert "waiting for node(s) 2 of 3 (joined: 1)" in err
    assert not (tmp_path / "main" / "hostfile").exists()
    child_code, _, child_err = finish(children[1])
    assert child_code == 1 and "gave up: node 0 (main) stopped waiting for node(s) 2" in child_err


def test_a_child_whose_main_node_goes_away_exits_non_zero(mpirun, tmp_path):
    port = free_port()
    main = start(batch_env(0, 3), *main_args(port, tmp_path))
    children = start_children(3, port, tmp_path, children=[1])
    assert children[1].stdout.readline().startswith("batch_mnp: phase=connect")
    assert children[1].stdout.readline().startswith("batch_mnp: phase=ready")
    main.send_signal(signal.SIGKILL)
    finish(main)
    code, _, err = finish(children[1])
    assert code == 1
    assert f"main node 127.0.0.1:{port} closed the connection before the run finished" in err


def test_a_single_node_job_runs_mpirun_on_itself(mpirun, tmp_path):
    command = rank_command(tmp_path / "ranks")
    code, out, err = finish(
        start(batch_env(0, 1), *main_args(free_port(), tmp_path, slots=2), command=command)
    )
    assert code == 0, out + err
    assert [s["phase"] for s in phases(out)] == ["hostfile", "launch", "done"]
    assert (tmp_path / "main" / "hostfile").read_text() == "localhost slots=2\n"
    assert [r["rank"] for r in records(tmp_path / "ranks")] == [0, 1]


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        (
            {"AWS_BATCH_JOB_NODE_INDEX": None},
            [],
            "AWS_BATCH_JOB_NODE_INDEX is not set: run inside an AWS Batch",
        ),
        ({"AWS_BATCH_JOB_NUM_NODES": "0"}, [], "AWS_BATCH_JOB_NUM_NODES=0 must be >= 1"),
        ({"AWS_BATCH_JOB_NODE_INDEX": "3"}, [], "AWS_BATCH_JOB_NODE_INDEX=3 must be in [0, 2]"),
        ({"AWS_BATCH_JOB_MAIN_NODE_INDEX": "x"}, [], "AWS_BATCH_JOB_MAIN_NODE_INDEX='x' is not an integer"),
        (
            {"AWS_BATCH_JOB_NODE_INDEX": "1"},
            [],
            "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS='' is not an IPv4",
        ),
        ({"BATCH_MNP_PORT": "ssh"}, [], "BATCH_MNP_PORT='ssh' is not an integer"),
        ({}, ["--slots", "0"], "--slots=0 must be in [1, 4096]"),
        ({}, ["--slots"], "argument --slots: expected one argument"),
        ({"PATH": "/nonexistent"}, ["--slots", "1"], "mpirun is not on PATH"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, env, args, message):
    base = batch_env(0, 3)
    base.pop("AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS", None)
    merged = {k: v for k, v in {**base, **env}.items() if v is not None}
    argv = [
        sys.executable,
        str(LAUNCHER),
        *(args or ["--slots", "1"]),
        "--state-dir",
        str(tmp_path),
        "--",
        "true",
    ]
    result = subprocess.run(argv, env=merged, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("batch_mnp: error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr and result.stdout == ""


def test_no_command_and_no_slots_are_bad_input(tmp_path):
    env = batch_env(0, 1)
    no_command = subprocess.run(
        [sys.executable, str(LAUNCHER), "--slots", "1"], env=env, capture_output=True, text=True, check=False
    )
    assert no_command.returncode == 2 and "no command: put the program after '--'" in no_command.stderr
    no_slots = subprocess.run(
        [sys.executable, str(LAUNCHER), "--", "true"], env=env, capture_output=True, text=True, check=False
    )
    assert no_slots.returncode == 2 and "the following arguments are required: --slots" in no_slots.stderr
