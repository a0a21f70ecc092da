"""The training loop: distributed setup, build -> parallelize -> materialise -> initialise, steps."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.distributed.device_mesh import init_device_mesh

from . import checkpoint
from .config import ConfigError, TrainConfig, parse_fault
from .data import PackedData, load_packed
from .metrics import MetricsLogger, device_peak, memory_gib
from .model import build_meta_model, flops_per_token, initialise, parameter_counts
from .parallelize import parallelize


def setup_distributed() -> tuple[int, int, torch.device]:
    """Join torchrun's group (gloo on CPU, NCCL on GPU), or a one-process group under plain python."""
    use_cuda = torch.cuda.is_available()
    backend = "nccl" if use_cuda else "gloo"
    if "RANK" in os.environ:
        # torchrun's agent keeps one TCPStore across worker restarts (torch 2.13): one key prefix per
        # attempt, or the restarted group reads the dead group's addresses.
        store, rank, world_size = next(dist.rendezvous("env://"))
        store = dist.PrefixStore(f"attempt_{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)
        dist.init_process_group(backend, store=store, rank=rank, world_size=world_size)
    else:
        dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        return dist.get_rank(), dist.get_world_size(), torch.device("cuda", local_rank)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
    return dist.get_rank(), dist.get_world_size(), torch.device("cpu")


def shutdown_distributed() -> None:
    """Leave together: a rank that destroys its group while a peer is in the last collective closes
    that peer's connections under it."""
    dist.barrier()
    dist.destroy_process_group()


def lr_factor(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio`` of the peak at ``max_steps``."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps))
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_optimizer(model: nn.Module, config: TrainConfig):
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, betas=(0.9, 0.95), weight_decay=config.weight_decay, foreach=True
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, config))
    return optimizer, scheduler


def causal_lm_loss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = model(input_ids=inputs).logits
    return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())


def build_model(config: TrainConfig, device: torch.device) -> nn.Module:
    """Meta build -> parallelize -> materialise on the device -> initialise (in that order)."""
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    model = build_meta_model(config.model)
    parallelize(model, config, mesh, device)
    model.to_empty(device=device)
    initialise(model, config.seed)
    return model


def prepare_run_dir(config: TrainConfig) -> None:
    """Rank 0 checks the folders and writes the resolved config; every rank learns the outcome."""
    outcome: list[str | None] = [None]
    if dist.get_rank() == 0:
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


def record_rank(config: TrainConfig, rank: int, world_size: int) -> None:
    folder = Path(config.run_dir) / "ranks"
    folder.mkdir(parents=True, exist_ok=True)
    info = {
        "rank": rank,
        "world_size": world_size,
        "node": os.environ.get("SLURMD_NODENAME") or socket.gethostname(),
        "run_id": os.environ.get("TORCHELASTIC_RUN_ID", ""),
        "restart_count": int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")),
    }
    (folder / f"rank{rank}.json").write_text(json.dumps(info) + "\n")


