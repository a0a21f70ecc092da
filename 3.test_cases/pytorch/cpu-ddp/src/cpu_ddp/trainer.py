"""The training loop: build -> wrap in DDP -> restore -> steps (metrics on log steps, checkpoints) -> eval."""

from __future__ import annotations

import gc
import json
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from . import checkpoint
from .config import TrainConfig
from .data import load_data
from .distributed import setup_distributed, shutdown_distributed
from .faults import first_attempt, kill_in_checkpoint, maybe_kill
from .metrics import MetricsLogger, device_peak, memory_gib, mfu_pct, mfu_text, steady_mean
from .model import build_model, flops_per_sample, parameter_count
from .run_folder import prepare_run_dir, record_rank, write_result


def wrap_model(model: nn.Module) -> DistributedDataParallel:
    """The one place parallelism is applied. CPU + gloo: plain DDP, which broadcasts rank 0's weights
    once and all-reduces the gradients in buckets during backward. An MLP this size needs nothing else
    (no activation checkpointing, no compile)."""
    return DistributedDataParallel(model)


def build_optimizer(model: nn.Module, config: TrainConfig):
    """SGD with momentum, cosine decay of the learning rate over ``max_steps``."""
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.max_steps)
    return optimizer, scheduler


class Trainer:
    """State of one run; ``run()`` trains to ``max_steps``, evaluates and returns the summary."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.run_dir = Path(config.run_dir)
        self.rank, self.world_size, self.device = setup_distributed()
        prepare_run_dir(self.run_dir, config.checkpoint_path, config.to_json())
        record_rank(self.run_dir, self.rank, self.world_size)
        self.log = MetricsLogger(self.run_dir, enabled=self.rank == 0)
        self.data = load_data(
            self.rank, self.world_size, config.batch_size, config.seed, config.test_fraction
        )
        self.model = build_model(
            self.data.num_features, config.hidden_sizes, self.data.num_classes, config.seed
        )
        torch.manual_seed(config.seed + self.rank)  # replaced by the checkpoint's RNG on resume
        self.optimizer, self.scheduler = build_optimizer(self.model, config)
        self.ddp_model = wrap_model(self.model)
        self.loss_fn = nn.CrossEntropyLoss()
        self.step, self.lr = 0, config.lr
        self.flops_per_sample = flops_per_sample(self.model)
        self.peak_tflops, self.peak_source = device_peak(self.device)
        self.log.record(
            event="start",
            world_size=self.world_size,
            params=parameter_count(self.model),
            flops_per_sample=self.flops_per_sample,
            peak_tflops=self.peak_tflops,
            peak_source=self.peak_source,
            global_batch=config.batch_size * self.world_size,
            steps_per_epoch=self.data.steps_per_epoch,
        )
        self.log.say(
            f"training {config.preset}: {parameter_count(self.model):,} parameters, world size "
            f"{self.world_size}, {len(self.data.train)} train / {len(self.data.test)} test samples, "
            f"{self.data.steps_per_epoch} steps per epoch; peak {self.peak_tflops or 0:.3f} TFLOP/s per "
            f"device ({self.peak_source})"
        )

    @property
    def epoch(self) -> int:
        """The epoch of the step trained last."""
        return max(0, self.step - 1) // self.data.steps_per_epoch

    def restore(self) -> None:
        """Load the checkpoint ``--resume`` names (auto: the newest verified one), if any."""
        try:
            folder = checkpoint.choose(self.config.resume, self.config.checkpoint_path)
        except checkpoint.CheckpointError:
            # Every rank raises this together: leave the group cleanly (a live gloo group at exit can abort).
            shutdown_distributed()
            raise
        if folder is None:
            return
        state = checkpoint.load(folder, self.model, self.optimizer, self.scheduler)
        self.step = int(state["step"])
        self.log.record(event="resume", step=self.step, checkpoint=str(folder))
        self.log.say(f"resumed from {folder} at step {self.step}")

    def train_step(self) -> torch.Tensor:
        """One optimizer step on this rank's batch; returns this rank's loss, not reduced (``log_step``
        reduces it, on log steps only, so other steps have no collective besides DDP's)."""
        features, labels, indices = self.data.batch(self.step)
        if self.config.record_samples:
            self._record_samples(indices)
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.ddp_model(features), labels)
        loss.backward()
        self.optimizer.step()
        self.lr = self.scheduler.get_last_lr()[0]  # the rate this step used
        self.scheduler.step()
        self.step += 1
        return loss.detach()

    def log_step(self, loss: torch.Tensor, steps: int, seconds: float) -> dict:
        """Collective. The step's loss averaged over ranks; throughput over the ``steps`` since the
        previous log."""
        total = loss.clone()
        dist.all_reduce(total)
        samples_per_s = steps * self.config.batch_size / seconds  # per device
        tflops = samples_per_s * self.flops_per_sample / 1e12
        record = {
            "step": self.step,
            "epoch": self.epoch,
            "loss": total.item() / self.world_size,
            "lr": self.lr,
            "samples_per_s": samples_per_s,
            "tflops": tflops,
            "mfu_pct": mfu_pct(tflops, self.peak_tflops),
            "mem_gib": memory_gib(self.device),
            "step_time_s": seconds / steps,
        }
        self.log.step(record)
        return record

    def _record_samples(self, indices: list[int]) -> None:
        folder = self.run_dir / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / f"rank{self.rank}.jsonl").open("a", encoding="utf-8") as out:
            out.write(json.dumps({"step": self.step + 1, "rank": self.rank, "indices": indices}) + "\n")

    @torch.no_grad()
    def evaluate(self) -> tuple[float, int]:
        """Collective. Held-out accuracy over all ranks' shards: (accuracy, number of test samples)."""
        features, labels = self.data.test_shard()
        self.model.eval()
        correct = (self.model(features).argmax(dim=1) == labels).sum()
        self.model.train()
        counts = torch.tensor([correct.item(), len(labels)], dtype=torch.float64)
        dist.all_reduce(counts)
        accuracy, n_test = counts[0].item() / counts[1].item(), int(counts[1].item())
        self.log.record(event="eval", step=self.step, accuracy=accuracy, test_samples=n_test)
        self.log.say(f"held-out accuracy {accuracy:.4f} on {n_test} samples")
        return accuracy, n_test

    def save(self) -> Path:
        """Collective. Checkpoint this step (the kill-in-checkpoint drill fires here, on its step)."""
        config = self.config
        state = {"step": self.step, "epoch": self.epoch, "config": config.to_dict()}
        step = self.step
        drill = config.fault_kill_in_checkpoint == step and first_attempt()
        folder = checkpoint.save(
            config.checkpoint_path,
            step,
            self.model,
            self.optimizer,
            self.scheduler,
            state,
            config.keep_checkpoints,
            before_marker=(lambda: kill_in_checkpoint(step)) if drill else None,
        )
        self.log.record(event="checkpoint", step=step, path=str(folder))
        return folder

    def run(self) -> dict:
        """Train from the restored position to ``max_steps``; log, checkpoint, evaluate, summarise."""
        config = self.config
        self.restore()
        records: list[dict] = []
        window_steps, window_s = 0, 0.0
        while self.step < config.max_steps:
            maybe_kill(config.fault_kill_at_step, self.rank, self.step + 1)
            started = time.perf_counter()
            loss = self.train_step()
            window_steps, window_s = window_steps + 1, window_s + time.perf_counter() - started
            if self.step % config.log_every == 0 or self.step == config.max_steps:
                records.append(self.log_step(loss, window_steps, window_s))
                window_steps, window_s = 0, 0.0
            if self.step % config.checkpoint_every == 0 or self.step == config.max_steps:
                self.save()
            if config.step_delay_s:
                time.sleep(config.step_delay_s)
        accuracy, n_test = self.evaluate()
        summary = self.summary(records, accuracy, n_test)
        self.log.close()
        # DDP's reducer holds a reference to the process group. Freed first, it leaves the group's last
        # reference to destroy_process_group(), whose destructor releases the GIL while gloo's threads
        # finish; dropped by the reducer's destructor, which keeps the GIL, the group waits for a gloo
        # thread that waits for the GIL: both ranks hang after the summary (torch 2.13, gloo).
        del self.ddp_model
        gc.collect()
        shutdown_distributed()
        return summary

    def summary(self, records: list[dict], accuracy: float, n_test: int) -> dict:
        """The run's outcome: a ``summary`` record, one human line, and ``result.json`` (rank 0)."""
        newest = checkpoint.complete_checkpoints(self.config.checkpoint_path)
        summary = {
            "event": "summary",
            "step": self.step,
            "world_size": self.world_size,
            "final_loss": records[-1]["loss"] if records else None,
            "accuracy": accuracy,
            "test_samples": n_test,
            "samples_per_s": steady_mean(records, "samples_per_s"),
            "mfu_pct": mfu_pct(steady_mean(records, "tflops"), self.peak_tflops) if records else None,
            "checkpoint": str(newest[0]) if newest else None,
        }
        self.log.record(**summary)
        if records:
            self.log.say(
                f"summary: step {self.step}, final loss {summary['final_loss']:.4f}, accuracy "
                f"{accuracy:.4f}, {summary['samples_per_s']:,.0f} samples/s per device, MFU "
                f"{mfu_text(summary['mfu_pct'])}, checkpoint {summary['checkpoint']}"
            )
        else:
            self.log.say(
                f"nothing to train: already at step {self.step} of --max-steps {self.config.max_steps}"
            )
        if self.rank == 0:
            write_result(self.run_dir, summary)
        return summary


def train(config: TrainConfig) -> dict:
    """Run training to ``max_steps``; return the summary (rank 0 also writes ``result.json``)."""
    return Trainer(config).run()
