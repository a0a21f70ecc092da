"""Stand-in entry point: run by a case's launcher in place of its trainer (picotron's train.py,
llm-foundry's), it records what it was given, so a launch test asserts the launch across Slurm nodes.

Each process writes ``launch-rank<RANK>.json`` into ``$LAUNCH_RECORD_DIR`` (default: its working folder):
its arguments, working folder, host and the distributed variables the launcher set. The tests read the
files back to check a launch across Slurm nodes. Standard library only: starts in milliseconds.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

VARIABLES = (
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
    "NODE_RANK",
    "MASTER_ADDR",
    "MASTER_PORT",
    "TORCHELASTIC_RUN_ID",
    "CUDA_DEVICE_MAX_CONNECTIONS",
    "SLURMD_NODENAME",
    "SLURM_JOB_ID",
    "SLURM_NODEID",
)


def main() -> int:
    folder = Path(os.environ.get("LAUNCH_RECORD_DIR") or os.getcwd())
    record = {
        "argv": sys.argv[1:],
        "cwd": os.getcwd(),
        "host": socket.gethostname(),
        "env": {name: os.environ[name] for name in VARIABLES if name in os.environ},
        "hf_token_set": bool(os.environ.get("HF_TOKEN")),  # never the token itself
    }
    target = folder / f"launch-rank{os.environ.get('RANK', 'unset')}.json"
    temporary = target.with_suffix(".tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    temporary.replace(target)
    print(f"recorded {target.name}: rank {record['env'].get('RANK')} of {record['env'].get('WORLD_SIZE')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
