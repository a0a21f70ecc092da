"""The one place where the single-device model becomes a distributed one.

Order matters and is fixed: activation checkpointing wraps each decoder layer first (so recompute
happens inside the layer), then each layer is compiled (so compile sees the checkpointed region),
then FSDP2 shards each decoder layer and finally the root (embeddings, final norm, output head), so
parameters are gathered one layer at a time.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import CheckpointImpl, checkpoint_wrapper
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

from .config import TrainConfig
from .model import decoder_layers


def precision_policy(config: TrainConfig, device: torch.device) -> MixedPrecisionPolicy:
    """bf16 parameters with fp32 gradient reduction on GPU; plain fp32 on CPU (no fast bf16 GEMM there)."""
    use_bf16 = config.dtype == "bf16" or (config.dtype == "auto" and device.type == "cuda")
    if use_bf16:
        return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    return MixedPrecisionPolicy()


def parallelize(model: nn.Module, config: TrainConfig, mesh: DeviceMesh, device: torch.device) -> nn.Module:
    """Apply activation checkpointing -> compile -> fully_shard(layer) for each layer -> fully_shard(root)."""
    layers = decoder_layers(model)
    # 1. Activation checkpointing: keep only layer inputs, recompute the rest in backward.
    if config.activation_checkpointing:
        for index, layer in enumerate(layers):
            layers[index] = checkpoint_wrapper(layer, checkpoint_impl=CheckpointImpl.NO_REENTRANT)
    # 2. Compile each layer on its own: small graphs, compiled once and reused by every layer.
    if config.compile:
        for index, layer in enumerate(layers):
            layers[index] = torch.compile(layer)
    # 3. FSDP2: one parameter group per decoder layer, then the root for what is left.
    shard_kwargs = {"mesh": mesh, "mp_policy": precision_policy(config, device)}
    if config.cpu_offload:
        shard_kwargs["offload_policy"] = CPUOffloadPolicy()
    for index, layer in enumerate(layers):
        # The last layer's parameters are needed again at once by backward: keep them gathered.
        fully_shard(layer, reshard_after_forward=index < len(layers) - 1, **shard_kwargs)
    fully_shard(model, **shard_kwargs)
    return model
