"""The processes a LocalSlurm leaves behind it if nothing stops them: slurmstepd and job processes,
found (psutil) by the ``SLURM_CONF`` they inherited."""

from __future__ import annotations

import os
from pathlib import Path

import psutil

from testbed.service import alive, program


def cluster_processes(conf_path: Path) -> list[int]:
    """PIDs of slurmstepd and job processes of the cluster whose config is ``conf_path``.

    They are found by ``SLURM_CONF=<conf_path>`` in their environment, which slurmstepd inherits
    from slurmd and jobs from sbatch; this process and its ancestors are never included.
    """
    spared = {os.getpid(), *(parent.pid for parent in psutil.Process().parents())}
    found = []
    for process in psutil.process_iter():
        if process.pid in spared or not alive(process.pid):
            continue
        try:
            environ = process.environ()
        except psutil.Error:
            continue
        if environ.get("SLURM_CONF") != str(conf_path):
            continue
        if program(process.pid) == "slurmstepd" or "SLURM_JOB_ID" in environ:
            found.append(process.pid)
    return found
