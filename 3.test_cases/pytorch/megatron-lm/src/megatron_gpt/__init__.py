"""Pretraining GPT/Llama-style models on megatron-core: presets, data, model, trainer."""
