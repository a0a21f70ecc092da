"""Throughput, MFU and the per-step records.

MFU = achieved FLOP/s per device / the device's dense peak. FLOPs per token follow the PaLM /
torchtitan convention (``model.flops_per_token``). GPU peaks are dense bf16 from the vendors' data
sheets; on CPU there is no honest data-sheet number, so each rank measures an fp32 GEMM at start
and that measured peak is stated in the log.
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import torch

# Dense (non-sparse) bf16 TFLOP/s by GPU name fragment.
GPU_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "B200": 2250.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0}


def gpu_peak_tflops(name: str) -> float | None:
    return next((peak for key, peak in GPU_PEAK_TFLOPS.items() if key in name), None)


def measure_cpu_peak_tflops(size: int = 1024, repeats: int = 8) -> float:
    """Best fp32 GEMM rate over a few runs, with this process's thread count."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)  # warm-up
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * size**3 / (time.perf_counter() - started))
    return best / 1e12


def device_peak(device: torch.device) -> tuple[float | None, str]:
    """(peak TFLOP/s, where it came from)."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return gpu_peak_tflops(name), f"{name} dense bf16 data sheet"
    return measure_cpu_peak_tflops(), f"measured fp32 GEMM, {torch.get_num_threads()} threads"


def memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


class MetricsLogger:
    """Rank 0 writes JSON records to stdout and ``<run_dir>/metrics.jsonl`` (appending across resumes)."""

    def __init__(self, run_dir: Path, enabled: bool) -> None:
        self.enabled = enabled
        self._file = (run_dir / "metrics.jsonl").open("a", encoding="utf-8") if enabled else None

    def record(self, **values) -> None:
        if self._file is None:
            return
        line = json.dumps(values)
        print(line, flush=True)
        self._file.write(line + "\n")
        self._file.flush()

    def say(self, text: str) -> None:
        if self.enabled:
            print(text, flush=True)

    def step(self, values: dict) -> None:
        self.record(**values)
        mfu = f"{values['mfu_pct']:.1f}%" if values["mfu_pct"] is not None else "n/a"
        self.say(
            f"step {values['step']:5d} | loss {values['loss']:.4f} | lr {values['lr']:.2e} | "
            f"{values['tokens_per_s']:,.0f} tok/s/device | {values['tflops']:.3f} TFLOP/s | MFU {mfu} | "
            f"mem {values['mem_gib']:.2f} GiB"
        )

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
