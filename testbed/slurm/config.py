"""What a LocalSlurm writes and reads: slurm.conf, gres.conf and the MUNGE key, and the node and
partition layouts of a cluster's own configuration (``partitions_from_conf``,
``partitions_from_pcluster``)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path

# Step credential lifetime; Slurm also holds a requeued job this long (+1 s) before it may start
# again (the default, 120 s, would make every requeue test wait two minutes).
CRED_EXPIRE_S = 10

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


def slurm_conf(
    state_dir: Path,
    user: str,
    node_names: Sequence[str],
    cpus_per_node: int,
    gpus_per_node: int,
    partitions: Mapping[str, Sequence[str]],
    hook_lines: str = "",
) -> str:
    """The text of slurm.conf: free ports for slurmctld and every slurmd, all nodes on 127.0.0.1."""
    ctld_port, *node_ports = free_ports(1 + len(node_names))
    host = socket.gethostname().split(".")[0]
    memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    gres = f" Gres=gpu:{gpus_per_node}" if gpus_per_node else ""
    node_lines = "\n".join(
        f"NodeName={name} NodeHostname={host} NodeAddr=127.0.0.1 Port={port} "
        f"CPUs={cpus_per_node} RealMemory={memory_mb}{gres} State=UNKNOWN"
        for name, port in zip(node_names, node_ports, strict=True)
    )
    if gpus_per_node:
        node_lines = "GresTypes=gpu\n" + node_lines
    return _CONF_TEMPLATE.format(
        host=host,
        ctld_port=ctld_port,
        user=user,
        state=state_dir,
        cred_expire=CRED_EXPIRE_S,
        srun_ports=srun_port_range(),
        hook_lines=hook_lines,
        node_lines=node_lines,
        partition_lines=partition_lines(partitions),
    )


def write_gres_conf(state_dir: Path, node_names: Sequence[str], gpus_per_node: int) -> None:
    """gres.conf for ``gpus_per_node`` GPUs a node, with empty stand-in device files.

    Slurm drops a GPU gres without File=: the stand-ins take the devices' place (no cgroup constrains
    devices here), so jobs get CUDA_VISIBLE_DEVICES as on a GPU node."""
    devices = state_dir / "dev"
    devices.mkdir(exist_ok=True)
    for index in range(gpus_per_node):
        (devices / f"gpu{index}").touch()
    (state_dir / "gres.conf").write_text(
        f"NodeName={','.join(node_names)} Name=gpu Count={gpus_per_node} "
        f"File={devices}/gpu[0-{gpus_per_node - 1}]\n"
    )


def write_munge_key(path: Path) -> None:
    """A fresh random MUNGE key, readable by this user only (munged refuses anything else)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as key:
        key.write(os.urandom(1024))


def partition_lines(partitions: Mapping[str, Sequence[str]]) -> str:
    """One PartitionName line per partition; the first is the default."""
    return "\n".join(
        f"PartitionName={name} Nodes={','.join(nodes)} Default={'YES' if i == 0 else 'NO'} "
        "MaxTime=INFINITE State=UP"
        for i, (name, nodes) in enumerate(partitions.items())
    )


def hook_lines(prolog: Path | None, epilog: Path | None) -> str:
    """Prolog/Epilog lines of slurm.conf ('' without hooks); the prolog runs at allocation.

    ValueError when a hook is not an executable file."""
    lines = []
    for name, path in (("Prolog", prolog), ("Epilog", epilog)):
        if path is None:
            continue
        if not os.access(path, os.X_OK):
            raise ValueError(f"{name.lower()} {path} is not an executable file; chmod +x it")
        lines.append(f"{name}={path}")
    if prolog is not None:
        # Alloc: the prolog runs on every allocated node when the job starts, not at its first step.
        lines.append("PrologFlags=Alloc")
    return "".join(line + "\n" for line in lines)


def srun_port_range(width: int = 2000) -> str:
    """``first-last`` ports for ``SrunPortRange``, just outside the kernel's ephemeral port range."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999  # Linux's default
    if high + width <= 65535:  # the highest port
        return f"{high + 1}-{high + width}"
    return f"{max(1024, low - width)}-{low - 1}"


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on loopback right now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


# -- layouts of a cluster's own configuration ----------------------------------------------------


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
    return check_partitions(partitions)


def check_partitions(partitions: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Copy of ``partitions`` with every name checked (Slurm names: letters, digits, '-', '_', '.')."""
    checked = {}
    for name, nodes in partitions.items():
        names = [name, *nodes]
        if not nodes or not all(n and all(c.isalnum() or c in "-_." for c in n) for n in names):
            raise ValueError(f"partition {name!r}: nodes {list(nodes)} must be non-empty plain names")
        checked[str(name)] = [str(node) for node in nodes]
    return checked


def unique_nodes(partitions: Mapping[str, Sequence[str]]) -> list[str]:
    """Every node of the partitions once, in first-seen order."""
    return list(dict.fromkeys(node for nodes in partitions.values() for node in nodes))
