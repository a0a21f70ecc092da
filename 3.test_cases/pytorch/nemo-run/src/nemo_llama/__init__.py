"""Llama 3 training with NeMo 2.x recipes, launched through nemo-run: presets, cluster config, executors."""