def maybe_kill(config: TrainConfig, rank: int, step: int) -> None:
    if not config.fault_kill_at_step or os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") != "0":
        return
    if (rank, step) == parse_fault(config.fault_kill_at_step):
        print(f"fault injection: SIGKILL rank {rank} at step {step}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


class Trainer:
    """State of one run; ``run()`` trains to ``max_steps`` and returns the summary."""

    def __init__(self, config: TrainConfig, data: PackedData) -> None:
        self.config, self.data = config, data
        self.rank, self.world_size, self.device = setup_distributed()
        prepare_run_dir(config)
        record_rank(config, self.rank, self.world_size)
        torch.manual_seed(config.seed + self.rank)
        self.model = build_model(config, self.device)
        self.optimizer, self.scheduler = build_optimizer(self.model, config)
        self.log = MetricsLogger(Path(config.run_dir), enabled=self.rank == 0)
        self.step, self.samples = 0, 0
        counts = parameter_counts(config.model)
        self.flops_per_token = flops_per_token(config.model, counts["active_non_embedding"])
        self.peak_tflops, self.peak_source = device_peak(self.device)
        self.log.record(
            event="start",
            world_size=self.world_size,
            params=counts,
            flops_per_token=self.flops_per_token,
            peak_tflops=self.peak_tflops,
            peak_source=self.peak_source,
            global_batch=self.global_batch,
        )
        self.log.say(
            f"{config.preset}: {counts['total'] / 1e6:.2f}M parameters, world size {self.world_size}, "
            f"seq {config.model.seq_len}, global batch {self.global_batch}, {self.device.type}; "
            f"peak {self.peak_tflops or 0:.3f} TFLOP/s per device ({self.peak_source})"
        )

    @property
    def global_batch(self) -> int:
        return self.config.model.micro_batch_size * self.world_size * self.config.grad_accum

    def restore(self) -> None:
        try:
            folder = checkpoint.choose(self.config.resume, self.config.checkpoint_path)
        except checkpoint.CheckpointError:
            # Every rank raises this together: leave the group cleanly (a live gloo group at exit can abort).
            shutdown_distributed()
            raise
        if folder is None:
            return
        state = checkpoint.load(folder, self.model, self.optimizer)
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.samples = int(state["step"]), int(state["samples"])
        self.log.record(event="resume", step=self.step, samples=self.samples, checkpoint=str(folder))
        self.log.say(f"resumed from {folder} at step {self.step} ({self.samples} samples consumed)")

    def train_step(self) -> dict:
        """One optimizer step over ``grad_accum`` micro-batches; returns the step's record."""
        config, micro = self.config, self.config.model.micro_batch_size
        started = time.perf_counter()
        loss_sum = torch.zeros((), device=self.device)
        for index in range(config.grad_accum):
            first = self.samples + (index * self.world_size + self.rank) * micro
            indices = self.data.sample_indices(first, micro)
            if config.record_samples:
                self._record_samples(indices)
            inputs, targets = (t.to(self.device) for t in self.data.batch(indices))
            self.model.set_requires_gradient_sync(index == config.grad_accum - 1)
            loss = causal_lm_loss(self.model, inputs, targets) / config.grad_accum
            loss.backward()
            loss_sum += loss.detach()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        lr = self.scheduler.get_last_lr()[0]
        self.scheduler.step()
        self.step += 1
        self.samples += self.global_batch
        dist.all_reduce(loss_sum)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elapsed = time.perf_counter() - started
        return self._step_record(loss_sum.item() / self.world_size, lr, grad_norm, elapsed)

    def _step_record(self, loss: float, lr: float, grad_norm, elapsed: float) -> dict:
        tokens = self.config.model.micro_batch_size * self.config.grad_accum * self.config.model.seq_len
        tokens_per_s = tokens / elapsed
        tflops = tokens_per_s * self.flops_per_token / 1e12
        norm = grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm
        return {
            "step": self.step,
            "loss": loss,
            "lr": lr,
            "grad_norm": float(norm),
            "tokens_per_s": tokens_per_s,
            "tflops": tflops,
            "mfu_pct": 100 * tflops / self.peak_tflops if self.peak_tflops else None,
            "mem_gib": memory_gib(self.device),
            "step_time_s": elapsed,
        }

    def _record_samples(self, indices: list[int]) -> None:
        folder = Path(self.config.run_dir) / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / f"rank{self.rank}.jsonl").open("a") as out:
            out.write(json.dumps({"step": self.step + 1, "indices": indices}) + "\n")

    @torch.no_grad()
    def validate(self) -> float:
        """Mean loss over ``val_batches`` batches per rank (each rank its own), averaged over ranks."""
        self.model.eval()
        total = torch.zeros((), device=self.device)
        for index in range(self.config.val_batches):
            inputs, targets = self.data.val_batch(
                index * self.world_size + self.rank, self.config.model.micro_batch_size
            )
            total += causal_lm_loss(self.model, inputs.to(self.device), targets.to(self.device))
        self.model.train()
        dist.all_reduce(total)
        val_loss = total.item() / (self.config.val_batches * self.world_size)
        perplexity = math.exp(min(val_loss, 50.0))
        self.log.record(event="val", step=self.step, val_loss=val_loss, val_ppl=perplexity)
        self.log.say(f"validation at step {self.step}: loss {val_loss:.4f}, perplexity {perplexity:.2f}")
        return val_loss

    def save(self) -> Path:
        config = self.config
        state = {
            "step": self.step,
            "samples": self.samples,
            "scheduler": self.scheduler.state_dict(),
            "config": config.to_dict(),
        }
        folder = checkpoint.save(
            config.checkpoint_path,
            self.step,
            self.model,
            self.optimizer,
            state,
            config.keep_checkpoints,
            kill_before_marker=self.step == config.fault_kill_in_checkpoint
            and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0",
        )
        self.log.record(event="checkpoint", step=self.step, path=str(folder))
        return folder

    def run(self) -> dict:
        """Train from the restored position to ``max_steps``; validate, checkpoint, summarise."""
        config = self.config
        self.restore()
        records = []
        while self.step < config.max_steps:
            maybe_kill(config, self.rank, self.step + 1)
            record = self.train_step()
            records.append(record)
            self.log.step(record)
            if config.val_every and self.step % config.val_every == 0:
                self.validate()
            if self.step % config.checkpoint_every == 0 or self.step == config.max_steps:
                self.save()
            if config.step_delay_s:
                time.sleep(config.step_delay_s)
        summary = self.summary(records)
        self.log.close()
        shutdown_distributed()
        return summary

    def summary(self, records: list[dict]) -> dict:
        steady = records[len(records) // 4 :] or records
        last = checkpoint.complete_checkpoints(self.config.checkpoint_path)
        summary = {
            "event": "summary",
            "step": self.step,
            "world_size": self.world_size,
            "final_loss": records[-1]["loss"] if records else None,
            "tokens_per_s": sum(r["tokens_per_s"] for r in steady) / len(steady) if steady else None,
            "mfu_pct": (sum(r["mfu_pct"] for r in steady) / len(steady))
            if steady and self.peak_tflops
            else None,
            "checkpoint": str(last[0]) if last else None,
        }
        self.log.record(**summary)
        if records:
            mfu = f"{summary['mfu_pct']:.1f}%" if summary["mfu_pct"] is not None else "n/a"
            self.log.say(
                f"summary: step {self.step}, final loss {summary['final_loss']:.4f}, "
                f"{summary['tokens_per_s']:,.0f} tokens/s per device, MFU {mfu}, "
                f"checkpoint {summary['checkpoint']}"
            )
        else:
            self.log.say(
                f"nothing to train: already at step {self.step} of --max-steps {self.config.max_steps}"
            )
        if self.rank == 0:
            (Path(self.config.run_dir) / "result.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary


def train(config: TrainConfig) -> dict:
    """Load the data (before any process group, so a data error stops every rank alike), then train."""
    if config.cpu_offload and not torch.cuda.is_available():
        raise ConfigError(
            "--cpu-offload moves sharded parameters from GPU to host memory and needs a GPU; "
            "drop --cpu-offload on CPU"
        )
    data = load_packed(
        config.data_path, config.model.seq_len, config.seed, config.tokenizer, config.model.vocab_size
    )
    return Trainer(config, data).run()
