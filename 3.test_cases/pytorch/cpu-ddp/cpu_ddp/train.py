"""The training loop: process group, DDP wrapping, steps, checkpoints, held-out evaluation."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from . import checkpoint
from .config import TrainConfig, parse_fault
from .data import DigitsData, load_data
from .metrics import MetricsLogger
from .model import build_model


def init_distributed() -> tuple[int, int]:
    """Join the gloo group torchrun describes, or a one-process group when run with plain python."""
    if "RANK" in os.environ:
        # torchrun's agent keeps one TCPStore across worker restarts (torch 2.13), and the restarted
        # group would otherwise read the dead group's gloo addresses: one key prefix per attempt.
        store, rank, world_size = next(dist.rendezvous("env://"))
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        store = dist.PrefixStore(f"attempt_{attempt}", store)
        dist.init_process_group("gloo", store=store, rank=rank, world_size=world_size)
    else:
        dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    return dist.get_rank(), dist.get_world_size()


def shutdown_distributed() -> None:
    """Leave the group together: a rank that destroys its group while a peer is still in the last
    collective closes that peer's connections under it."""
    dist.barrier()
    dist.destroy_process_group()


def wrap_model(model: nn.Module) -> DistributedDataParallel:
    """The one place parallelism is applied. CPU + gloo: plain DDP, gradients all-reduced in buckets."""
    return DistributedDataParallel(model)


def build_optimizer(config: TrainConfig, model: nn.Module):
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.max_steps)
    return optimizer, scheduler


def mean_over_ranks(value: torch.Tensor) -> float:
    value = value.detach().clone()
    dist.all_reduce(value)
    return value.item() / dist.get_world_size()


def evaluate(model: nn.Module, data: DigitsData) -> tuple[float, int]:
    """Held-out accuracy over all ranks' shards: (accuracy, number of test samples)."""
    features, labels = data.test_shard()
    model.eval()
    with torch.no_grad():
        correct = (model(features).argmax(dim=1) == labels).sum()
    model.train()
    counts = torch.tensor([correct.item(), len(labels)], dtype=torch.float64)
    dist.all_reduce(counts)
    return counts[0].item() / counts[1].item(), int(counts[1].item())


def maybe_inject_fault(config: TrainConfig, rank: int, step: int) -> None:
    """Resilience drill: kill this rank at the given step, on the first attempt only."""
    if not config.fault_kill_at_step or os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") != "0":
        return
    fault_rank, fault_step = parse_fault(config.fault_kill_at_step)
    if (rank, step) == (fault_rank, fault_step):
        print(f"fault injection: SIGKILL rank {rank} at step {step}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


def record_samples(run_dir: Path, rank: int, step: int, indices: list[int]) -> None:
    folder = run_dir / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"rank{rank}.jsonl").open("a", encoding="utf-8") as out:
        out.write(json.dumps({"step": step, "rank": rank, "indices": indices}) + "\n")


def prepare_run_dir(config: TrainConfig, rank: int) -> None:
    """Rank 0 checks the folders and writes the resolved config; every rank learns the outcome."""
    outcome: list[str | None] = [None]
    if rank == 0:
        try:
            checkpoint.ensure_writable(Path(config.run_dir))
            checkpoint.ensure_writable(config.checkpoint_path)
            (Path(config.run_dir) / "config.json").write_text(config.to_json() + "\n")
        except checkpoint.CheckpointError as exc:
            outcome[0] = str(exc)
    dist.broadcast_object_list(outcome, src=0)
    if outcome[0]:
        shutdown_distributed()
        raise checkpoint.CheckpointError(outcome[0])


def record_rank(run_dir: Path, rank: int, world_size: int) -> None:
    """Where this rank ran and which rendezvous it joined: ``<run_dir>/ranks/rank<R>.json``."""
    folder = run_dir / "ranks"
    folder.mkdir(parents=True, exist_ok=True)
    info = {
        "rank": rank,
        "world_size": world_size,
        "local_rank": int(os.environ.get("LOCAL_RANK", "0")),
        "node": os.environ.get("SLURMD_NODENAME") or socket.gethostname(),
        "run_id": os.environ.get("TORCHELASTIC_RUN_ID", ""),
        "restart_count": int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")),
        "pid": os.getpid(),
    }
    (folder / f"rank{rank}.json").write_text(json.dumps(info) + "\n")


