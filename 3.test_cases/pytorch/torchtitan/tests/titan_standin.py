"""A stand-in for torchtitan.train on the local Slurm cluster, where the project venv has no torchtitan:
run by the sbatch exactly as torchtitan.train is (``torchrun -m ENTRY_POINT --module aws_llama3 --config
PRESET --dump_folder RUN_DIR ...``), it joins the process group over gloo, all-reduces, and records per
rank what the launcher gave it in ``RUN_DIR/ranks/rank<R>.json``."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import torch
import torch.distributed as dist


def main() -> None:
    args = sys.argv[1:]
    run_dir = Path(args[args.index("--dump_folder") + 1])
    dist.init_process_group("gloo")
    total = torch.tensor([float(dist.get_rank())])
    dist.all_reduce(total)
    record = {
        "rank": dist.get_rank(),
        "world_size": dist.get_world_size(),
        "local_rank": int(os.environ["LOCAL_RANK"]),
        "node": os.environ.get("SLURMD_NODENAME", socket.gethostname()),
        "master_addr": os.environ["MASTER_ADDR"],
        "rank_sum": total.item(),
        "argv": args,
        "pythonpath": os.environ.get("PYTHONPATH", ""),
    }
    (run_dir / "ranks").mkdir(parents=True, exist_ok=True)
    (run_dir / "ranks" / f"rank{dist.get_rank()}.json").write_text(json.dumps(record))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
