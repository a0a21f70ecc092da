"""A Llama-class decoder in Flax (linen): RMSNorm, rotary positions, grouped-query attention, SwiGLU.

The model is written for one device; ``parallel.py`` says how its parameters are laid out on the mesh,
and XLA's SPMD partitioner inserts the collectives. Parameter names are what the sharding rules match.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jax_llm.config import Architecture

INIT = nn.initializers.normal(stddev=0.02)


class RMSNorm(nn.Module):
    eps: float

    @nn.compact
    def __call__(self, x):
        scale = self.param("scale", nn.initializers.ones, (x.shape[-1],), jnp.float32)
        x32 = x.astype(jnp.float32)
        normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        return (normed * scale).astype(x.dtype)


def rotary(x, theta: float):
    """Rotate pairs of x (batch, seq, heads, head_dim) by position-dependent angles (half-split layout)."""
    seq, dim = x.shape[1], x.shape[-1]
    freqs = 1.0 / theta ** (jnp.arange(0, dim, 2, dtype=jnp.float32) / dim)
    angles = jnp.arange(seq, dtype=jnp.float32)[:, None] * freqs[None, :]
    cos, sin = jnp.cos(angles)[None, :, None, :], jnp.sin(angles)[None, :, None, :]
    x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x.dtype)


class Block(nn.Module):
    arch: Architecture
    dtype: jnp.dtype

    @nn.compact
    def __call__(self, x):
        a = self.arch
        head_dim = a.hidden_size // a.num_heads

        def dense(name: str, features: int):
            return nn.Dense(features, use_bias=False, dtype=self.dtype, kernel_init=INIT, name=name)

        h = RMSNorm(a.norm_eps, name="attn_norm")(x)
        batch, seq = x.shape[0], x.shape[1]
        q = dense("wq", a.num_heads * head_dim)(h).reshape(batch, seq, a.num_heads, head_dim)
        k = dense("wk", a.num_kv_heads * head_dim)(h).reshape(batch, seq, a.num_kv_heads, head_dim)
        v = dense("wv", a.num_kv_heads * head_dim)(h).reshape(batch, seq, a.num_kv_heads, head_dim)
        q, k = rotary(q, a.rope_theta), rotary(k, a.rope_theta)
        attn = jax.nn.dot_product_attention(q, k, v, is_causal=True)  # GQA: heads share kv groups
        x = x + dense("wo", a.hidden_size)(attn.reshape(batch, seq, a.num_heads * head_dim))
        h = RMSNorm(a.norm_eps, name="mlp_norm")(x)
        gate = nn.silu(dense("w_gate", a.intermediate_size)(h))
        return x + dense("w_down", a.hidden_size)(gate * dense("w_up", a.intermediate_size)(h))


class Transformer(nn.Module):
    arch: Architecture
    dtype: jnp.dtype = jnp.float32
    remat: bool = False

    @nn.compact
    def __call__(self, tokens):
        a = self.arch
        embed = nn.Embed(a.vocab_size, a.hidden_size, embedding_init=INIT, dtype=self.dtype, name="embed")
        x = embed(tokens)
        block = nn.remat(Block) if self.remat else Block
        for i in range(a.num_layers):
            x = block(a, self.dtype, name=f"layer_{i}")(x)
        x = RMSNorm(a.norm_eps, name="final_norm")(x)
        if a.tie_embeddings:
            return embed.attend(x).astype(jnp.float32)
        head = nn.Dense(a.vocab_size, use_bias=False, dtype=self.dtype, kernel_init=INIT, name="lm_head")
        return head(x).astype(jnp.float32)


def parameter_count(params) -> int:
    return sum(int(p.size) for p in jax.tree.leaves(params))


def flops_per_token(arch: Architecture, seq_len: int) -> float:
    """6N + 12·L·H·Q·T (PaLM, torchtitan): N = every parameter but the input embedding (the output
    projection counts, tied or not), L layers, H heads, Q head dim, T sequence length."""
    head_dim = arch.hidden_size // arch.num_heads
    kv = arch.num_kv_heads * head_dim
    per_layer = (
        arch.hidden_size * (2 * arch.hidden_size + 2 * kv) + 3 * arch.hidden_size * arch.intermediate_size
    )
    per_layer += 2 * arch.hidden_size  # the two norms
    n = arch.num_layers * per_layer + arch.hidden_size + arch.vocab_size * arch.hidden_size
    return 6 * n + 12 * arch.num_layers * arch.num_heads * head_dim * seq_len
