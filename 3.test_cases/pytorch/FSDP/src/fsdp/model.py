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

from .presets import Architecture

INITIALIZER_RANGE = 0.02
_CONFIG_CLASSES = {"llama": LlamaConfig, "mistral": MistralConfig, "mixtral": MixtralConfig}


def hf_config(arch: Architecture, attention: str = "sdpa") -> PretrainedConfig:
    """The transformers config for an architecture (no KV cache). Every value that changes the
    computation is set explicitly, so no transformers default (such as MistralConfig's 4096-token
    sliding window) decides what model is trained."""
    kwargs = dict(
        hidden_size=arch.hidden_size,
        num_hidden_layers=arch.num_layers,
        num_attention_heads=arch.num_heads,
        num_key_value_heads=arch.num_kv_heads,
        head_dim=arch.head_dim,
        intermediate_size=arch.intermediate_size,
        vocab_size=arch.vocab_size,
        max_position_embeddings=arch.max_position_embeddings,
        rms_norm_eps=arch.rms_norm_eps,
        tie_word_embeddings=arch.tie_embeddings,
        rope_parameters=arch.rope_parameters,
        initializer_range=INITIALIZER_RANGE,
        use_cache=False,
    )
    if arch.family in {"mistral", "mixtral"}:
        kwargs["sliding_window"] = arch.sliding_window
    if arch.family == "mixtral":
        kwargs.update(num_local_experts=arch.num_experts, num_experts_per_tok=arch.experts_per_token)
    config = _CONFIG_CLASSES[arch.family](**kwargs)
    config._attn_implementation = attention
    return config


def build_meta_model(arch: Architecture, attention: str = "sdpa") -> nn.Module:
    """The model with every parameter on the meta device: shapes only, no memory."""
    return build_on_device(arch, "meta", attention)


def build_on_device(arch: Architecture, device: str | torch.device, attention: str = "sdpa") -> nn.Module:
    """The model allocated on ``device`` (transformers initialises it; ``initialise`` overwrites that)."""
    with torch.device(device):
        return AutoModelForCausalLM.from_config(hf_config(arch, attention), attn_implementation=attention)


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


def counted_flops(arch: Architecture, seq_len: int, seed: int = 0) -> int:
    """FLOPs of one forward + backward of one sequence as torch counts them (``FlopCounterMode``), to
    check ``flops_per_token`` against. Eager attention: the counter sees its matmuls, not CPU sdpa."""
    from torch.utils.flop_counter import FlopCounterMode  # noqa: PLC0415

    model = build_meta_model(arch, attention="eager").to_empty(device="cpu")
    initialise(model, seed)
    tokens = torch.randint(0, arch.vocab_size, (1, seq_len))
    with FlopCounterMode(display=False) as counter:
        model(input_ids=tokens).logits.sum().backward()
    return counter.get_total_flops()


def flops_per_token(arch: Architecture, seq_len: int) -> float:
    """Training FLOPs per token: 6·N + 12·L·H·Q·T (PaLM / torchtitan convention). N is every parameter
    but the input embedding (the output projection counts, tied or not; MoE: the active experts only);
    the second term is attention's scores and weighted sum at full, unmasked length T."""
    n = arch.parameter_counts()["flops"]
    return 6 * n + 12 * arch.num_layers * arch.num_heads * arch.head_dim * seq_len
