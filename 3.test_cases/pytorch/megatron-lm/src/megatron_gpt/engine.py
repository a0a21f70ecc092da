"""One optimizer step, two ways.

- ``GpuEngine``: what Megatron-LM's own pretrain loop does. Megatron's DDP wrapper (bucketed, overlapped
  gradient reduce), its optimizer (distributed optimizer = ZeRO-1, mixed precision, gradient clipping) and
  its pipeline schedules (1F1B across PP stages, micro-batch gradient accumulation).
- ``CpuEngine``: megatron-core 0.16.1 allocates on CUDA in all three of those, so on CPU the same model is
  stepped by hand: micro-batch accumulation, gradients averaged over the data-parallel group with one
  all-reduce, the global gradient norm (TP-sharded parameters counted once), torch AdamW.

Both drive megatron-core's OptimizerParamScheduler (warmup then cosine) and save through dist_checkpointing.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.distributed as dist
from megatron.core import parallel_state
from megatron.core.dist_checkpointing.optimizer import (
    get_param_id_to_sharded_param_map,
    optim_state_to_sharding_state,
)
from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler
from megatron.core.tensor_parallel import param_is_not_tensor_parallel_duplicate

from megatron_gpt.config import TrainConfig

ADAM_BETAS = (0.9, 0.95)


def lm_loss(per_token: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Mean next-token loss over the unmasked tokens of a micro-batch."""
    mask = loss_mask.float()
    return (per_token.float() * mask).sum() / mask.sum().clamp(min=1)


def scheduler(optimizer, config: TrainConfig) -> OptimizerParamScheduler:
    return OptimizerParamScheduler(
        optimizer,
        init_lr=0.0,
        max_lr=config.lr,
        min_lr=config.min_lr,
        lr_warmup_steps=config.warmup_steps,
        lr_decay_steps=config.max_steps,
        lr_decay_style="cosine",
        start_wd=config.weight_decay,
        end_wd=config.weight_decay,
        wd_incr_steps=config.max_steps,
        wd_incr_style="constant",
    )


