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

The modules, by role: ``config`` (slurm.conf, gres.conf, the MUNGE key; layouts read from a
cluster's own configuration), ``daemons`` (``LocalSlurm``'s lifecycle on ``testbed.service``),
``jobs`` (``Job``; submit, wait, requeue, drain, resume), ``processes`` (job processes found with
psutil), ``cli`` (the command line).

Command line (state in ``.testbed/slurm`` under the current folder unless ``--state-dir``)::

    python -m testbed.slurm up --nodes 2 [--cpus-per-node 1]   # prints `export SLURM_CONF=...`
    python -m testbed.slurm up --pcluster-config build/gpu-efa.yaml   # that cluster's queues and nodes
    python -m testbed.slurm up --slurm-conf build/slurm.conf   # its NodeName/PartitionName lines' layout
    python -m testbed.slurm status
    python -m testbed.slurm down
"""

from testbed.service import POLL_S
from testbed.slurm.cli import main
from testbed.slurm.config import (
    CRED_EXPIRE_S,
    partitions_from_conf,
    partitions_from_pcluster,
    srun_port_range,
)
from testbed.slurm.daemons import (
    DEFAULT_STATE_DIR,
    REQUIRED_PROGRAMS,
    START_TIMEOUT_S,
    STATE_FILE,
    STOP_TIMEOUT_S,
    LocalSlurm,
)
from testbed.slurm.jobs import TERMINAL_STATES, Job, SlurmError
from testbed.slurm.processes import cluster_processes

__all__ = [
    "CRED_EXPIRE_S",
    "DEFAULT_STATE_DIR",
    "POLL_S",
    "REQUIRED_PROGRAMS",
    "START_TIMEOUT_S",
    "STATE_FILE",
    "STOP_TIMEOUT_S",
    "TERMINAL_STATES",
    "Job",
    "LocalSlurm",
    "SlurmError",
    "cluster_processes",
    "main",
    "partitions_from_conf",
    "partitions_from_pcluster",
    "srun_port_range",
]
