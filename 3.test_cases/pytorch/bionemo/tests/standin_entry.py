"""A stand-in for BioNeMo's training modules in the launch tests (run as ``python -m standin_entry``): it
records the arguments and the Slurm/EFA environment each task got (one JSON file per task under
$STANDIN_RECORDS) and exits 0. It is what the real script would have been started with on that node."""

import json
import os
import socket
import sys
from pathlib import Path

KEPT = ("SLURM_PROCID", "SLURM_LOCALID", "SLURM_NTASKS", "SLURM_NNODES", "SLURMD_NODENAME", "SLURM_JOB_ID")
record = {
    "argv": sys.argv[1:],
    "host": socket.gethostname(),
    "env": {k: v for k, v in os.environ.items() if k in KEPT or k.startswith(("FI_", "NCCL_"))},
}
out = Path(os.environ["STANDIN_RECORDS"])
out.mkdir(parents=True, exist_ok=True)
(out / f"task{os.environ.get('SLURM_PROCID', '0')}.json").write_text(json.dumps(record))
