"""The GPT model: megatron-core's GPTModel, configured from a preset.

On GPUs with Transformer Engine the layers come from megatron-core's TE spec (fused attention, RoPE,
context parallelism). Elsewhere they come from its local spec, whose core attention is swapped, through
the spec, for one built on torch's ``scaled_dot_product_attention`` (flash or memory-efficient kernels on
CUDA, a fused kernel on CPU; no [b, n, s, s] score buffer, no CUDA RNG tracker).
"""

from __future__ import annotations

import copy
import importlib.util

import torch
import torch.nn.functional as F
from megatron.core import parallel_state
from megatron.core.models.gpt import GPTModel
from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec
from megatron.core.transformer.dot_product_attention import DotProductAttention
from megatron.core.transformer.enums import AttnMaskType
from megatron.core.transformer.spec_utils import ModuleSpec
from megatron.core.transformer.transformer_config import TransformerConfig

from megatron_gpt.config import TrainConfig

VOCAB_DIVISIBLE_BY = 128  # Megatron's --make-vocab-size-divisible-by default


class SDPACoreAttention(DotProductAttention):
    """Megatron's core attention with the score/softmax/context matmuls replaced by one SDPA call.

    Inputs are [seq, batch, heads, head_dim] (query heads and KV groups of this TP rank); the output is
    [seq, batch, heads * head_dim], as DotProductAttention's. Causal masking by construction: the
    GPT datasets here never reset attention at document boundaries.
    """

    def forward(
        self,
        query,
        key,
        value,
        attention_mask,
        attn_mask_type=None,
        attention_bias=None,
        packed_seq_params=None,
    ):
        if packed_seq_params is not None or attention_bias is not None:
            raise NotImplementedError("SDPACoreAttention: no packed sequences or attention bias")
        mask_type = attn_mask_type or self.attn_mask_type
        if mask_type != AttnMaskType.causal:
            raise NotImplementedError(f"SDPACoreAttention: only causal masks, not {mask_type}")
        q, k, v = (t.permute(1, 2, 0, 3) for t in (query, key, value))  # -> [b, n, s, d]
        context = F.scaled_dot_product_attention(
            q,
            k,
            v,
            dropout_p=self.attention_dropout.p if self.training else 0.0,
            is_causal=True,
            scale=self.softmax_scale,
            enable_gqa=q.size(1) != k.size(1),
        )
        seq, batch = context.size(2), context.size(0)
        return context.permute(2, 0, 1, 3).reshape(seq, batch, self.hidden_size_per_partition)


def layer_spec(use_te: bool, normalization: str) -> ModuleSpec:
    """Megatron's TE layer spec on GPUs with TE; else its local spec with SDPA core attention."""
    if use_te:
        from megatron.core.models.gpt.gpt_layer_specs import (  # noqa: PLC0415 - TE only on GPU
            get_gpt_layer_with_transformer_engine_spec,
        )

        return get_gpt_layer_with_transformer_engine_spec()
    spec = copy.deepcopy(get_gpt_layer_local_spec(normalization=normalization))
    spec.submodules.self_attention.submodules.core_attention = SDPACoreAttention
    return spec


def transformer_engine_available() -> bool:
    return importlib.util.find_spec("transformer_engine") is not None


def transformer_config(config: TrainConfig, on_gpu: bool) -> TransformerConfig:
    """The TransformerConfig of a Llama-style decoder: RMSNorm, SwiGLU, no biases, no dropout."""
    model, parallel = config.model, config.parallel
    dtype = torch.bfloat16 if config.bf16 else torch.float32
    # Fusions are CUDA kernels (or need them); on CPU every one is off.
    fused = on_gpu
    return TransformerConfig(
        num_layers=model.num_layers,
        hidden_size=model.hidden_size,
        num_attention_heads=model.num_attention_heads,
        num_query_groups=model.num_query_groups,
        ffn_hidden_size=model.ffn_hidden_size,
        normalization=model.normalization,
        layernorm_epsilon=1e-5,
        gated_linear_unit=True,
        activation_func=F.silu,
        add_bias_linear=False,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        init_method_std=0.02,
        tensor_model_parallel_size=parallel.tensor_parallel,
        pipeline_model_parallel_size=parallel.pipeline_parallel,
        context_parallel_size=parallel.context_parallel,
        sequence_parallel=parallel.sequence_parallel,
        bf16=config.bf16,
        params_dtype=dtype,
        pipeline_dtype=dtype,
        use_cpu_initialization=not on_gpu,
        bias_activation_fusion=fused,
        bias_dropout_fusion=fused,
        masked_softmax_fusion=fused,
        persist_layer_norm=fused,
        apply_rope_fusion=fused and transformer_engine_available(),
        gradient_accumulation_fusion=False,
    )


def padded_vocab_size(vocab_size: int, tensor_parallel: int) -> int:
    """The embedding rows: the tokenizer's vocabulary rounded up so every TP shard is equal and aligned."""
    multiple = VOCAB_DIVISIBLE_BY * tensor_parallel
    return -(-vocab_size // multiple) * multiple


def build_model(config: TrainConfig, vocab_size: int, on_gpu: bool) -> GPTModel:
    """This rank's GPTModel: its TP shard of its pipeline stage's layers, on CPU or the current GPU."""
    te = on_gpu and transformer_engine_available()
    model = GPTModel(
        config=transformer_config(config, on_gpu),
        transformer_layer_spec=layer_spec(te, config.model.normalization),
        vocab_size=padded_vocab_size(vocab_size, config.parallel.tensor_parallel),
        max_sequence_length=config.model.seq_length,
        pre_process=parallel_state.is_pipeline_first_stage(),
        post_process=parallel_state.is_pipeline_last_stage(),
        share_embeddings_and_output_weights=False,
        position_embedding_type=config.model.position_embedding_type,
        rotary_base=config.model.rotary_base,
        rope_scaling=config.model.rope_scaling,
    )
    return model.cuda() if on_gpu else model
