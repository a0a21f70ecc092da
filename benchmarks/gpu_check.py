#!/usr/bin/env python3
"""Every GPU check in one short run: the ``gpu``-marked tests, then FSDP ``llama3_2_1b`` in bf16 with
torch.compile on one GPU (tokens/s and MFU from the trainer's own metrics). Under 8 minutes on one H100.

    make gpu-check                   # or: python benchmarks/gpu_check.py [--steps 40] [--out bench-results]

Writes ``bench-results/gpu-check-<time>.json`` (machine, GPU, test outcome, throughput, MFU) and prints a
summary line to record in the FSDP README. Without a CUDA device it stops with one line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import ROOT, machine_info, out_problem

FSDP = ROOT / "3.test_cases" / "pytorch" / "FSDP"
TEST_BUDGET_S = 300
BENCH_BUDGET_S = 240


def gpu_info() -> dict | None:
    """Name, count and driver of the GPUs torch sees; None without CUDA."""
    probe = (
        "import json, torch; ok = torch.cuda.is_available(); "
        "print(json.dumps({'count': torch.cuda.device_count(), 'name': torch.cuda.get_device_name(0), "
        "'cuda': torch.version.cuda} if ok else None))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def gpu_tests() -> dict:
    """Every ``gpu``-marked test of the repository."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "-rA"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TEST_BUDGET_S,
        check=False,
    )
    last = (result.stdout.strip().splitlines() or ["no output"])[-1]
    return {
        "exit_code": result.returncode,
        "summary": last,
        "seconds": round(time.perf_counter() - started, 1),
    }


def fsdp_one_gpu(steps: int) -> dict:
    """llama3_2_1b, bf16 (the GPU default), compiled, one GPU, built-in corpus; steady log steps."""
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as run_dir:
        command = [str(Path(sys.executable).parent / "torchrun"), "--nproc-per-node", "1", "src/train.py"]
        command += ["--preset", "llama3_2_1b", "--compile", "--max-steps", str(steps), "--log-every", "5"]
        command += ["--val-every", "0", "--no-final-checkpoint", "--checkpoint-every", str(steps + 1)]
        command += ["--run-dir", run_dir]
        started = time.perf_counter()
        done = subprocess.run(
            command, cwd=FSDP, capture_output=True, text=True, timeout=BENCH_BUDGET_S, check=False
        )
        if done.returncode != 0:
            return {"exit_code": done.returncode, "stderr_tail": done.stderr[-2000:]}
        records = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    start = next(r for r in records if r.get("event") == "start")
    steady = [r for r in records if "mfu_pct" in r and "event" not in r][
        1:
    ]  # the first window holds the compile
    return {
        "exit_code": 0,
        "preset": "llama3_2_1b",
        "seq_len": 8192,
        "steps": steps,
        "seconds": round(time.perf_counter() - started, 1),
        "peak_source": start["peak_source"],
        "tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in steady), 1),
        "mfu_pct": round(statistics.median(r["mfu_pct"] for r in steady), 2),
        "mem_gib": round(max(r["mem_gib"] for r in steady), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="training steps of the benchmark (default 40)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results", help="results folder")
    args = parser.parse_args(argv)
    if args.steps < 15:
        parser.error(f"--steps={args.steps}: use 15 or more (the first 5 hold the compile)")
    if (problem := out_problem(args.out)) is not None:
        parser.error(f"--out {args.out}: {problem}; give a folder the results can be written to")
    gpu = gpu_info()
    if gpu is None:
        print(
            "error: no CUDA device here; run make gpu-check on a machine with an NVIDIA GPU", file=sys.stderr
        )
        return 2
    stamp = time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime())
    result = {"check": "gpu", "time": stamp, "machine": machine_info(), "gpu": gpu}
    result["tests"] = gpu_tests()
    result["fsdp_llama3_2_1b_bf16_compile"] = fsdp_one_gpu(args.steps)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"gpu-check-{stamp}.json"
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(partial, path)
    bench = result["fsdp_llama3_2_1b_bf16_compile"]
    print(f"gpu tests: {result['tests']['summary']} ({result['tests']['seconds']} s)")
    if bench["exit_code"] == 0:
        print(
            f"FSDP llama3_2_1b bf16 + compile on one {gpu['name']}: {bench['tokens_per_s']:,.0f} tokens/s, "
            f"MFU {bench['mfu_pct']:.1f}%, {bench['mem_gib']:.1f} GiB"
        )
    else:
        print(
            f"FSDP benchmark failed (exit {bench['exit_code']}): {bench['stderr_tail'][-500:]}",
            file=sys.stderr,
        )
    print(f"wrote {path}")
    return 0 if result["tests"]["exit_code"] == 0 and bench["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
