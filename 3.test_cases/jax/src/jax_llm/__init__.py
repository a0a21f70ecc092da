"""A small Llama-class language-model trainer in JAX + Flax + Optax + Orbax (multi-process, data and
model parallel over one ``jax.sharding`` mesh)."""
