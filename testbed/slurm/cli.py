"""``python -m testbed.slurm up | status | down``: a LocalSlurm that outlives the command, for a shell."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from testbed.service import run_cli
from testbed.slurm.config import partitions_from_conf, partitions_from_pcluster
from testbed.slurm.daemons import DEFAULT_STATE_DIR, LocalSlurm
from testbed.slurm.jobs import SlurmError

DESCRIPTION = "A real Slurm cluster on this machine: munged, slurmctld and one slurmd per node, on loopback."


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
    partitions = _pcluster_partitions(ns.pcluster_config) or _slurm_conf_partitions(ns.slurm_conf)
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


def _up_options(command: str, parser: argparse.ArgumentParser) -> None:
    if command != "up":
        return
    parser.add_argument("--nodes", type=int, default=2, help="number of slurmd nodes (default 2)")
    parser.add_argument("--cpus-per-node", type=int, default=1, help="CPUs per node (default 1)")
    parser.add_argument(
        "--pcluster-config",
        type=Path,
        help="a rendered ParallelCluster config: its queues and node names (instead of --nodes)",
    )
    parser.add_argument(
        "--slurm-conf",
        type=Path,
        help="a file of slurm.conf NodeName/PartitionName lines: those partitions and node names",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m testbed.slurm``; errors print one line and exit 2 (bad input) or 1."""
    commands = [
        ("up", _cli_up, "start a cluster that keeps running after this command"),
        ("status", _cli_status, "show its nodes and jobs"),
        ("down", _cli_down, "stop it and remove its state folder"),
    ]
    return run_cli(
        argv,
        "python -m testbed.slurm",
        DESCRIPTION,
        DEFAULT_STATE_DIR,
        commands,
        (SlurmError, ValueError),
        _up_options,
    )
