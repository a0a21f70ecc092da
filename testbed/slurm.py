"""A real Slurm cluster on this machine: munged, slurmctld and one slurmd per node, on loopback.

``LocalSlurm`` writes a private MUNGE key and a ``slurm.conf`` into its ``state_dir`` and starts
the daemons from the Debian packages (slurm-wlm, munge). The nodes are named n1..nN and share
this host: each slurmd has its own port, spool folder and log, and every node's NodeAddr is
127.0.0.1, so the first node of an allocation (``scontrol show node``) is a usable rendezvous
address. Nothing in /etc is read or changed; Slurm commands find the cluster through
``SLURM_CONF`` (see ``LocalSlurm.env``). Jobs run as the user who submits them.

Root: not needed to run it. The daemons run as the calling user (SlurmUser and SlurmdUser are
set to that user), and a slurmd that is not root runs that same user's jobs, which is all a
developer submitting their own scripts needs. Root is needed only to install the packages
(``sudo make system-deps``).

Command line (state in ``.testbed/slurm`` under the current folder unless ``--state-dir``)::

    python -m testbed.slurm up --nodes 2 [--cpus-per-node 1]   # prints `export SLURM_CONF=...`
    python -m testbed.slurm up --pcluster-config build/gpu-efa.yaml   # that cluster's queues and nodes
    python -m testbed.slurm up --slurm-conf build/slurm.conf   # its NodeName/PartitionName lines' layout
    python -m testbed.slurm status
    python -m testbed.slurm down
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from testbed.system import HOW_TO_INSTALL, find_programs, missing_message

REQUIRED_PROGRAMS: tuple[str, ...] = (
    "munged",
    "slurmctld",
    "slurmd",
    "sbatch",
    "scontrol",
    "sinfo",
    "srun",
    "squeue",
    "scancel",
)
# Job states after which a job never runs again (a requeue goes through PENDING instead).
TERMINAL_STATES = frozenset(
    {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY"}
    | {"PREEMPTED", "TIMEOUT"}
)
DEFAULT_STATE_DIR = Path(".testbed/slurm")
STATE_FILE = "cluster.json"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
POLL_S = 0.2
# Step credential lifetime; Slurm also holds a requeued job this long (+1 s) before it may start
# again (the default, 120 s, would make every requeue test wait two minutes).
CRED_EXPIRE_S = 10
# Unix socket paths (munge, slurmstepd's `<spool>/<node>_<job>.<step>`) must fit in 107 bytes.
_SOCKET_PATH_ROOM = len("/spool/n999/n999_9999999.4294967291")
_MAX_SOCKET_PATH = 107
# Environment of an enclosing Slurm job would leak into sbatch/srun and confuse them.
_FOREIGN_PREFIXES = ("SLURM_", "SBATCH_", "SRUN_", "SALLOC_")
_DAEMON_PROGRAM = {"munged": "munged", "slurmctld": "slurmctld"}  # else slurmd-<node> -> slurmd

_CONF_TEMPLATE = """\
# Written by testbed.slurm.LocalSlurm; removed with the cluster.
ClusterName=localslurm
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={state}/munge/munge.socket,cred_expire={cred_expire}
StateSaveLocation={state}/ctld
SlurmctldPidFile={state}/ctld/slurmctld.pid
SlurmctldLogFile={state}/log/slurmctld.log
SlurmdSpoolDir={state}/spool/%n
SlurmdPidFile={state}/spool/%n/slurmd.pid
SlurmdLogFile={state}/log/slurmd-%n.log
# Several slurmd share one host: no cgroups, nodes report the configured CPUs and memory.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SlurmdParameters=config_overrides
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
MpiDefault=none
JobRequeue=1
# Finished jobs stay visible to `scontrol show job` for an hour.
MinJobAge=3600
# Only nodes that stopped responding come back by themselves; admin DOWN/DRAIN need a resume.
ReturnToService=1
SlurmdTimeout=30
KillWait=2
InactiveLimit=0
# srun's listening ports, outside the kernel's ephemeral range: messages still sent to a dead srun
# (after a requeue) can never reach another process's listener, e.g. a gloo rank's (bound to port 0).
SrunPortRange={srun_ports}
{hook_lines}{node_lines}
{partition_lines}
"""


def srun_port_range(width: int = 2000) -> str:
    """``first-last`` ports for ``SrunPortRange``, just outside the kernel's ephemeral port range."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999  # Linux's default
    if high + width <= 65535:  # the highest port
        return f"{high + 1}-{high + width}"
    return f"{max(1024, low - width)}-{low - 1}"