def restore(config: TrainConfig, model, optimizer, scheduler, log: MetricsLogger) -> int:
    """Load the checkpoint chosen by ``config.resume``; return the step to continue from."""
    try:
        folder = checkpoint.choose(config.resume, config.checkpoint_path)
    except checkpoint.CheckpointError:
        # Every rank raises this together: leave the group cleanly (a live gloo group at exit can abort).
        shutdown_distributed()
        raise
    if folder is None:
        return 0
    state = checkpoint.load(folder)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    log.record(event="resume", step=state["step"], checkpoint=str(folder))
    log.say(f"resumed from {folder} at step {state['step']}")
    return int(state["step"])


def train(config: TrainConfig) -> dict:
    """Run training to ``max_steps``; return the final result (rank 0 also writes result.json)."""
    rank, world_size = init_distributed()
    run_dir = Path(config.run_dir)
    prepare_run_dir(config, rank)
    record_rank(run_dir, rank, world_size)
    log = MetricsLogger(run_dir, enabled=rank == 0)
    data = load_data(rank, world_size, config.batch_size, config.seed, config.test_fraction)
    model = build_model(data.num_features, config.hidden_sizes, data.num_classes, config.seed)
    optimizer, scheduler = build_optimizer(config, model)
    start_step = restore(config, model, optimizer, scheduler, log)
    if start_step == 0:
        torch.manual_seed(config.seed + rank)
    ddp_model = wrap_model(model)
    log.say(
        f"training {config.preset}: world size {world_size}, {len(data.train)} train / "
        f"{len(data.test)} test samples, {data.steps_per_epoch} steps per epoch, "
        f"steps {start_step}..{config.max_steps}"
    )
    loss = run_steps(config, ddp_model, optimizer, scheduler, data, log, start_step)
    accuracy, n_test = evaluate(model, data)
    result = {
        "event": "eval",
        "step": config.max_steps,
        "final_loss": loss,
        "accuracy": accuracy,
        "test_samples": n_test,
        "world_size": world_size,
    }
    log.record(**result)
    log.say(f"held-out accuracy {accuracy:.4f} on {n_test} samples")
    if rank == 0:
        (run_dir / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    log.close()
    shutdown_distributed()
    return result


def run_steps(config, ddp_model, optimizer, scheduler, data: DigitsData, log, start_step: int) -> float:
    """The inner loop; returns the last step's mean loss over ranks."""
    rank = dist.get_rank()
    loss_fn = nn.CrossEntropyLoss()
    loss_value = float("nan")
    for step in range(start_step + 1, config.max_steps + 1):
        maybe_inject_fault(config, rank, step)
        started = time.perf_counter()
        features, labels, indices = data.batch(step - 1)
        if config.record_samples:
            record_samples(Path(config.run_dir), rank, step, indices)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(ddp_model(features), labels)
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss_value = mean_over_ranks(loss)
        elapsed = time.perf_counter() - started
        samples_per_s = len(indices) * dist.get_world_size() / elapsed
        log.step(
            step,
            (step - 1) // data.steps_per_epoch,
            loss_value,
            scheduler.get_last_lr()[0],
            samples_per_s,
            elapsed,
        )
        if step % config.checkpoint_every == 0 or step == config.max_steps:
            state = {
                "model": ddp_model.module.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "step": step,
                "epoch": (step - 1) // data.steps_per_epoch,
                "config": config.to_dict(),
            }
            folder = checkpoint.save(config.checkpoint_path, step, state, config.keep_checkpoints)
            log.record(event="checkpoint", step=step, path=str(folder))
        if config.step_delay_s:
            time.sleep(config.step_delay_s)
    return loss_value
