"""DDP over gloo on CPU: a small classifier trained on scikit-learn's bundled handwritten digits.

Reading order: ``config`` (presets, what a run depends on), ``data`` (the fixed split, each rank's
batches), ``model`` (the single-device MLP, FLOPs per sample), ``checkpoint`` (what a checkpoint
holds), ``trainer`` (the loop; the one place DDP wrapping happens).

Copies of common/trainer/, written by common/sync.py (edit the source, then ``make sync``): ``distributed``
(joining and leaving the group), ``run_folder``, ``atomic_checkpoint`` (the atomic, verified writer),
``faults`` (resilience drills), ``metrics`` (``metrics.jsonl``, peaks, MFU) and ``device_peaks``.
"""
