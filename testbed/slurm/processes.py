"""The processes a LocalSlurm leaves behind it if nothing stops them: slurmstepd and job processes,
found in ``/proc`` by the ``SLURM_CONF`` they inherited."""

from __future__ import annotations

import os
from pathlib import Path

from testbed.service import alive, program, stat_fields


def cluster_processes(conf_path: Path) -> list[int]:
    """PIDs of slurmstepd and job processes of the cluster whose config is ``conf_path``.

    They are found by ``SLURM_CONF=<conf_path>`` in their environment, which slurmstepd inherits
    from slurmd and jobs from sbatch; this process and its ancestors are never included.
    """
    marker = f"\0SLURM_CONF={conf_path}\0".encode()
    spared = _ancestors()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in spared or not alive(int(entry.name)):
            continue
        try:
            environ = b"\0" + (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ and (program(int(entry.name)) == "slurmstepd" or b"\0SLURM_JOB_ID=" in environ):
            found.append(int(entry.name))
    return found


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        stat = stat_fields(pid)
        pid = stat[1] if stat else 0
    return pids
