"""The one place where the single-device model becomes a distributed one.

Order matters and is fixed: activation checkpointing wraps each decoder layer first (so recompute
happens inside the layer), then each layer is compiled (so compile sees the checkpointed region),
then FSDP2 shards each decoder layer and finally the root (embeddings, final norm, output head), so
parameters are gathered one layer at a time. On a 2-D mesh (replicate x shard) the same calls give
HSDP: parameters sharded within a group, gradients all-reduced across groups. One process needs no
sharding: in fp32 (the CPU) the model stays a plain module, since FSDP2 on one rank only adds copies;
on one GPU FSDP2 stays for its bf16 mixed precision (and CPU offload).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import CheckpointImpl, checkpoint_wrapper
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

from .config import TrainConfig
from .model import decoder_layers


def needs_fsdp(config: TrainConfig, device: torch.device, world_size: int) -> bool:
    """FSDP2 shards across ranks; on one rank it is only worth its mixed precision or offload."""
    return world_size > 1 or precision_policy(config, device).param_dtype is not None or config.cpu_offload


def build_mesh(
    config: TrainConfig, device: torch.device, world_size: int, replicas: int
) -> DeviceMesh | None:
    """None when nothing is wrapped; a 1-D ``shard`` mesh for FSDP; ``replicate x shard`` for HSDP."""
    if not needs_fsdp(config, device, world_size):
        return None
    if replicas == 1:
        return init_device_mesh(device.type, (world_size,), mesh_dim_names=("shard",))
    return init_device_mesh(
        device.type, (replicas, world_size // replicas), mesh_dim_names=("replicate", "shard")
    )


def precision_policy(config: TrainConfig, device: torch.device) -> MixedPrecisionPolicy:
    """bf16 parameters with fp32 gradient reduction on GPU; plain fp32 on CPU (no fast bf16 GEMM there)."""
    use_bf16 = config.dtype == "bf16" or (config.dtype == "auto" and device.type == "cuda")
    if use_bf16:
        return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    return MixedPrecisionPolicy()


def parallelize(
    model: nn.Module, config: TrainConfig, mesh: DeviceMesh | None, device: torch.device
) -> nn.Module:
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
    if mesh is None:
        return model
    # 3. FSDP2: one parameter group per decoder layer, then the root for what is left.
    shard_kwargs = {"mesh": mesh, "mp_policy": precision_policy(config, device)}
    if config.cpu_offload:
        shard_kwargs["offload_policy"] = CPUOffloadPolicy()
    for index, layer in enumerate(layers):
        # The last layer's parameters are needed again at once by backward: keep them gathered.
        fully_shard(layer, reshard_after_forward=index < len(layers) - 1, **shard_kwargs)
    fully_shard(model, **shard_kwargs)
    return model
