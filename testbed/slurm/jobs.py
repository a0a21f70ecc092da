"""Jobs and nodes of a running LocalSlurm, through Slurm's own commands: ``Job`` (state read live from
``scontrol``) and ``SlurmCommands``, the submit / wait / requeue / drain / resume side of ``LocalSlurm``."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from testbed.service import POLL_S, tail_text

# Job states after which a job never runs again (a requeue goes through PENDING instead).
TERMINAL_STATES = frozenset(
    {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY"}
    | {"PREEMPTED", "TIMEOUT"}
)
RESUME_TIMEOUT_S = 30.0
COMMAND_TIMEOUT_S = 60


class SlurmError(RuntimeError):
    """A Slurm daemon or command failed; the message names what and how to fix it."""


class Job:
    """A batch job submitted to a ``LocalSlurm``; state is read live from ``scontrol``."""

    def __init__(self, cluster: SlurmCommands, job_id: int) -> None:
        self.id = job_id
        self._cluster = cluster
        info = self.info()
        self.stdout_path = Path(info.get("StdOut", ""))
        self.stderr_path = Path(info.get("StdErr", info.get("StdOut", "")))

    def __repr__(self) -> str:
        return f"Job({self.id})"

    def info(self) -> dict[str, str]:
        """All fields of ``scontrol show job`` for this job."""
        return parse_fields(self._cluster.scontrol("show", "job", "--oneliner", str(self.id)))

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
                    f"waiting for {sorted(wanted)}; output tail:\n{tail_text(self.output())}"
                )
            time.sleep(POLL_S)


class SlurmCommands:
    """Slurm's client commands against one cluster: ``env`` names it (``SLURM_CONF``), jobs submitted
    without ``cwd`` run in ``state_dir/jobs``."""

    env: dict[str, str]
    state_dir: Path
    _scripts = 0

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
            timeout=COMMAND_TIMEOUT_S,
        )
        if check and result.returncode != 0:
            raise SlurmError(f"`{' '.join(argv)}` failed (exit {result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def scontrol(self, *args: str) -> str:
        """Run ``scontrol args...`` against this cluster; return stdout, raise SlurmError with stderr."""
        return self._run(["scontrol", *args])

    # -- jobs --------------------------------------------------------------------------------

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

    def _cancel_all_jobs(self, timeout: float) -> None:
        """scancel every job and wait (bounded) until no job or node is still completing."""
        job_ids = self._run(["squeue", "--noheader", "--format=%A"], check=False).split()
        if job_ids:
            self._run(["scancel", *job_ids], check=False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy_jobs = self._run(["squeue", "--noheader", "--format=%A"], check=False).split()
            completing = [s for s in self._node_states().values() if s.startswith("COMPLETING")]
            if not busy_jobs and not completing:
                return
            time.sleep(POLL_S)

    # -- nodes -------------------------------------------------------------------------------

    def set_node_down(self, name: str, reason: str) -> None:
        """Mark a node DOWN with ``reason`` (jobs on it are killed); it stays down until ``resume``."""
        self.scontrol("update", f"NodeName={name}", "State=DOWN", f"Reason={reason}")

    def drain(self, name: str, reason: str) -> None:
        """Drain a node: running jobs finish, no new ones start on it until ``resume``."""
        self.scontrol("update", f"NodeName={name}", "State=DRAIN", f"Reason={reason}")

    def resume(self, name: str) -> None:
        """Return a DOWN or drained node to service and wait until it takes jobs again."""
        self.scontrol("update", f"NodeName={name}", "State=RESUME")
        deadline = time.monotonic() + RESUME_TIMEOUT_S
        while self.node_state(name).startswith(("DOWN", "DRAIN")):
            if time.monotonic() > deadline:
                raise SlurmError(
                    f"node {name} still {self.node_state(name)} {RESUME_TIMEOUT_S:g}s after resume"
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
        return parse_fields(self.scontrol("show", "node", "--oneliner", name))["NodeAddr"]

    def _node_states(self) -> dict[str, str]:
        """{node: STATE} from sinfo, or {} while slurmctld does not answer."""
        out = self._run(["sinfo", "--noheader", "--Node", "--format=%N %T"], check=False)
        pairs = (line.split() for line in out.splitlines() if line.strip())
        return {node: state.rstrip("*~#!%$@^-").upper() for node, state in pairs}


def parse_fields(line: str) -> dict[str, str]:
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
