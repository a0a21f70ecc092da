"""Joining the job, the device mesh, and where every array lives on it.

Processes find each other through ``jax.distributed.initialize``: the coordinator address comes from
``JAX_COORDINATOR_ADDRESS`` (the sbatch sets it to the first node; the Kubernetes Job to pod 0), the
process count and id from ``JAX_NUM_PROCESSES``/``JAX_PROCESS_ID`` (src/launch.py, the Job) or from
Slurm's ``SLURM_NTASKS``/``SLURM_PROCID``. Without a coordinator the run is one process.

The mesh has two axes: ``data`` (batch split, parameters replicated) and ``model`` (Megatron-style
tensor parallel: attention heads and the MLP's hidden units split, so each block needs one all-reduce
forward and one backward). Only the layout is declared; XLA's SPMD partitioner writes the collectives.
"""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jax_llm.config import ConfigError

# Output-split kernels (hidden -> heads or MLP units) and input-split kernels (back to hidden).
COLUMN_PARALLEL = {"wq", "wk", "wv", "w_gate", "w_up", "lm_head"}
ROW_PARALLEL = {"wo", "w_down"}


@dataclass(frozen=True)
class ProcessInfo:
    coordinator: str | None
    num_processes: int
    process_id: int
    restart: int
    node: str

    def to_dict(self) -> dict:
        return {
            "coordinator": self.coordinator,
            "num_processes": self.num_processes,
            "process_id": self.process_id,
            "restart": self.restart,
            "node": self.node,
            "job_id": os.environ.get("SLURM_JOB_ID") or os.environ.get("JOB_NAME"),
        }


def process_info(env: os._Environ | dict | None = None) -> ProcessInfo:
    """Who this process is, from the launcher's variables (ours, a Kubernetes Job's, or Slurm's)."""
    env = os.environ if env is None else env
    coordinator = env.get("JAX_COORDINATOR_ADDRESS") or None
    count = env.get("JAX_NUM_PROCESSES") or env.get("SLURM_NTASKS") or "1"
    index = env.get("JAX_PROCESS_ID") or env.get("JOB_COMPLETION_INDEX") or env.get("SLURM_PROCID") or "0"
    restart = env.get("RESTART_COUNT") or env.get("SLURM_RESTART_COUNT") or "0"
    try:
        num_processes, process_id, restarts = int(count), int(index), int(restart)
    except ValueError:
        raise ConfigError(
            f"process count {count!r} / id {index!r} / restart {restart!r} are not integers; "
            "check JAX_NUM_PROCESSES, JAX_PROCESS_ID (or SLURM_NTASKS, SLURM_PROCID)"
        ) from None
    if num_processes > 1 and coordinator is None:
        raise ConfigError(
            f"{num_processes} processes but no JAX_COORDINATOR_ADDRESS; set it to host:port of process 0"
        )
    if not 0 <= process_id < num_processes:
        raise ConfigError(f"process id {process_id} is outside 0..{num_processes - 1}")
    node = env.get("SLURMD_NODENAME") or socket.gethostname()
    return ProcessInfo(coordinator, num_processes, process_id, restarts, node)


def setup_distributed(info: ProcessInfo, cpu_devices: int) -> None:
    """Configure the CPU device count, then join the other processes (before any array is made)."""
    jax.config.update("jax_num_cpu_devices", cpu_devices)
    if info.num_processes > 1:
        # All three given and detection off: under Slurm, JAX would otherwise restrict each process to
        # the GPU numbered SLURM_LOCALID, and we run one process per node over all its GPUs.
        jax.distributed.initialize(
            coordinator_address=info.coordinator,
            num_processes=info.num_processes,
            process_id=info.process_id,
            cluster_detection_method="deactivate",
        )


def make_mesh(model_parallel: int) -> Mesh:
    """A (data, model) mesh over every device; the model axis within a process (a node's GPUs)."""
    devices = np.array(jax.devices()).reshape(-1, model_parallel)
    return Mesh(devices, ("data", "model"))


def _spec(path, leaf) -> P:
    names = [getattr(key, "key", getattr(key, "name", None)) for key in path]
    if getattr(leaf, "ndim", 0) < 2:
        return P()
    module = names[-2] if len(names) >= 2 else None
    if module in COLUMN_PARALLEL:
        return P(None, "model")
    if module in ROW_PARALLEL:
        return P("model", None)
    return P()  # embedding: replicated (a lookup, and the tied output projection reads it whole)


def shardings(mesh: Mesh, tree):
    """NamedSharding for every leaf of ``tree`` (parameters, or optimizer state that mirrors them)."""
    return jax.tree_util.tree_map_with_path(lambda path, leaf: NamedSharding(mesh, _spec(path, leaf)), tree)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P("data", None))


def replica_digest(tree) -> str:
    """A hash of this process's copy of ``tree``: each distinct shard it holds, with its index. Processes
    that hold the same shards (data-parallel replicas) must agree exactly."""
    digest = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        seen = set()
        for shard in sorted(leaf.addressable_shards, key=lambda s: str(s.index)):
            key = str(shard.index)
            if key in seen:
                continue
            seen.add(key)
            digest.update(f"{jax.tree_util.keystr(path)}{key}".encode())
            digest.update(np.asarray(shard.data).tobytes())
    return digest.hexdigest()