class SlurmError(RuntimeError):
    """A Slurm daemon or command failed; the message names what and how to fix it."""


class Job:
    """A batch job submitted to a ``LocalSlurm``; state is read live from ``scontrol``."""

    def __init__(self, cluster: LocalSlurm, job_id: int) -> None:
        self.id = job_id
        self._cluster = cluster
        info = self.info()
        self.stdout_path = Path(info.get("StdOut", ""))
        self.stderr_path = Path(info.get("StdErr", info.get("StdOut", "")))

    def __repr__(self) -> str:
        return f"Job({self.id})"

    def info(self) -> dict[str, str]:
        """All fields of ``scontrol show job`` for this job."""
        return _parse_fields(self._cluster.scontrol("show", "job", "--oneliner", str(self.id)))

    @property
    def state(self) -> str:
        """Current job state, e.g. PENDING, RUNNING, COMPLETED, FAILED."""
        return self.info()["JobState"]

    @property
    def exit_code(self) -> int:
        """Exit code of the batch script (the N of Slurm's ``ExitCode=N:signal``)."""
        return int(self.info()["ExitCode"].split(":")[0])

    @property
    def restart_count(self) -> int:
        """How many times the job was requeued (``Restarts=``)."""
        return int(self.info()["Restarts"])

    @property
    def nodes(self) -> list[str]:
        """The allocated nodes, expanded (``[]`` while pending)."""
        node_list = self.info().get("NodeList", "(null)")
        if node_list in ("", "(null)"):
            return []
        return self._cluster.scontrol("show", "hostnames", node_list).split()

    def output(self) -> str:
        """Text of the job's stdout file ('' if it does not exist yet)."""
        try:
            return self.stdout_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait(self, timeout: float = 300) -> str:
        """Block until the job ends; return its terminal state. TimeoutError after ``timeout`` s."""
        return self.wait_for_state(TERMINAL_STATES, timeout)

    def wait_for_state(self, states: Iterable[str], timeout: float) -> str:
        """Block until the job is in one of ``states``; return it.

        Raises SlurmError when the job ends in another state, TimeoutError (with the job's
        state, reason and output tail) when ``timeout`` seconds pass first.
        """
        wanted = {state.upper() for state in states}
        deadline = time.monotonic() + timeout
        while True:
            info = self.info()
            state = info["JobState"]
            if state in wanted:
                return state
            if state in TERMINAL_STATES:
                raise SlurmError(f"job {self.id} ended {state} while waiting for {sorted(wanted)}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"job {self.id} still {state} (reason {info.get('Reason')}) after {timeout:g}s "
                    f"waiting for {sorted(wanted)}; output tail:\n{_tail_text(self.output())}"
                )
            time.sleep(POLL_S)


