"""``LocalSlurm``'s lifecycle: the state folder, munged, slurmctld and one slurmd per node, started and
waited for, and stopped with every job process they left."""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from testbed import shared_storage
from testbed.service import Service, kill
from testbed.slurm import config
from testbed.slurm.jobs import SlurmCommands, SlurmError
from testbed.slurm.processes import cluster_processes
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
DEFAULT_STATE_DIR = Path(".testbed/slurm")
STATE_FILE = "cluster.json"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
# Unix socket paths (munge, slurmstepd's `<spool>/<node>_<job>.<step>`) must fit in 107 bytes.
_SOCKET_PATH_ROOM = len("/spool/n999/n999_9999999.4294967291")
_MAX_SOCKET_PATH = 107
# Environment of an enclosing Slurm job would leak into sbatch/srun and confuse them.
_FOREIGN_PREFIXES = ("SLURM_", "SBATCH_", "SRUN_", "SALLOC_")


class LocalSlurm(SlurmCommands, Service):
    """A Slurm cluster of ``nodes`` slurmd on this host; a context manager that starts and stops it."""

    error = SlurmError
    state_file = STATE_FILE

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
        shared: Mapping[str, Path] | None = None,
    ) -> None:
        # shared: {"/fsx": folder}: the cluster's shared storage at its path in every job (each slurmd
        # runs in a private root with it, testbed/shared_storage.py; needs root).
        # gpus_per_node: GPUs each node declares as a count-only gres (empty stand-in device files: jobs
        # that ask for `--gpus-per-node=8` or `--gres=gpu:8` are scheduled as on a GPU cluster).
        # partitions: {name: [node names]} instead of one partition of n1..nN (e.g. the node and
        # partition layout a cluster's own configuration declares, see partitions_from_conf).
        self.partitions = config.check_partitions(partitions) if partitions else None
        if self.partitions:
            nodes = len(config.unique_nodes(self.partitions))
        if nodes < 1 or cpus_per_node < 1:
            raise ValueError(f"nodes={nodes} and cpus_per_node={cpus_per_node} must be at least 1")
        if gpus_per_node < 0:
            raise ValueError(f"gpus_per_node={gpus_per_node} must be 0 or more")
        # stop() removes state_dir only when this object made it (or found its own cluster in it).
        super().__init__(state_dir, keep, temp_prefix="localslurm-")
        self.nodes = nodes
        self.gpus_per_node = gpus_per_node
        self.shared = {target: Path(source).resolve() for target, source in (shared or {}).items()}
        # Node health hooks: slurmd runs them (as this user) on every node of an allocation.
        self.prolog = Path(prolog).resolve() if prolog else None
        self.epilog = Path(epilog).resolve() if epilog else None
        self.cpus_per_node = cpus_per_node
        self.partition = partition
        self.conf_path = self.state_dir / "slurm.conf"
        self.node_names = (
            config.unique_nodes(self.partitions)
            if self.partitions
            else [f"n{i}" for i in range(1, nodes + 1)]
        )
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_PREFIXES)}
        self.env["SLURM_CONF"] = str(self.conf_path)
        # A Python process of a job that dies of a fatal signal (a rank's SIGABRT) prints its threads'
        # Python tracebacks into the job's output: where it died, not only that it did.
        self.env.setdefault("PYTHONFAULTHANDLER", "1")

    @classmethod
    def attach(cls, state_dir: Path) -> LocalSlurm:
        """The cluster recorded in ``state_dir`` by an earlier ``start`` (used by the CLI)."""
        start_one = f"`python -m testbed.slurm up --state-dir {state_dir}`"
        state = cls._read_state(
            state_dir, f"no LocalSlurm cluster in {state_dir}; start one with {start_one}"
        )
        cluster = cls(
            state["nodes"],
            state["cpus_per_node"],
            Path(state_dir),
            partition=state["partition"],
            partitions=state.get("partitions"),
            gpus_per_node=state.get("gpus_per_node", 0),
            shared=state.get("shared"),
        )
        return cluster._adopt(state)

    def _state(self) -> dict[str, Any]:
        state = {"nodes": self.nodes, "cpus_per_node": self.cpus_per_node, "partition": self.partition}
        return state | {
            "partitions": self.partitions,
            "gpus_per_node": self.gpus_per_node,
            "shared": {target: str(source) for target, source in self.shared.items()},
            "conf": str(self.conf_path),
        }

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> LocalSlurm:
        """Write key and config, start munged, slurmctld and the slurmd, wait until all nodes are idle."""
        programs = _require_programs()
        self._prepare_state_dir()
        try:
            config.write_munge_key(self.state_dir / "munge" / "munge.key")
            self._write_conf()
            self._start_munged(programs["munged"])
            self._spawn_daemon("slurmctld", [programs["slurmctld"], "-D"])
            for name in self.node_names:
                self._spawn_slurmd(name, programs["slurmd"])
            self._wait_until_idle(START_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_idle(self, timeout: float) -> None:
        """Poll sinfo until every node is idle; fail early when a daemon dies."""
        states: dict[str, str] = {}

        def all_idle() -> bool:
            states.update(self._node_states())
            return all(states.get(name) == "IDLE" for name in self.node_names)

        self._wait_until(all_idle, timeout, lambda: f"nodes not idle (sinfo: {states or 'no answer'})")

    def _before_stop(self) -> None:
        if "slurmctld" in self._pids and self._alive("slurmctld"):
            self._cancel_all_jobs(STOP_TIMEOUT_S)

    def _after_stop(self) -> None:
        # Job processes and slurmstepd left behind (found by their SLURM_CONF): nothing outlives the cluster.
        kill(cluster_processes(self.conf_path))

    def _prepare_state_dir(self) -> None:
        """Make the folders; refuse a running cluster or a foreign non-empty folder."""
        self._replace_stale(
            f"LocalSlurm already up in {self.state_dir} (SLURM_CONF={self.conf_path}); "
            f"stop it first with `python -m testbed.slurm down --state-dir {self.state_dir}`"
        )
        if self.state_dir.exists() and any(self.state_dir.iterdir()):
            raise SlurmError(
                f"{self.state_dir} is not empty and holds no LocalSlurm cluster; pass a new or empty folder"
            )
        longest = max(len(name) for name in self.node_names)
        if len(str(self.state_dir)) + _SOCKET_PATH_ROOM + 2 * max(0, longest - 4) > _MAX_SOCKET_PATH:
            raise SlurmError(
                f"state dir {self.state_dir} is too long for Slurm's Unix sockets; use a shorter path"
            )
        self._claim_state_dir()
        for sub in ["munge", "ctld", "log", "jobs", *(f"spool/{n}" for n in self.node_names)]:
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        (self.state_dir / "munge").chmod(0o700)

    def _write_conf(self) -> None:
        """slurm.conf (and gres.conf with GPUs) with free ports for slurmctld and every slurmd."""
        try:
            hooks = config.hook_lines(self.prolog, self.epilog)
        except ValueError as exc:
            raise SlurmError(str(exc)) from None
        if self.gpus_per_node:
            config.write_gres_conf(self.state_dir, self.node_names, self.gpus_per_node)
        text = config.slurm_conf(
            self.state_dir,
            pwd.getpwuid(os.getuid()).pw_name,
            self.node_names,
            self.cpus_per_node,
            self.gpus_per_node,
            self.partitions or {self.partition: self.node_names},
            hooks,
        )
        self.conf_path.write_text(text)

    def _partition_lines(self) -> str:
        """The PartitionName lines of slurm.conf; the first partition is the default."""
        return config.partition_lines(self.partitions or {self.partition: self.node_names})

    def _start_munged(self, munged: str) -> None:
        """munged on a private socket; ``--force`` because the socket's parents may be 0700."""
        munge = self.state_dir / "munge"
        argv = [munged, "--foreground", "--force", f"--socket={munge}/munge.socket"]
        argv += [f"--key-file={munge}/munge.key", f"--pid-file={munge}/munged.pid"]
        argv += [f"--seed-file={munge}/munged.seed", f"--log-file={self.state_dir}/log/munged.log"]
        self._spawn_daemon("munged", argv)
        socket_made = (munge / "munge.socket").exists
        self._wait_until(socket_made, START_TIMEOUT_S, "munged did not create its socket")

    def _spawn_daemon(self, name: str, argv: list[str]) -> None:
        """One daemon in the foreground, its output in ``log/<name>.out``, with the cluster's env."""
        self._spawn(name, argv, self.state_dir / "log" / f"{name}.out", env=self.env)

    def _spawn_slurmd(self, node: str, slurmd: str) -> None:
        """The node's slurmd; with shared folders, in a private root that has them (so do its jobs)."""
        argv = [slurmd, "-D", "-N", node]
        if self.shared:
            try:
                argv = shared_storage.wrap(argv, self.shared, self.state_dir / "root" / node)
            except ValueError as exc:
                raise SlurmError(f"shared={self.shared}: {exc}") from None
        log = self.state_dir / "log" / f"slurmd-{node}.out"
        self._spawn(f"slurmd-{node}", argv, log, env=self.env, program=slurmd)

    def _log_paths(self) -> list[Path]:
        # The daemons' own logs (slurmctld.log, slurmd-<node>.log, munged.log) besides their output.
        return sorted((self.state_dir / "log").glob("*"))


def _require_programs() -> dict[str, str]:
    """Paths of REQUIRED_PROGRAMS (sbin included); SlurmError naming the missing ones."""
    found = find_programs(*REQUIRED_PROGRAMS)
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise SlurmError(
            missing_message("LocalSlurm", missing, f"install slurm-wlm and munge: {HOW_TO_INSTALL}")
        )
    return {name: str(path) for name, path in found.items()}
