"""Run configs (presets) for torchtitan 0.3.0's ``ConfigManager``: ``--module aws_llama3 --config NAME``.

torchtitan 0.3.0 has no TOML job files: a config is a function returning ``Trainer.Config``, and the
command line overrides fields as ``--section.field value``. Each preset below names what it turns on:

| preset                    | model      | parallelism           | extras                                 |
|---------------------------|------------|-----------------------|----------------------------------------|
| tiny                      | debugmodel | FSDP                  | local tokenizer and data (assets/tiny) |
| llama3_8b_fsdp            | 8B         | FSDP                  | selective AC, async checkpoint         |
| llama3_8b_fsdp_compile    | 8B         | FSDP                  | + torch.compile                        |
| llama3_8b_fsdp_float8     | 8B         | FSDP                  | + compile + float8 (SM89+: H100/H200)  |
| llama3_70b_fsdp_tp        | 70B        | FSDP x TP 8 (in node) | full AC, compile, async checkpoint     |
| llama3_70b_fsdp_tp_float8 | 70B        | FSDP x TP 8           | + float8 + async TP (SM89+)            |

Every preset uses the ``partial_dtensor`` SPMD backend: torchtitan 0.3.0 defaults to ``spmd_types``,
whose plain-tensor parameters torch 2.13's FSDP2 rejects ("all parameters must be DTensors").
FSDP's degree is -1 everywhere: all the ranks that TP leaves (world size / 8 for the 70B).
Batch arithmetic (per GPU): local_batch_size x seq_len tokens per step; the global batch is that times
the data-parallel degree (8B on 2 nodes x 8 GPUs: 1 x 8192 x 16 = 131,072 tokens per step).
"""

from __future__ import annotations

# Modules and classes only: torchtitan's ConfigManager offers every lower-case callable of this module as a
# config, so helper functions are imported through their modules (or start with an underscore).
from torchtitan.components import optimizer as titan_optimizer
from torchtitan.components.checkpoint import CheckpointManager
from torchtitan.components.loss import ChunkedLossWrapper, CrossEntropyLoss
from torchtitan.components.metrics import MetricsProcessor
from torchtitan.components.optimizer import LRSchedulersContainer
from torchtitan.components.quantization import Float8LinearConverter
from torchtitan.config import CompileConfig, ParallelismConfig, TrainingConfig
from torchtitan.distributed.activation_checkpoint import FullAC, SelectiveAC
from torchtitan.hf_datasets.text_datasets import HuggingFaceTextDataLoader
from torchtitan.models import llama3
from torchtitan.models.common import config_utils
from torchtitan.trainer import Trainer

# Where `make assets` writes the tiny preset's tokenizer and corpus (relative to the case folder).
TINY_ASSETS = "assets/tiny"
# Llama 3.1 tokenizer files (tokenizer.json, tokenizer_config.json), fetched once on a cluster.
SPMD_BACKEND = "partial_dtensor"  # see the module docstring
HF_ASSETS = {"8B": "assets/hf/Llama-3.1-8B", "70B": "assets/hf/Llama-3.1-70B"}


