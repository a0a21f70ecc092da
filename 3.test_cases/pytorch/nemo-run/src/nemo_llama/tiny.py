"""Our own tiny task: a few data-parallel steps of a linear model over gloo, under torchrun.

It stands in for a NeMo recipe where no GPU is available, so that the executor, the generated launch
script and the rendezvous are exercised for real. Each rank writes ``rank<R>.json`` into ``run_dir``.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path


def train(steps: int = 20, run_dir: str = "runs/tiny") -> dict:
    """Fit y = 3x - 1 with DDP on every rank of the torchrun world; return rank 0's summary."""
    import torch  # noqa: PLC0415
    import torch.distributed as dist  # noqa: PLC0415

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(1, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    generator = torch.Generator().manual_seed(1000 + rank)  # each rank its own data
    losses = []
    for _ in range(steps):
        x = torch.rand(64, 1, generator=generator)
        loss = torch.nn.functional.mse_loss(model(x), 3 * x - 1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        mean = loss.detach().clone()
        dist.all_reduce(mean)
        losses.append(mean.item() / world)
    weight = model.module.weight.item()
    summary = {
        "rank": rank,
        "world_size": world,
        "host": socket.gethostname(),
        "steps": steps,
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "weight": weight,
        "slurm_node": os.environ.get("SLURMD_NODENAME", ""),
    }
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"rank{rank}.json").write_text(json.dumps(summary) + "\n")
    if rank == 0:
        print(f"tiny: {world} ranks, {steps} steps, loss {losses[0]:.4f} -> {losses[-1]:.4f}", flush=True)
    dist.destroy_process_group()
    return summary
