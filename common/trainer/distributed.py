"""Joining and leaving the process group: every trainer of this repository carries a copy.

torchrun (or the Kubeflow PyTorchJob / Slurm launcher around it) sets ``RANK``, ``WORLD_SIZE`` and the
rendezvous store; plain ``python`` gets a one-process group, so the same code runs without a launcher.
CPU ranks use gloo, GPU ranks NCCL, one device per local rank.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from .faults import restart_count


def setup_distributed() -> tuple[int, int, torch.device]:
    """Join torchrun's group (gloo on CPU, NCCL on GPU), or a one-process group; (rank, world, device)."""
    use_cuda = torch.cuda.is_available()
    backend = "nccl" if use_cuda else "gloo"
    if "RANK" in os.environ:
        # torchrun's agent keeps one TCPStore across worker restarts (torch 2.13): one key prefix per
        # attempt, or the restarted group reads the dead group's addresses.
        store, rank, world_size = next(dist.rendezvous("env://"))
        store = dist.PrefixStore(f"attempt_{restart_count()}", store)
        dist.init_process_group(backend, store=store, rank=rank, world_size=world_size)
    else:
        dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        return dist.get_rank(), dist.get_world_size(), torch.device("cuda", local_rank)
    # The node's cores shared between its ranks, so two ranks do not fight over the same cores.
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
    return dist.get_rank(), dist.get_world_size(), torch.device("cpu")


def shutdown_distributed() -> None:
    """Leave together: a rank that destroys its group while a peer is in the last collective closes
    that peer's connections under it."""
    dist.barrier()
    dist.destroy_process_group()


def broadcast_outcome(message: str | None) -> str | None:
    """Rank 0's outcome (``None`` for success, else an error message), known to every rank."""
    box: list[str | None] = [message if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]
