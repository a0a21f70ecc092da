"""Models from ``transformers`` config classes, built on the meta device and initialised after sharding.

No hub access: the config is made from the preset's numbers. Initialisation follows the Hugging Face
Llama/Mistral/Mixtral ``_init_weights`` (normal(0, initializer_range) for linear, embedding and
expert weights, zeros for biases, ones for RMSNorm weights) and is computed per parameter from
(seed, parameter name), so a model sharded over any number of ranks gets exactly the values a
single process would: each rank keeps its own slice of the full tensor.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn
from torch.distributed.tensor import DTensor, distribute_tensor
from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig, MixtralConfig, PretrainedConfig

from .presets import ModelPreset

INITIALIZER_RANGE = 0.02
_CONFIG_CLASSES = {"llama": LlamaConfig, "mistral": MistralConfig, "mixtral": MixtralConfig}


def hf_config(preset: ModelPreset) -> PretrainedConfig:
    """The transformers config for a preset (sdpa attention, no KV cache)."""
    kwargs = dict(
        hidden_size=preset.hidden_size,
        num_hidden_layers=preset.num_layers,
        num_attention_heads=preset.num_heads,
        num_key_value_heads=preset.num_kv_heads,
        intermediate_size=preset.intermediate_size,
        vocab_size=preset.vocab_size,
        max_position_embeddings=preset.max_position_embeddings,
        rms_norm_eps=preset.rms_norm_eps,
        tie_word_embeddings=preset.tie_embeddings,
        rope_parameters=dict(preset.rope_parameters),
        initializer_range=INITIALIZER_RANGE,
        use_cache=False,
    )
    if preset.family == "mixtral":
        kwargs.update(num_local_experts=preset.num_experts, num_experts_per_tok=preset.experts_per_token)
    config = _CONFIG_CLASSES[preset.family](**kwargs)
    config._attn_implementation = "sdpa"
    return config


def build_meta_model(preset: ModelPreset) -> nn.Module:
    """The model with every parameter on the meta device: shapes only, no memory."""
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(hf_config(preset), attn_implementation="sdpa")


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    return model.model.layers


def _generator(seed: int, name: str) -> torch.Generator:
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


def _full_init(name: str, param: torch.Tensor, seed: int) -> torch.Tensor:
    """The unsharded initial value of one parameter, on CPU."""
    shape, dtype = tuple(param.shape), param.dtype
    if name.endswith("norm.weight"):
        return torch.ones(shape, dtype=dtype)
    if name.endswith(".bias"):
        return torch.zeros(shape, dtype=dtype)
    full = torch.empty(shape, dtype=torch.float32).normal_(
        0.0, INITIALIZER_RANGE, generator=_generator(seed, name)
    )
    return full.to(dtype)


# Wrappers that activation checkpointing and torch.compile insert into parameter names.
_WRAPPER_PARTS = ("._checkpoint_wrapped_module", "._orig_mod")


def canonical_name(name: str) -> str:
    """The parameter's name in the plain model, whatever wrappers parallelize() added."""
    for part in _WRAPPER_PARTS:
        name = name.replace(part, "")
    return name


@torch.no_grad()
def initialise(model: nn.Module, seed: int) -> None:
    """Fill every parameter (sharded or not) and recompute the rotary buffers the meta build left empty.

    Values depend on the seed and the plain parameter name only, so wrapping (FSDP, activation
    checkpointing, compile) and the number of ranks never change the initial weights.
    """
    for name, param in model.named_parameters():
        full = _full_init(canonical_name(name), param, seed)
        if isinstance(param, DTensor):
            local = distribute_tensor(
                full, param.device_mesh, param.placements, src_data_rank=None
            ).to_local()
            param.to_local().copy_(local)
        else:
            param.copy_(full)
    rotary = model.model.rotary_emb
    with torch.device("cpu"):
        fresh = type(rotary)(model.config)
    for buffer_name, value in fresh.named_buffers():
        getattr(rotary, buffer_name).copy_(value)


def parameter_counts(preset: ModelPreset) -> dict[str, int]:
    """Total, embedding, non-embedding, and active non-embedding (MoE: top-k experts) parameters."""
    model = build_meta_model(preset)
    total = sum(p.numel() for p in model.parameters())
    embedding = model.model.embed_tokens.weight.numel()
    if not preset.tie_embeddings:
        embedding += model.lm_head.weight.numel()
    non_embedding = total - embedding
    active = non_embedding
    if preset.num_experts:
        expert_params = sum(p.numel() for n, p in model.named_parameters() if ".experts." in n)
        active -= expert_params * (preset.num_experts - preset.experts_per_token) // preset.num_experts
    return {
        "total": total,
        "embedding": embedding,
        "non_embedding": non_embedding,
        "active_non_embedding": active,
    }


def flops_per_token(preset: ModelPreset, active_non_embedding: int) -> float:
    """Training FLOPs per token: 6·N + 12·L·H·Q·T (PaLM / torchtitan convention)."""
    head_dim = preset.hidden_size // preset.num_heads
    return 6 * active_non_embedding + 12 * preset.num_layers * preset.num_heads * head_dim * preset.seq_len
