"""torchtitan.train on CPU for the smoke test: runtime shims, then torchtitan's own entry point.

Test-only (never shipped in src/): torchtitan 0.3.0 assumes CUDA. Each shim names why it is needed and
has a probe that says whether it still is; test_training.py fails when a probe says "no longer needed",
so a shim cannot outlive its reason. The shims, in the order applied:

1. cpu_device: with no accelerator torchtitan falls back to the device "cuda"
   (torch._utils._get_available_device_type() is None on a CPU build), and torch.cpu lacks the memory
   API its DeviceMemoryMonitor calls (get_device_name, get_device_properties, memory_stats,
   reset_peak_memory_stats, empty_cache); its current_device() returns "cpu", which
   barrier(device_ids=...) rejects. The shim reports the device "cpu" and a torch.cpu with those calls.
2. dist_set_timeout: torchtitan calls torch.distributed.set_timeout after the first step; torch 2.13
   has none. The shim adds one that keeps the timeout (a no-op).
3. gloo_sum_reduce: torchtitan sets FSDP2's gradient divide factor to 1.0, for which FSDP2
   reduce-scatters with PREMUL_SUM; gloo has no PREMUL_SUM. The shim makes FSDP2 use SUM (plus its
   own post-division, by 1.0 here), as it already does on MTIA.
4. flex_attention_cpu: torch's flex_attention refuses backward on CPU, and torchtitan calls it through
   torch.compile, whose CPU kernel has no backward. The shim lifts the check and calls flex_attention
   unfused (eager: it materialises the scores, fine at debug size).

Usage: torchrun --nproc-per-node 2 tests/titan_cpu.py --module aws_llama3 --config tiny ...
       python tests/titan_cpu.py --probe     (one JSON object: shim -> still needed)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import torch

MEMORY_API = ("get_device_name", "get_device_properties", "memory_stats", "reset_peak_memory_stats")


def _cpu_device_module() -> types.ModuleType:
    class CpuDevice(types.ModuleType):
        def __getattr__(self, name: str):
            return getattr(torch.cpu, name)

    module = CpuDevice("cpu_device")
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    module.get_device_name = lambda device=None: "cpu"
    module.get_device_properties = lambda device=None: types.SimpleNamespace(total_memory=total)
    module.memory_stats = lambda device=None: {}
    module.reset_peak_memory_stats = lambda device=None: None
    module.empty_cache = lambda: None
    module.current_device = lambda: 0
    return module


def apply_cpu_device() -> None:
    cpu = _cpu_device_module()
    device_module = torch._utils._get_device_module
    torch._utils._get_available_device_type = lambda: "cpu"
    torch._utils._get_device_module = lambda kind: cpu if kind == "cpu" else device_module(kind)


def probe_cpu_device() -> bool:
    from torchtitan.tools.utils import get_device_info  # noqa: PLC0415

    return get_device_info()[0] != "cpu" or not all(hasattr(torch.cpu, name) for name in MEMORY_API)


def apply_dist_set_timeout() -> None:
    torch.distributed.set_timeout = lambda timeout, group=None: None


def probe_dist_set_timeout() -> bool:
    return not hasattr(torch.distributed, "set_timeout")


def apply_gloo_sum_reduce() -> None:
    from torch.distributed.fsdp._fully_shard import _fsdp_collectives as collectives  # noqa: PLC0415

    original = collectives._get_gradient_divide_factors

    def sum_only(rs_group, ar_group, reduce_dtype, device_type="", factor=None, force_sum=False):
        return original(rs_group, ar_group, reduce_dtype, device_type, factor, True)

    collectives._get_gradient_divide_factors = sum_only


PREMUL_PROBE = """
import os, tempfile, torch, torch.distributed as dist
store = dist.FileStore(os.path.join(tempfile.mkdtemp(), "store"), 1)
dist.init_process_group("gloo", store=store, rank=0, world_size=1)
try:
    dist.reduce_scatter_tensor(torch.zeros(2), torch.ones(2), op=dist._make_nccl_premul_sum(1.0))
    print("supported")
except (RuntimeError, ValueError, NotImplementedError):
    print("unsupported")
"""


def probe_gloo_sum_reduce() -> bool:
    """FSDP2 still picks PREMUL_SUM for a divide factor of 1.0, and gloo still lacks it."""
    from torch.distributed.fsdp._fully_shard._fsdp_collectives import (  # noqa: PLC0415
        _get_gradient_divide_factors,
    )

    group = types.SimpleNamespace(size=lambda: 2)
    op = _get_gradient_divide_factors(group, None, torch.float32, "cpu", 1.0)[2]
    picks_premul = op not in (torch.distributed.ReduceOp.SUM, torch.distributed.ReduceOp.AVG)
    gloo = subprocess.run([sys.executable, "-c", PREMUL_PROBE], capture_output=True, text=True, check=True)
    return picks_premul and gloo.stdout.strip() == "unsupported"


def apply_flex_attention_cpu() -> None:
    import torch.nn.attention.flex_attention as flex  # noqa: PLC0415
    from torchtitan.models.common.attention import FlexAttention  # noqa: PLC0415

    flex._validate_device = lambda query, key, value: None
    FlexAttention._compiled_flex_attn = flex.flex_attention


def probe_flex_attention_cpu() -> bool:
    from torch.nn.attention.flex_attention import flex_attention  # noqa: PLC0415

    q, k, v = (torch.randn(1, 1, 16, 8, requires_grad=True) for _ in range(3))
    try:
        flex_attention(q, k, v).sum().backward()
    except NotImplementedError:
        return True
    return False


SHIMS = {
    "cpu_device": (apply_cpu_device, probe_cpu_device),
    "dist_set_timeout": (apply_dist_set_timeout, probe_dist_set_timeout),
    "gloo_sum_reduce": (apply_gloo_sum_reduce, probe_gloo_sum_reduce),
    "flex_attention_cpu": (apply_flex_attention_cpu, probe_flex_attention_cpu),
}


def main() -> None:
    if sys.argv[1:] == ["--probe"]:
        print(json.dumps({name: probe() for name, (_, probe) in SHIMS.items()}))
        return
    for apply, _ in SHIMS.values():
        apply()
    from torchtitan.train import main as train  # noqa: PLC0415 - after the shims

    train()


if __name__ == "__main__":
    main()