def _trainer(
    flavor: str,
    *,
    lr: float,
    local_batch_size: int,
    seq_len: int = 8192,
    steps: int = 1000,
    tp: int = 1,
    full_ac: bool = False,
    compile_model: bool = False,
    float8: bool = False,
) -> Trainer.Config:
    """A Llama 3.1 run on the C4 stream: bf16 mixed precision, FSDP over the data-parallel ranks,
    checkpoints every 500 steps written asynchronously, metrics to TensorBoard every 10 steps."""
    compile_config = CompileConfig(
        enable=compile_model, components=["model", "loss"], enable_async_tensor_parallel=float8 and tp > 1
    )
    converters = [Float8LinearConverter.Config(filter_fqns=["lm_head"], model_compile_enabled=True)]
    model_spec = llama3.model_registry(flavor, converters=converters if float8 else None)
    return Trainer.Config(
        model_spec=model_spec,
        hf_assets_path=HF_ASSETS[flavor],
        loss=ChunkedLossWrapper.Config(
            loss_fn=CrossEntropyLoss.Config(global_vocab_size=config_utils.decoder_vocab_size(model_spec))
        ),
        optimizer=titan_optimizer.default_adamw(lr=lr),
        lr_scheduler=LRSchedulersContainer.Config(warmup_steps=200),
        training=TrainingConfig(local_batch_size=local_batch_size, seq_len=seq_len, steps=steps),
        dataloader=HuggingFaceTextDataLoader.Config(dataset="c4"),
        parallelism=ParallelismConfig(
            data_parallel_shard_degree=-1, tensor_parallel_degree=tp, spmd_backend=SPMD_BACKEND
        ),
        activation_checkpoint=FullAC.Config() if full_ac else SelectiveAC.Config(),
        compile=compile_config,
        checkpoint=CheckpointManager.Config(enable=True, interval=500, async_mode="async"),
        metrics=MetricsProcessor.Config(log_freq=10, enable_tensorboard=True),
    )


def tiny() -> Trainer.Config:
    """torchtitan's debug model (6 layers, dim 256) on a local tokenizer and corpus (`make assets`):
    a GPU smoke run in seconds, and the model of the CPU smoke test."""
    model_spec = llama3.model_registry("debugmodel")
    return Trainer.Config(
        model_spec=model_spec,
        hf_assets_path=TINY_ASSETS,
        loss=ChunkedLossWrapper.Config(
            loss_fn=CrossEntropyLoss.Config(global_vocab_size=config_utils.decoder_vocab_size(model_spec))
        ),
        optimizer=titan_optimizer.default_adamw(lr=8e-4),
        lr_scheduler=LRSchedulersContainer.Config(warmup_steps=2, decay_ratio=0.8, min_lr_factor=0.0),
        training=TrainingConfig(local_batch_size=8, seq_len=512, steps=20),
        dataloader=HuggingFaceTextDataLoader.Config(dataset="c4_test", dataset_path=f"{TINY_ASSETS}/c4_test"),
        parallelism=ParallelismConfig(data_parallel_shard_degree=-1, spmd_backend=SPMD_BACKEND),
        activation_checkpoint=SelectiveAC.Config(),
        checkpoint=CheckpointManager.Config(enable=True, interval=10, last_save_model_only=False),
        metrics=MetricsProcessor.Config(log_freq=1, enable_tensorboard=True),
    )


def llama3_8b_fsdp() -> Trainer.Config:
    """Llama 3.1 8B, FSDP over every GPU, selective activation checkpointing."""
    return _trainer("8B", lr=3e-4, local_batch_size=1)


def llama3_8b_fsdp_compile() -> Trainer.Config:
    """As llama3_8b_fsdp, with the model and the loss compiled (torch.compile, per block)."""
    return _trainer("8B", lr=3e-4, local_batch_size=1, compile_model=True)


def llama3_8b_fsdp_float8() -> Trainer.Config:
    """As llama3_8b_fsdp_compile, with float8 (rowwise) linear layers: SM89 or later (H100, H200, B200)."""
    return _trainer("8B", lr=3e-4, local_batch_size=1, compile_model=True, float8=True)


def llama3_70b_fsdp_tp() -> Trainer.Config:
    """Llama 3.1 70B: tensor parallel 8 inside a node, FSDP across nodes, full activation checkpointing."""
    return _trainer("70B", lr=1.5e-4, local_batch_size=8, tp=8, full_ac=True, compile_model=True)


def llama3_70b_fsdp_tp_float8() -> Trainer.Config:
    """As llama3_70b_fsdp_tp, with float8 linear layers and async tensor parallel: SM89 or later."""
    return _trainer("70B", lr=1.5e-4, local_batch_size=8, tp=8, full_ac=True, compile_model=True, float8=True)
