"""Metrics as data, peaks and MFU: every trainer of this repository carries a copy.

Rank 0 appends one JSON record per log step (and one per event: ``start``, ``val``, ``checkpoint``,
``resume``, ``summary``) to ``<run_dir>/metrics.jsonl`` and prints one human line; nothing else goes
to stdout. Step records carry ``step``, ``loss``, ``tokens_per_s`` or ``samples_per_s`` (per device),
``tflops``, ``mfu_pct``, ``mem_gib`` and ``step_time_s``.

MFU = achieved FLOP/s per device / the device's dense peak. GPU peaks are the dense bf16 figures of
the data sheets, as ``1.architectures/instance-types.yaml`` records them (``device_peaks.py``); a CPU
has no honest data-sheet figure, so each rank measures its fp32 GEMM rate at
start (several sizes, repeated sweeps, a third sweep when two disagree) and says so. An MFU above
``IMPLAUSIBLE_MFU_PCT`` is flagged, never printed as if it were true: it means the probe ran slow.
"""

from __future__ import annotations

import json
import math
import resource
import time
from pathlib import Path

import torch

from .device_peaks import GPU_PEAK_TFLOPS  # dense bf16 per GPU model, from instance-types.yaml

IMPLAUSIBLE_MFU_PCT = 90.0
PROBE_SIZES = (256, 512, 1024)
PROBE_AGREEMENT = 0.9  # two sweeps whose best rates differ by more than 10% get a third


def gpu_peak_tflops(name: str) -> float | None:
    return next((peak for key, peak in GPU_PEAK_TFLOPS.items() if key in name), None)


def _gemm_rate(size: int, min_time_s: float) -> float:
    """FLOP/s of repeated ``size``-square fp32 GEMMs, timed over at least ``min_time_s``."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)  # warm-up: first-call allocations and thread start
    runs, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < min_time_s or runs < 2:
        torch.mm(a, b)
        runs += 1
    return 2 * size**3 * runs / elapsed


def _sweep(min_time_s: float) -> float:
    return max(_gemm_rate(size, min_time_s) for size in PROBE_SIZES)


def measure_cpu_peak_tflops(min_time_s: float = 0.05) -> float:
    """Best fp32 GEMM rate of this process (its thread count) over repeated size sweeps, in TFLOP/s."""
    sweeps = [_sweep(min_time_s), _sweep(min_time_s)]
    if min(sweeps) < PROBE_AGREEMENT * max(sweeps):  # one sweep ran while something else did
        sweeps.append(_sweep(2 * min_time_s))
    return max(sweeps) / 1e12


def device_peak(device: torch.device) -> tuple[float | None, str]:
    """(peak TFLOP/s per device, where it came from)."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return gpu_peak_tflops(name), f"{name} dense bf16 data sheet"
    return measure_cpu_peak_tflops(), f"measured fp32 GEMM, {torch.get_num_threads()} threads"


def mfu_pct(tflops: float, peak_tflops: float | None) -> float | None:
    return 100 * tflops / peak_tflops if peak_tflops else None


def steady_mean(records: list[dict], key: str) -> float | None:
    """Mean of ``key`` over the steady log records: the first quarter (warm-up, compile) is dropped."""
    steady = records[len(records) // 4 :] or records
    return sum(record[key] for record in steady) / len(steady) if steady else None


def mfu_text(mfu: float | None) -> str:
    """MFU for a human line; an implausible value says so."""
    if mfu is None or not math.isfinite(mfu):
        return "n/a"
    if mfu > IMPLAUSIBLE_MFU_PCT:
        return (
            f"{mfu:.1f}% (implausible: above {IMPLAUSIBLE_MFU_PCT:.0f}% of the peak; the peak probe ran slow)"
        )
    return f"{mfu:.1f}%"


def memory_gib(device: torch.device) -> float:
    """Peak device memory (GPU) or peak resident memory of this process (CPU; Linux: KiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


class MetricsLogger:
    """Rank 0 appends JSON records to ``<run_dir>/metrics.jsonl`` (across resumes) and prints human lines."""

    def __init__(self, run_dir: Path, enabled: bool) -> None:
        self.enabled = enabled
        self._file = None
        if enabled:
            run_dir.mkdir(parents=True, exist_ok=True)
            self._file = (run_dir / "metrics.jsonl").open("a", encoding="utf-8")

    def record(self, **values) -> None:
        if self._file is not None:
            self._file.write(json.dumps(values) + "\n")
            self._file.flush()

    def say(self, text: str) -> None:
        if self.enabled:
            print(text, flush=True)

    def step(self, values: dict) -> None:
        """One step record: JSON to the file, one human line to stdout."""
        self.record(**values)
        rate = (
            f"{values['tokens_per_s']:,.0f} tok/s/device"
            if "tokens_per_s" in values
            else f"{values['samples_per_s']:,.0f} samples/s/device"
        )
        self.say(
            f"step {values['step']:5d} | loss {values['loss']:.4f} | lr {values['lr']:.2e} | {rate} | "
            f"{values['tflops']:.3g} TFLOP/s | MFU {mfu_text(values['mfu_pct'])} | "
            f"mem {values['mem_gib']:.2f} GiB"
        )

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