class LocalSlurm:
    """A Slurm cluster of ``nodes`` slurmd on this host; a context manager that starts and stops it."""

    def __init__(
        self,
        nodes: int = 2,
        cpus_per_node: int = 1,
        state_dir: Path | None = None,
        keep: bool = False,
        partition: str = "cpu",
        prolog: Path | None = None,
        epilog: Path | None = None,
        partitions: Mapping[str, Sequence[str]] | None = None,
        gpus_per_node: int = 0,
    ) -> None:
        # gpus_per_node: GPUs each node declares as a count-only gres (no device files: jobs that ask for
        # `--gpus-per-node=8` or `--gres=gpu:8` are scheduled as on a GPU cluster; nothing sees a device).
        # partitions: {name: [node names]} instead of one partition of n1..nN (e.g. the node and
        # partition layout a cluster's own configuration declares, see partitions_from_conf).
        self.partitions = _check_partitions(partitions) if partitions else None
        if self.partitions:
            nodes = len(_unique_nodes(self.partitions))
        if nodes < 1 or cpus_per_node < 1:
            raise ValueError(f"nodes={nodes} and cpus_per_node={cpus_per_node} must be at least 1")
        if gpus_per_node < 0:
            raise ValueError(f"gpus_per_node={gpus_per_node} must be 0 or more")
        self.nodes = nodes
        self.gpus_per_node = gpus_per_node
        # Node health hooks: slurmd runs them (as this user) on every node of an allocation.
        self.prolog = Path(prolog).resolve() if prolog else None
        self.epilog = Path(epilog).resolve() if epilog else None
        self.cpus_per_node = cpus_per_node
        self.partition = partition
        self.keep = keep
        # stop() removes state_dir only when this object made it (or found its own cluster in it).
        self._owns_state_dir = state_dir is None
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="localslurm-")).resolve()
        self.conf_path = self.state_dir / "slurm.conf"
        self.node_names = (
            _unique_nodes(self.partitions) if self.partitions else [f"n{i}" for i in range(1, nodes + 1)]
        )
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_PREFIXES)}
        self.env["SLURM_CONF"] = str(self.conf_path)
        # A Python process of a job that dies of a fatal signal (a rank's SIGABRT) prints its threads'
        # Python tracebacks into the job's output: where it died, not only that it did.
        self.env.setdefault("PYTHONFAULTHANDLER", "1")
        self._pids: dict[str, int] = {}
        self._procs: dict[str, subprocess.Popen] = {}
        self._scripts = 0

    @classmethod
    def attach(cls, state_dir: Path) -> LocalSlurm:
        """The cluster recorded in ``state_dir`` by an earlier ``start`` (used by the CLI)."""
        state_file = Path(state_dir) / STATE_FILE
        try:
            state = json.loads(state_file.read_text())
        except FileNotFoundError:
            raise SlurmError(
                f"no LocalSlurm cluster in {state_dir}; start one with "
                f"`python -m testbed.slurm up --state-dir {state_dir}`"
            ) from None
        cluster = cls(
            state["nodes"],
            state["cpus_per_node"],
            Path(state_dir),
            partition=state["partition"],
            partitions=state.get("partitions"),
            gpus_per_node=state.get("gpus_per_node", 0),
        )
        cluster._pids = {name: int(pid) for name, pid in state["pids"].items()}
        cluster._owns_state_dir = True
        return cluster

    def __enter__(self) -> LocalSlurm:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def pids(self) -> dict[str, int]:
        """PIDs of the daemons this cluster started, by name (munged, slurmctld, slurmd-n1, ...)."""
        return dict(self._pids)

    def running(self) -> bool:
        """True when every daemon this cluster started is alive."""
        return bool(self._pids) and not self._dead_daemons()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> LocalSlurm:
        """Write key and config, start munged, slurmctld and the slurmd, wait until all nodes are idle."""
        programs = _require_programs()
        self._prepare_state_dir()
        try:
            self._write_munge_key()
            self._write_conf()
            self._start_munged(programs["munged"])
            self._spawn("slurmctld", [programs["slurmctld"], "-D"])
            for name in self.node_names:
                self._spawn(f"slurmd-{name}", [programs["slurmd"], "-D", "-N", name])
            self._wait_until_idle(START_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Cancel all jobs, stop the daemons this cluster started, remove ``state_dir`` unless kept.

        Safe to call twice. Job processes and slurmstepd left behind by the cluster (found by
        their ``SLURM_CONF``) are killed too, so nothing of the cluster outlives it.
        """
        try:
            if self._pids.get("slurmctld") and _alive(self._pids["slurmctld"]):
                self._cancel_all_jobs()
            for name in reversed(list(self._pids)):
                self._terminate(name)
            _kill(cluster_processes(self.conf_path))
        finally:
            self._pids.clear()
            self._procs.clear()
            if not self.keep and self._owns_state_dir:
                shutil.rmtree(self.state_dir, ignore_errors=True)

    def _prepare_state_dir(self) -> None:
        """Make the folders; refuse a running cluster or a foreign non-empty folder."""
        if (self.state_dir / STATE_FILE).exists():
            previous = LocalSlurm.attach(self.state_dir)
            if previous.running():
                raise SlurmError(
                    f"LocalSlurm already up in {self.state_dir} (SLURM_CONF={self.conf_path}); "
                    f"stop it first with `python -m testbed.slurm down --state-dir {self.state_dir}`"
                )
            previous.stop()  # stale: its daemons are gone
        elif self.state_dir.exists() and any(self.state_dir.iterdir()):
            raise SlurmError(
                f"{self.state_dir} is not empty and holds no LocalSlurm cluster; pass a new or empty folder"
            )
        longest = max(len(name) for name in self.node_names)
        if len(str(self.state_dir)) + _SOCKET_PATH_ROOM + 2 * max(0, longest - 4) > _MAX_SOCKET_PATH:
            raise SlurmError(
                f"state dir {self.state_dir} is too long for Slurm's Unix sockets; use a shorter path"
            )
        self._owns_state_dir = True
        for sub in ["munge", "ctld", "log", "jobs", *(f"spool/{n}" for n in self.node_names)]:
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        (self.state_dir / "munge").chmod(0o700)

    def _write_munge_key(self) -> None:
        """A fresh random MUNGE key, readable by this user only (munged refuses anything else)."""
        fd = os.open(self.state_dir / "munge" / "munge.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as key:
            key.write(os.urandom(1024))

    def _write_conf(self) -> None:
        """slurm.conf with free ports for slurmctld and every slurmd."""
        ctld_port, *node_ports = _free_ports(1 + self.nodes)
        host = socket.gethostname().split(".")[0]
        memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        gres = f" Gres=gpu:{self.gpus_per_node}" if self.gpus_per_node else ""
        node_lines = "\n".join(
            f"NodeName={name} NodeHostname={host} NodeAddr=127.0.0.1 Port={port} "
            f"CPUs={self.cpus_per_node} RealMemory={memory_mb}{gres} State=UNKNOWN"
            for name, port in zip(self.node_names, node_ports, strict=True)
        )
        if self.gpus_per_node:
            node_lines = "GresTypes=gpu\n" + node_lines
            # Slurm drops a GPU gres without File=: empty stand-in files take the devices' place (no
            # cgroup constrains devices here), so jobs get CUDA_VISIBLE_DEVICES as on a GPU node.
            devices = self.state_dir / "dev"
            devices.mkdir(exist_ok=True)
            for index in range(self.gpus_per_node):
                (devices / f"gpu{index}").touch()
            (self.state_dir / "gres.conf").write_text(
                f"NodeName={','.join(self.node_names)} Name=gpu Count={self.gpus_per_node} "
                f"File={devices}/gpu[0-{self.gpus_per_node - 1}]\n"
            )
        self.conf_path.write_text(
            _CONF_TEMPLATE.format(
                host=host,
                ctld_port=ctld_port,
                user=pwd.getpwuid(os.getuid()).pw_name,
                state=self.state_dir,
                cred_expire=CRED_EXPIRE_S,
                srun_ports=srun_port_range(),
                hook_lines=self._hook_lines(),
                node_lines=node_lines,
                partition_lines=self._partition_lines(),
            )
        )

    def _partition_lines(self) -> str:
        """One PartitionName line per partition; the first is the default."""
        partitions = self.partitions or {self.partition: self.node_names}
        return "\n".join(
            f"PartitionName={name} Nodes={','.join(nodes)} Default={'YES' if i == 0 else 'NO'} "
            "MaxTime=INFINITE State=UP"
            for i, (name, nodes) in enumerate(partitions.items())
        )

    def _hook_lines(self) -> str:
        """Prolog/Epilog lines of slurm.conf ('' without hooks); the prolog runs at allocation."""
        lines = []
        for name, path in (("Prolog", self.prolog), ("Epilog", self.epilog)):
            if path is None:
                continue
            if not os.access(path, os.X_OK):
                raise SlurmError(f"{name.lower()} {path} is not an executable file; chmod +x it")
            lines.append(f"{name}={path}")
        if self.prolog is not None:
            # Alloc: the prolog runs on every allocated node when the job starts, not at its first step.
            lines.append("PrologFlags=Alloc")
        return "".join(line + "\n" for line in lines)

    def _start_munged(self, munged: str) -> None:
        """munged on a private socket; ``--force`` because the socket's parents may be 0700."""
        munge = self.state_dir / "munge"
        self._spawn(
            "munged",
            [
                munged,
                "--foreground",
                "--force",
                f"--socket={munge}/munge.socket",
                f"--key-file={munge}/munge.key",
                f"--pid-file={munge}/munged.pid",
                f"--seed-file={munge}/munged.seed",
                f"--log-file={self.state_dir}/log/munged.log",
            ],
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (munge / "munge.socket").exists():
            self._check_daemons("munged did not create its socket")
            if time.monotonic() > deadline:
                raise SlurmError(f"munged did not create its socket in {START_TIMEOUT_S:g}s\n{self._logs()}")
            time.sleep(POLL_S / 4)

    def _spawn(self, name: str, argv: list[str]) -> None:
        """Start one daemon in the foreground of its own session; record its PID in the state file."""
        with open(self.state_dir / "log" / f"{name}.out", "ab") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        self._procs[name] = proc
        self._pids[name] = proc.pid
        state = {"nodes": self.nodes, "cpus_per_node": self.cpus_per_node, "partition": self.partition}
        state |= {"partitions": self.partitions, "gpus_per_node": self.gpus_per_node}
        state |= {"conf": str(self.conf_path), "pids": self._pids}
        (self.state_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")

    def _wait_until_idle(self, timeout: float) -> None:
        """Poll sinfo until every node is idle; fail early when a daemon dies."""
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            self._check_daemons("a Slurm daemon exited during start")
            states = self._node_states()
            if all(states.get(name) == "IDLE" for name in self.node_names):
                return
            time.sleep(POLL_S)
        raise SlurmError(
            f"nodes not idle after {timeout:g}s (sinfo: {states or 'no answer'})\n{self._logs()}"
        )

    def _dead_daemons(self) -> list[str]:
        """Names of recorded daemons that are no longer running."""
        for proc in self._procs.values():
            proc.poll()  # reap our own children so they do not linger as zombies
        return [name for name, pid in self._pids.items() if not _alive(pid)]

    def _check_daemons(self, what: str) -> None:
        dead = self._dead_daemons()
        if dead:
            raise SlurmError(f"{what}: {', '.join(dead)} not running\n{self._logs()}")

    def _logs(self, lines: int = 15) -> str:
        """The last lines of every daemon log, for error messages."""
        parts = []
        for path in sorted((self.state_dir / "log").glob("*")):
            text = path.read_text(errors="replace").strip()
            if text:
                parts.append(f"--- {path}\n{_tail_text(text, lines)}")
        return "\n".join(parts)

    def _cancel_all_jobs(self) -> None:
        """scancel every job and wait (bounded) until no job or node is still completing."""
        job_ids = self._run(["squeue", "--noheader", "--format=%A"], check=False).split()
        if job_ids:
            self._run(["scancel", *job_ids], check=False)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            busy_jobs = self._run(["squeue", "--noheader", "--format=%A"], check=False).split()
            completing = [s for s in self._node_states().values() if s.startswith("COMPLETING")]
            if not busy_jobs and not completing:
                return
            time.sleep(POLL_S)

    def _terminate(self, name: str) -> None:
        """SIGTERM one recorded daemon (only if that PID still runs that program), SIGKILL if it lingers."""
        pid = self._pids[name]
        program = _DAEMON_PROGRAM.get(name, "slurmd")
        if not _alive(pid) or _program(pid) != program:
            return
        os.kill(pid, signal.SIGTERM)
        if not self._wait_gone(name, pid, 10.0):
            os.kill(pid, signal.SIGKILL)
            self._wait_gone(name, pid, 5.0)

    def _wait_gone(self, name: str, pid: int, timeout: float) -> bool:
        proc = self._procs.get(name)
        if proc is not None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        return _wait_dead([pid], timeout)

    # -- commands --------------------------------------------------------------------------

    def _run(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        check: bool = True,
    ) -> str:
        """Run a Slurm client command against this cluster; return stdout."""
        result = subprocess.run(
            list(argv),
            check=False,
            env=dict(env or self.env),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and result.returncode != 0:
            raise SlurmError(f"`{' '.join(argv)}` failed (exit {result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def scontrol(self, *args: str) -> str:
        """Run ``scontrol args...`` against this cluster; return stdout, raise SlurmError with stderr."""
        return self._run(["scontrol", *args])

    def submit(
        self,
        script: str | Path,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        sbatch_args: Sequence[str] = (),
        cwd: str | Path | None = None,
    ) -> Job:
        """``sbatch`` a script; return its Job.

        ``script`` is a path or, when it contains a newline, the script text itself. A relative
        path is taken from ``cwd`` (as after ``cd cwd``), else from the current folder. ``env`` is
        added to ``self.env`` and exported into the job. The job runs in ``cwd``, by default
        ``state_dir/jobs``, which is where ``slurm-<id>.out`` lands unless ``sbatch_args`` say.
        """
        workdir = Path(cwd).resolve() if cwd is not None else self.state_dir / "jobs"
        path = self._script_path(script, workdir if cwd is not None else Path.cwd())
        argv = ["sbatch", "--parsable", *sbatch_args, str(path), *args]
        out = self._run(argv, env={**self.env, **(env or {})}, cwd=workdir)
        return Job(self, int(out.strip().split(";")[0]))

    def submitted(self, output: str, timeout: float = 120) -> list[Job]:
        """The jobs an ``sbatch`` printed into ``output`` (``Submitted batch job N``), each waited for."""
        jobs = [Job(self, int(number)) for number in re.findall(r"^Submitted batch job (\d+)$", output, re.M)]
        for job in jobs:
            job.wait(timeout)
        return jobs

    def _script_path(self, script: str | Path, base: Path) -> Path:
        if isinstance(script, str) and "\n" in script:
            self._scripts += 1
            path = self.state_dir / "jobs" / f"script-{self._scripts}.sbatch"
            path.write_text(script)
            path.chmod(0o755)
            return path
        return base / script

    def requeue(self, job: Job) -> None:
        """Requeue a running or pending job: it returns to PENDING and runs again (Restarts += 1)."""
        self.scontrol("requeue", str(job.id))

    def set_node_down(self, name: str, reason: str) -> None:
        """Mark a node DOWN with ``reason`` (jobs on it are killed); it stays down until ``resume``."""
        self.scontrol("update", f"NodeName={name}", "State=DOWN", f"Reason={reason}")

    def drain(self, name: str, reason: str) -> None:
        """Drain a node: running jobs finish, no new ones start on it until ``resume``."""
        self.scontrol("update", f"NodeName={name}", "State=DRAIN", f"Reason={reason}")

    def resume(self, name: str) -> None:
        """Return a DOWN or drained node to service and wait until it takes jobs again."""
        self.scontrol("update", f"NodeName={name}", "State=RESUME")
        deadline = time.monotonic() + START_TIMEOUT_S
        while self.node_state(name).startswith(("DOWN", "DRAIN")):
            if time.monotonic() > deadline:
                raise SlurmError(
                    f"node {name} still {self.node_state(name)} {START_TIMEOUT_S:g}s after resume"
                )
            time.sleep(POLL_S)

    def node_state(self, name: str) -> str:
        """The node's sinfo state upper-cased without flag suffixes: IDLE, ALLOCATED, DOWN, DRAINED..."""
        out = self._run(["sinfo", "--noheader", "--Node", f"--nodes={name}", "--format=%T"])
        return out.split()[0].rstrip("*~#!%$@^-").upper()

    def node_reason(self, name: str) -> str:
        """The reason set with the node's DOWN or DRAIN state ('' when none)."""
        out = self._run(["sinfo", "--noheader", "--Node", f"--nodes={name}", "--format=%E"])
        reason = out.splitlines()[0].strip() if out.strip() else ""
        return "" if reason == "none" else reason

    def node_addr(self, name: str) -> str:
        """The node's NodeAddr, as sbatch scripts read it with ``scontrol show node``."""
        return _parse_fields(self.scontrol("show", "node", "--oneliner", name))["NodeAddr"]

    def _node_states(self) -> dict[str, str]:
        """{node: STATE} from sinfo, or {} while slurmctld does not answer."""
        out = self._run(["sinfo", "--noheader", "--Node", "--format=%N %T"], check=False)
        pairs = (line.split() for line in out.splitlines() if line.strip())
        return {node: state.rstrip("*~#!%$@^-").upper() for node, state in pairs}


# -- processes -------------------------------------------------------------------------------


def cluster_processes(conf_path: Path) -> list[int]:
    """PIDs of slurmstepd and job processes of the cluster whose config is ``conf_path``.

    They are found by ``SLURM_CONF=<conf_path>`` in their environment, which slurmstepd inherits
    from slurmd and jobs from sbatch; this process and its ancestors are never included.
    """
    marker = f"\0SLURM_CONF={conf_path}\0".encode()
    spared = _ancestors()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in spared or not _alive(int(entry.name)):
            continue
        try:
            environ = b"\0" + (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ and (_program(int(entry.name)) == "slurmstepd" or b"\0SLURM_JOB_ID=" in environ):
            found.append(int(entry.name))
    return found


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        stat = _stat_fields(pid)
        pid = stat[1] if stat else 0
    return pids


def _stat_fields(pid: int) -> tuple[str, int] | None:
    """(state letter, parent pid) of a process, or None when it does not exist."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def _alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie (this machine's init does not reap orphans)."""
    stat = _stat_fields(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def _program(pid: int) -> str:
    """Base name of a process's program: slurmd, slurmstepd, ... ('' if gone)."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""
    return "slurmstepd" if comm.startswith("slurmstepd") else comm


def _kill(pids: Iterable[int]) -> None:
    """SIGKILL processes and wait until they are gone."""
    pids = list(pids)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _wait_dead(pids, 10.0)


def _wait_dead(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S / 4)
    return True


# -- small parsers -----------------------------------------------------------------------------


def partitions_from_conf(text: str) -> dict[str, list[str]]:
    """{partition: [nodes]} from the ``NodeName=``/``PartitionName=`` lines of a slurm.conf fragment.

    Node lists must be plain comma lists (no ``[1-3]`` ranges) and every partition node must have a
    NodeName line; anything else is a ValueError naming the line. Comments and other keys are ignored.
    """
    declared: list[str] = []
    partitions: dict[str, list[str]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        fields = dict(token.split("=", 1) for token in raw.split("#")[0].split() if "=" in token)
        if "NodeName" in fields:
            declared += fields["NodeName"].split(",")
        elif "PartitionName" in fields:
            nodes = fields.get("Nodes", "")
            if not nodes or "[" in nodes:
                raise ValueError(f"line {number}: PartitionName needs Nodes= as a plain comma list: {raw!r}")
            partitions[fields["PartitionName"]] = nodes.split(",")
    unknown = sorted({node for nodes in partitions.values() for node in nodes} - set(declared))
    if unknown or not partitions:
        raise ValueError(f"no partitions, or partition nodes without a NodeName line: {unknown}")
    return partitions


def partitions_from_pcluster(config: Mapping) -> dict[str, list[str]]:
    """{queue: [nodes]} of a rendered ParallelCluster v3 config (``Scheduling.SlurmQueues``), named as
    ParallelCluster names its Slurm nodes: ``<queue>-st-<compute resource>-<i>`` for the ``MinCount``
    static nodes, ``<queue>-dy-<compute resource>-<i>`` for the rest up to ``MaxCount`` (defaults 0 and
    10, as ParallelCluster's). Anything else (an unrendered ``${Count}``) is a ValueError naming it."""
    queues = (config.get("Scheduling") or {}).get("SlurmQueues") if isinstance(config, Mapping) else None
    if not queues:
        raise ValueError("no Scheduling.SlurmQueues: not a ParallelCluster config with a Slurm scheduler")
    partitions: dict[str, list[str]] = {}
    for queue in queues:
        nodes: list[str] = []
        for resource in queue.get("ComputeResources") or []:
            where = f"queue {queue.get('Name')!r} compute resource {resource.get('Name')!r}"
            try:
                low, high = int(resource.get("MinCount", 0)), int(resource.get("MaxCount", 10))
            except (TypeError, ValueError):
                raise ValueError(f"{where}: MinCount/MaxCount must be numbers (render it first)") from None
            if not 0 <= low <= high or high == 0:
                raise ValueError(f"{where}: needs 0 <= MinCount <= MaxCount and MaxCount >= 1")
            prefix = f"{queue.get('Name')}-%s-{resource.get('Name')}-"
            nodes += [prefix % "st" + str(i) for i in range(1, low + 1)]
            nodes += [prefix % "dy" + str(i) for i in range(1, high - low + 1)]
        partitions[str(queue.get("Name"))] = nodes
    return _check_partitions(partitions)


def _check_partitions(partitions: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Copy of ``partitions`` with every name checked (Slurm names: letters, digits, '-', '_', '.')."""
    checked = {}
    for name, nodes in partitions.items():
        names = [name, *nodes]
        if not nodes or not all(n and all(c.isalnum() or c in "-_." for c in n) for n in names):
            raise ValueError(f"partition {name!r}: nodes {list(nodes)} must be non-empty plain names")
        checked[str(name)] = [str(node) for node in nodes]
    return checked


def _unique_nodes(partitions: Mapping[str, Sequence[str]]) -> list[str]:
    """Every node of the partitions once, in first-seen order."""
    return list(dict.fromkeys(node for nodes in partitions.values() for node in nodes))


def _parse_fields(line: str) -> dict[str, str]:
    """``Key=value`` pairs of one ``scontrol --oneliner`` line (values may contain spaces)."""
    fields: dict[str, str] = {}
    key = None
    for token in line.split():
        name, sep, value = token.partition("=")
        if sep and name[:1].isupper():  # Slurm's keys are capitalised; reason text rarely is
            key = name
            fields[key] = value
        elif key is not None:
            fields[key] += " " + token
    return fields


def _tail_text(text: str, lines: int = 20) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on loopback right now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _require_programs() -> dict[str, str]:
    """Paths of REQUIRED_PROGRAMS (sbin included); SlurmError naming the missing ones."""
    found = find_programs(*REQUIRED_PROGRAMS)
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise SlurmError(
            missing_message("LocalSlurm", missing, f"install slurm-wlm and munge: {HOW_TO_INSTALL}")
        )
    return {name: str(path) for name, path in found.items()}


# -- command line ------------------------------------------------------------------------------


def _pcluster_partitions(path: Path | None) -> dict[str, list[str]] | None:
    """``--pcluster-config``: the queues and node names of a rendered ParallelCluster config (or None)."""
    if path is None:
        return None
    import yaml  # noqa: PLC0415  (only this option needs it)

    try:
        return partitions_from_pcluster(yaml.safe_load(path.read_text()) or {})
    except OSError as exc:
        raise ValueError(
            f"--pcluster-config {path}: {exc.strerror}; pass a config create_config.py wrote"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "not YAML"
        raise ValueError(
            f"--pcluster-config {path}: {problem}{where}; pass a config create_config.py wrote"
        ) from None
    except ValueError as exc:
        raise ValueError(f"--pcluster-config {path}: {exc}") from None


def _slurm_conf_partitions(path: Path | None) -> dict[str, list[str]] | None:
    """``--slurm-conf``: the partitions and node names of a file's NodeName/PartitionName lines (or None)."""
    if path is None:
        return None
    try:
        return partitions_from_conf(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--slurm-conf {path}: {exc}; pass a file of NodeName/PartitionName lines") from None
    except ValueError as exc:
        raise ValueError(f"--slurm-conf {path}: {exc}") from None


def _cli_up(ns: argparse.Namespace) -> int:
    partitions = _pcluster_partitions(getattr(ns, "pcluster_config", None))
    partitions = partitions or _slurm_conf_partitions(getattr(ns, "slurm_conf", None))
    cluster = LocalSlurm(ns.nodes, ns.cpus_per_node, ns.state_dir, keep=True, partitions=partitions).start()
    nodes = ", ".join(cluster.node_names)
    print(f"LocalSlurm up: {nodes} x {ns.cpus_per_node} CPU, state in {cluster.state_dir}")
    print(f"stop it with: python -m testbed.slurm down --state-dir {cluster.state_dir}")
    print(f"export SLURM_CONF={cluster.conf_path}")
    return 0


def _cli_status(ns: argparse.Namespace) -> int:
    cluster = LocalSlurm.attach(ns.state_dir)
    dead = cluster._dead_daemons()
    if dead:
        raise SlurmError(
            f"LocalSlurm in {cluster.state_dir} is not running ({', '.join(dead)} gone); "
            f"clean up with `python -m testbed.slurm down --state-dir {cluster.state_dir}`"
        )
    print(cluster._run(["sinfo", "--Node", "--long"]), end="")
    print(cluster._run(["squeue"]), end="")
    print(f"export SLURM_CONF={cluster.conf_path}")
    return 0


def _cli_down(ns: argparse.Namespace) -> int:
    cluster = LocalSlurm.attach(ns.state_dir)
    cluster.stop()
    print(f"LocalSlurm in {cluster.state_dir} stopped and removed")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m testbed.slurm", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, func, text in [
        ("up", _cli_up, "start a cluster that keeps running after this command"),
        ("status", _cli_status, "show its nodes and jobs"),
        ("down", _cli_down, "stop it and remove its state folder"),
    ]:
        sub = commands.add_parser(name, help=text)
        sub.set_defaults(func=func)
        sub.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="default: %(default)s")
        if name == "up":
            sub.add_argument("--nodes", type=int, default=2, help="number of slurmd nodes (default 2)")
            sub.add_argument("--cpus-per-node", type=int, default=1, help="CPUs per node (default 1)")
            sub.add_argument(
                "--pcluster-config",
                type=Path,
                help="a rendered ParallelCluster config: its queues and node names (instead of --nodes)",
            )
            sub.add_argument(
                "--slurm-conf",
                type=Path,
                help="a file of slurm.conf NodeName/PartitionName lines: those partitions and node names",
            )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m testbed.slurm``; errors print one line and exit 1."""
    ns = _parser().parse_args(argv)
    try:
        return ns.func(ns)
    except (SlurmError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
