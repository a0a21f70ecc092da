"""nemo-run executors for this case: Slurm (pyxis container, EFA env sourced on the node) and local.

``run.Packager()`` ships no code: the NeMo container already holds NeMo, and the git packager would need
the folder to be a clean git checkout (and a network round trip in a dry run).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from nemo_llama.cluster import Cluster

CASE_DIR = Path(__file__).resolve().parents[2]


def slurm_executor(
    cluster: Cluster,
    nodes: int,
    *,
    container: bool = True,
    venv: str | None = None,
    case_dir: Path = CASE_DIR,
    own_code: bool = False,
    rdzv_port: int = 29500,
):
    """A SlurmExecutor: one torchrun per node, ``gpus_per_node`` ranks each (1 on CPU nodes).

    ``container=False`` runs on the nodes' own Python (``venv`` put first on PATH): the CPU variant.
    Experiments live in ``<job_dir>/experiments`` (src/launch.py makes job_dir nemo-run's home when it
    submits), on storage the nodes share. The EFA/NCCL variables come from ``slurm/efa-env.sh`` of this
    folder (on shared storage too), sourced in the batch script before srun, which passes them into the
    container.
    """
    import nemo_run as run  # noqa: PLC0415

    gpus = cluster.gpus_per_node
    setup = [f"source {shlex.quote(str(case_dir / 'slurm' / 'efa-env.sh'))}"]
    if venv:
        setup.append(f"export PATH={shlex.quote(str(Path(venv) / 'bin'))}:$PATH")
    executor = run.SlurmExecutor(
        account=cluster.account,
        partition=cluster.partition,
        job_name_prefix=cluster.job_name_prefix,
        nodes=nodes,
        ntasks_per_node=max(gpus, 1),
        gpus_per_node=gpus or None,
        time=cluster.time,
        exclusive=cluster.exclusive or None,
        container_image=cluster.container_image if container else None,
        container_mounts=list(cluster.container_mounts) if container else [],
        # Submitted from this (login) node: sbatch reads the experiment where nemo-run wrote it.
        tunnel=run.LocalTunnel(job_dir=os.path.join(cluster.job_dir, "experiments")),
        packager=run.Packager(),
        setup_lines="\n".join(setup),
        # Our own task (tiny) is imported from this folder; NeMo's recipes come with the container.
        env_vars={"PYTHONPATH": str(case_dir / "src")} if own_code else {},
    )
    executor.launcher = run.Torchrun(rdzv_port=rdzv_port)  # rendezvous on the first node
    return executor


def local_executor(nproc_per_node: int, case_dir: Path = CASE_DIR):
    """A LocalExecutor running torchrun with ``nproc_per_node`` ranks on this machine."""
    import nemo_run as run  # noqa: PLC0415

    return run.LocalExecutor(
        ntasks_per_node=nproc_per_node,
        launcher="torchrun",
        env_vars={"PYTHONPATH": str(case_dir / "src"), "OMP_NUM_THREADS": "1"},
    )
