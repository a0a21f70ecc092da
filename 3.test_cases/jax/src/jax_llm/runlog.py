"""The run folder (the test-case contract's layout), step metrics, device peaks and MFU.

Process 0 writes ``config.json``, ``metrics.jsonl`` and ``result.json``; every process writes
``ranks/rank<P>.json``. Files are written to a temporary name and renamed, so a reader never sees half
a file. Stdout gets one human line per log step from process 0; JSON goes only to ``metrics.jsonl``.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

# Dense bf16 peak per device, TFLOP/s (data sheets; 1.architectures/instance-types.yaml has the same).
GPU_PEAKS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "B200": 2250.0}


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def device_peak_tflops() -> tuple[float, str]:
    """(dense peak TFLOP/s of one device, where it came from). On CPU: a GEMM measured now."""
    device = jax.local_devices()[0]
    for name, peak in GPU_PEAKS.items():
        if name in device.device_kind:
            return peak, f"{device.device_kind} data sheet (bf16 dense)"
    if device.platform == "gpu":
        return float("nan"), f"{device.device_kind}: no peak known"
    return measured_cpu_peak(), "fp32 GEMM measured at start"


def measured_cpu_peak(size: int = 512, repeats: int = 8) -> float:
    """The best fp32 matmul rate of one CPU device, TFLOP/s."""
    a = jax.device_put(jnp.ones((size, size), jnp.float32), jax.local_devices()[0])
    matmul = jax.jit(lambda x: x @ x)
    matmul(a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e12


def memory_gib() -> float:
    """Peak device memory of this process's first device, or the process's peak RSS on CPU."""
    stats = jax.local_devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return stats["peak_bytes_in_use"] / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


class RunLog:
    """Writes the run folder; only process 0 writes the shared files."""

    def __init__(self, run_dir: Path, process_id: int):
        self.run_dir, self.writer = run_dir, process_id == 0
        self.metrics = run_dir / "metrics.jsonl"
        run_dir.mkdir(parents=True, exist_ok=True)

    def record(self, record: dict) -> None:
        if self.writer:
            with self.metrics.open("a") as f:
                f.write(json.dumps(record, sort_keys=True) + "\n")

    def event(self, event: str, **fields) -> None:
        self.record({"event": event, "time": time.time(), **fields})

    def say(self, line: str) -> None:
        if self.writer:
            print(line, flush=True)

    def write(self, name: str, data: dict) -> None:
        if self.writer:
            write_json(self.run_dir / name, data)

    def records(self) -> list[dict]:
        if not self.metrics.is_file():
            return []
        return [json.loads(line) for line in self.metrics.read_text().splitlines() if line.strip()]


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)
