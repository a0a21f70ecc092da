"""Joining and leaving the process group: every trainer of this repository carries a copy.

torchrun (or the Kubeflow PyTorchJob / Slurm launcher around it) sets ``RANK``, ``WORLD_SIZE`` and the
rendezvous store; plain ``python`` gets a one-process group, so the same code runs without a launcher.
CPU ranks use gloo, GPU ranks NCCL, one device per local rank.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

import torch
import torch.distributed as dist

from .faults import restart_count

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_launcher() -> None:
    """Under torchrun, end this worker when its launcher dies. torch starts each worker in a session of
    its own, so killing torchrun (kill -9 of its process group, or the OOM killer) would leave the
    workers training; with the parent-death signal the kernel kills them too (Linux only)."""
    if "TORCHELASTIC_RUN_ID" not in os.environ or not sys.platform.startswith("linux"):
        return
    launcher = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
        return  # a kernel that refuses it: nothing more to do
    # The launcher died before the signal was armed: this worker was re-parented. Compared with the
    # parent read first, not with 1, since torchrun is PID 1 in a container started without --init.
    if os.getppid() != launcher:
        os.kill(os.getpid(), signal.SIGKILL)


def setup_distributed() -> tuple[int, int, torch.device]:
    """Join torchrun's group (gloo on CPU, NCCL on GPU), or a one-process group; (rank, world, device).
    A worker started by torchrun ends when torchrun does (``die_with_launcher``)."""
    die_with_launcher()
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