class CpuEngine:
    """The model on CPU over gloo; see the module docstring."""

    def __init__(self, model: torch.nn.Module, config: TrainConfig):
        self.model, self.config = model, config
        decay = [p for p in model.parameters() if p.ndim > 1]
        no_decay = [p for p in model.parameters() if p.ndim <= 1]  # norms (and biases, when any)
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "wd_mult": 1.0}, {"params": no_decay, "wd_mult": 0.0}],
            lr=0.0,
            betas=ADAM_BETAS,
            weight_decay=config.weight_decay,
        )
        self.scheduler = scheduler(self.optimizer, config)
        self.scheduler.step(0)  # sets the step-0 learning rate (and weight decay, per group)

    def train_step(self, batches: list[dict]) -> tuple[torch.Tensor, float]:
        """Forward/backward over the micro-batches, DP average, clip, AdamW. Returns (loss, grad norm)."""
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        total = torch.zeros(())
        for batch in batches:
            per_token = self.model(batch["tokens"], batch["position_ids"], None, labels=batch["labels"])
            loss = lm_loss(per_token, batch["loss_mask"])
            (loss / len(batches)).backward()
            total += loss.detach()
        self._average_gradients()
        grad_norm = self._clip_gradients()
        self.optimizer.step()
        self.scheduler.step(1)
        return total / len(batches), grad_norm

    def _average_gradients(self) -> None:
        """Mean over the data-parallel group, in one flat all-reduce (Megatron's DDP does this in buckets)."""
        group = parallel_state.get_data_parallel_group()
        size = dist.get_world_size(group)
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        if size == 1 or not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, group=group)
        flat /= size
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    def _clip_gradients(self) -> float:
        """Global L2 norm: each TP shard counted once, replicated parameters once per TP group."""
        squares = torch.zeros(())
        for param in self.model.parameters():
            if param.grad is not None and param_is_not_tensor_parallel_duplicate(param):
                squares += param.grad.float().pow(2).sum()
        dist.all_reduce(squares, group=parallel_state.get_model_parallel_group())
        norm = float(squares.sqrt())
        if self.config.grad_clip > 0 and norm > self.config.grad_clip:
            for param in self.model.parameters():
                if param.grad is not None:
                    param.grad.mul_(self.config.grad_clip / (norm + 1e-6))
        return norm

    def sharded_state_dict(self, is_loading: bool = False) -> dict:
        """Model, AdamW moments (sharded like their parameters) and scheduler, for dist_checkpointing."""
        model_state = self.model.sharded_state_dict()
        if is_loading:
            self._materialize_optimizer_state()
        optim_state = self.optimizer.state_dict()
        # state_dict() shares each parameter's dict with the live optimizer: copy before taking "step" out.
        optim_state["state"] = {key: dict(value) for key, value in optim_state["state"].items()}
        steps = {float(s.pop("step")) for s in optim_state["state"].values() if "step" in s}
        in_optimizer_order = (p for group in self.optimizer.param_groups for p in group["params"])
        id_map = get_param_id_to_sharded_param_map(model_state, in_optimizer_order)
        optim_state_to_sharding_state(optim_state, id_map)
        return {
            "model": model_state,
            "optimizer": optim_state,
            # Plain values are the checkpoint's common part, written once by rank 0.
            "optimizer_step": max(steps, default=0.0),
            "scheduler": self.scheduler.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        optim_state = state["optimizer"]
        for param_state in optim_state["state"].values():
            param_state["step"] = torch.tensor(state["optimizer_step"])
        self.optimizer.load_state_dict(optim_state)
        self.scheduler.load_state_dict(state["scheduler"])

    def _materialize_optimizer_state(self) -> None:
        """AdamW creates its moments at the first step; a load needs them to exist to fill them in."""
        for group in self.optimizer.param_groups:
            for param in group["params"]:
                if not self.optimizer.state[param]:
                    self.optimizer.state[param] = {
                        "step": torch.tensor(0.0),
                        "exp_avg": torch.zeros_like(param),
                        "exp_avg_sq": torch.zeros_like(param),
                    }


class GpuEngine:
    """Megatron's DDP, optimizer and pipeline schedule, as Megatron-LM's pretrain loop uses them."""

    def __init__(self, model: torch.nn.Module, config: TrainConfig):
        from megatron.core.distributed import (  # noqa: PLC0415 - CUDA path only
            DistributedDataParallel,
            DistributedDataParallelConfig,
            finalize_model_grads,
        )
        from megatron.core.optimizer import OptimizerConfig, get_megatron_optimizer  # noqa: PLC0415
        from megatron.core.pipeline_parallel import get_forward_backward_func  # noqa: PLC0415

        self.config = config
        tconfig = model.config
        ddp_config = DistributedDataParallelConfig(
            grad_reduce_in_fp32=True,
            overlap_grad_reduce=True,
            use_distributed_optimizer=config.parallel.distributed_optimizer,
        )
        self.model = DistributedDataParallel(config=tconfig, ddp_config=ddp_config, module=model)
        self.optimizer = get_megatron_optimizer(
            OptimizerConfig(
                optimizer="adam",
                lr=config.lr,
                min_lr=config.min_lr,
                weight_decay=config.weight_decay,
                adam_beta1=ADAM_BETAS[0],
                adam_beta2=ADAM_BETAS[1],
                bf16=config.bf16,
                params_dtype=tconfig.params_dtype,
                clip_grad=config.grad_clip,
                use_distributed_optimizer=config.parallel.distributed_optimizer,
            ),
            [self.model],
        )
        self.scheduler = scheduler(self.optimizer, config)
        self.scheduler.step(0)
        tconfig.finalize_model_grads_func = finalize_model_grads
        tconfig.grad_scale_func = self.optimizer.scale_loss
        tconfig.no_sync_func = self.model.no_sync
        self.forward_backward = get_forward_backward_func()

    def _forward_step(self, data_iterator, model):
        from megatron.core.utils import get_batch_on_this_cp_rank  # noqa: PLC0415

        batch = {k: v.cuda(non_blocking=True) for k, v in next(data_iterator).items()}
        batch = get_batch_on_this_cp_rank(batch)
        output = model(batch["tokens"], batch["position_ids"], None, labels=batch["labels"])

        def loss_func(loss_mask, per_token):
            # Each CP rank holds a slice of the sequence: the mean is over the whole sequence (sum and
            # count reduced over the CP group, as Megatron-LM's pretrain_gpt does); the schedule then
            # scales by the CP size, which the DP x CP gradient average takes back out.
            mask = loss_mask.float()
            stats = torch.stack([(per_token.float() * mask).sum(), mask.sum()])
            if parallel_state.get_context_parallel_world_size() > 1:
                dist.all_reduce(stats, group=parallel_state.get_context_parallel_group())
            loss = stats[0] / stats[1].clamp(min=1)
            return loss, {"lm loss": loss.detach()}

        return output, partial(loss_func, batch["loss_mask"])

    def train_step(self, batches: list[dict]) -> tuple[torch.Tensor, float]:
        self.model.zero_grad_buffer()
        self.optimizer.zero_grad()
        losses = self.forward_backward(
            forward_step_func=self._forward_step,
            data_iterator=iter(batches),
            model=[self.model],
            num_microbatches=len(batches),
            seq_length=self.config.model.seq_length,  # full length: the schedule divides by CP (and SP)
            micro_batch_size=self.config.micro_batch_size,
            forward_only=False,
        )
        _, grad_norm, _ = self.optimizer.step()
        self.scheduler.step(1)
        # Only the last pipeline stage has the loss; the sum over the pipeline group gives it to all.
        loss = torch.zeros((), device="cuda")
        if losses:
            loss += torch.stack([item["lm loss"] for item in losses]).mean()
        dist.all_reduce(loss, group=parallel_state.get_pipeline_model_parallel_group())
        return loss, float(grad_norm or 0.0)

    def sharded_state_dict(self, is_loading: bool = False) -> dict:
        model_state = self.model.module.sharded_state_dict()
        return {
            "model": model_state,
            "optimizer": self.optimizer.sharded_state_dict(model_state, is_loading=is_loading),
            "scheduler": self.scheduler.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
