"""FSDP2 training of Llama / Mistral / Mixtral presets.

Reading order: ``presets`` (model sizes), ``config`` (what a run depends on), ``model`` (meta-device
build and initialisation), ``parallelize`` (the one place wrapping happens), ``data``, ``checkpoint``,
``trainer`` (the loop).

Copies of common/trainer/, written by common/sync.py (edit the source, then ``make sync``):
``distributed``, ``run_folder``, ``atomic_checkpoint``, ``faults``, ``metrics`` and ``device_peaks``.
"""
