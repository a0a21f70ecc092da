"""FSDP2 training of Llama / Mistral / Mixtral presets.

Reading order: ``presets`` (model sizes), ``config`` (what a run depends on), ``model`` (meta-device
build and initialisation), ``parallelize`` (the one place wrapping happens), ``data``, ``checkpoint``,
``metrics``, ``trainer`` (the loop).
"""
