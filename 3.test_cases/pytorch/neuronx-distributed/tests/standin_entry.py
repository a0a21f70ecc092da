"""A stand-in for neuronx-distributed's example scripts in the launch tests: it records the arguments and
the environment it got (one JSON file per rank under $STANDIN_RECORDS) and exits 0. What it records is
what the real script would have been started with on that node."""

import json
import os
import socket
import sys
from pathlib import Path

PREFIXES = (
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
    "MASTER_ADDR",
    "MASTER_PORT",
)
KEPT = ("FI_", "NEURON_", "MALLOC_ARENA_MAX", "XLA_", "PYTHONPATH", "SLURM", "TORCHELASTIC_RUN_ID")

record = {
    "argv": sys.argv[1:],
    "script": sys.argv[0],
    "host": socket.gethostname(),
    "env": {k: v for k, v in os.environ.items() if k in PREFIXES or k.startswith(KEPT)},
}
out = Path(os.environ["STANDIN_RECORDS"])
out.mkdir(parents=True, exist_ok=True)
node = os.environ.get("SLURMD_NODENAME", record["host"])
(out / f"{node}-rank{os.environ.get('RANK', '0')}.json").write_text(json.dumps(record))
