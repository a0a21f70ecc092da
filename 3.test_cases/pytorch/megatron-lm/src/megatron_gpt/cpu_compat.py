"""The one runtime shim the CPU smoke needs from megatron-core 0.16.1, kept apart so it is easy to see.

dist_checkpointing's torch_dist save works on CPU tensors over gloo, but two of its bookkeeping calls
assume CUDA: it waits for device-to-host copies with ``torch.cuda.synchronize()`` (strategies/
filesystem_async.py, ``preload_tensors``) and broadcasts its failure flag in a tensor placed on
``torch.cuda.current_device()`` (strategies/state_dict_saver.py). On a CPU-only torch both raise "Torch
not compiled with CUDA enabled". ``checkpointing_on_cpu()`` makes them a no-op and "cpu" for the duration
of one save or load, and only where CUDA is absent; on GPUs nothing is changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def checkpointing_on_cpu() -> Iterator[bool]:
    """Within the block, on a machine without CUDA: synchronize does nothing, the current device is the
    CPU. Yields whether it patched."""
    if torch.cuda.is_available():
        yield False
        return
    saved = torch.cuda.synchronize, torch.cuda.current_device
    torch.cuda.synchronize = lambda device=None: None
    torch.cuda.current_device = lambda: "cpu"
    try:
        yield True
    finally:
        torch.cuda.synchronize, torch.cuda.current_device = saved
