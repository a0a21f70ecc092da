#!/usr/bin/env python3
"""Benchmarks: throughput of the test cases on this machine, as JSON with machine info.

    make bench                      # or: python benchmarks/run.py [--steps 150] [--out bench-results]

cpu-ddp, preset ``wide``: samples/s of all ranks (median over the steps after warm-up) with 1 rank
(every core's threads) and 2 ranks (half each) under torchrun, alternated ``--rounds`` times, and the
scaling efficiency on the same cores (2 ranks / 1 rank; a run with a spread above 25% or an efficiency
above 1 is marked invalid, with the reason). Results go to ``bench-results/cpu-ddp-<time>.json``;
nothing here is asserted by the tests.

gloo all_reduce between 2 local ranks (4.validation_observability/6.nccl-tests' collective_bench.py):
time, algbw and busbw per message size, 8 B to 256 MiB, in ``bench-results/gloo-allreduce-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stats import problems, summarize

ROOT = Path(__file__).resolve().parents[1]
CPU_DDP = ROOT / "3.test_cases" / "pytorch" / "cpu-ddp"
NCCL_TESTS = ROOT / "4.validation_observability" / "6.nccl-tests"
WARMUP_STEPS = 20


def machine_info() -> dict:
    """What the numbers depend on: CPU, cores, memory, Python, torch, commit."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    torch_version = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "python": platform.python_version(),
        "torch": torch_version,
        "platform": platform.platform(),
        "commit": commit or None,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_ddp_throughput(nproc: int, steps: int) -> dict:
    """Run cpu-ddp ``wide`` with ``nproc`` ranks; median samples/s after warm-up."""
    with tempfile.TemporaryDirectory(prefix="bench-cpu-ddp-") as run_dir:
        command = [
            str(Path(sys.executable).parent / "torchrun"),
            "--nproc-per-node",
            str(nproc),
            "--rdzv-backend",
            "c10d",
            "--rdzv-endpoint",
            f"127.0.0.1:{free_port()}",
            "src/train.py",
            "--preset",
            "wide",
            "--log-every",
            "1",  # a record per step: the median below is over steps
            "--max-steps",
            str(steps),
            "--checkpoint-every",
            str(steps),
            "--run-dir",
            run_dir,
        ]
        subprocess.run(command, cwd=CPU_DDP, check=True, capture_output=True, text=True)
        records = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    # Step records give samples/s per rank; the numbers here are for all ranks together.
    rates = [nproc * r["samples_per_s"] for r in records if "event" not in r and r["step"] > WARMUP_STEPS]
    return {
        "nproc": nproc,
        "steps": steps,
        "samples_per_s_median": statistics.median(rates),
        "samples_per_s_p10": statistics.quantiles(rates, n=10)[0],
    }


def gloo_allreduce_table(out_dir: Path, max_bytes: str = "256M") -> Path:
    """This machine's gloo all_reduce between 2 local ranks, per message size; returns the JSON's path."""
    with tempfile.TemporaryDirectory(prefix="bench-gloo-") as scratch:
        raw = Path(scratch) / "all_reduce.json"
        command = [
            str(Path(sys.executable).parent / "torchrun"),
            "--nproc-per-node",
            "2",
            "--rdzv-backend",
            "c10d",
            "--rdzv-endpoint",
            f"127.0.0.1:{free_port()}",
            "collective_bench.py",
            *("-b", "8", "-e", max_bytes, "-f", "2", "-w", "5", "-n", "20", "--json-out", str(raw)),
        ]
        completed = subprocess.run(command, cwd=NCCL_TESTS, check=True, capture_output=True, text=True)
        bench = json.loads(raw.read_text())
    rows = [
        {"size_bytes": row["size_bytes"], **{k: row["in_place"][k] for k in ("time_us", "algbw", "busbw")}}
        for row in bench["rows"]
    ]
    result = {
        "benchmark": "gloo/all_reduce, 2 local ranks",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_info(),
        "units": {"time_us": "microseconds", "algbw": "GB/s (1e9 B)", "busbw": "GB/s, algbw x 2(n-1)/n"},
        "rows": rows,
        "peak_busbw_gbytes_per_s": max(row["busbw"] for row in rows),
        "wrong_elements": bench["wrong"],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"gloo-allreduce-{result['time'].replace(':', '')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(completed.stdout, end="")  # the nccl-tests style table
    return path


def cpu_ddp_scaling(steps: int, rounds: int) -> dict:
    """1 rank (every core's threads) and 2 ranks (half the threads each) alternated ``rounds`` times on the
    same cores: efficiency = 2-rank samples/s / 1-rank samples/s (1.0: the second process costs nothing)."""
    one, two = [], []
    for _ in range(rounds):
        one.append(cpu_ddp_throughput(1, steps))
        two.append(cpu_ddp_throughput(2, steps))
    efficiencies = [
        b["samples_per_s_median"] / a["samples_per_s_median"] for a, b in zip(one, two, strict=True)
    ]
    result = {
        "benchmark": "cpu-ddp/wide",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_info(),
        "definition": "samples/s of 2 ranks sharing the cores / samples/s of 1 rank using them all",
        "steps": steps,
        "one_rank_samples_per_s": summarize([r["samples_per_s_median"] for r in one]),
        "two_ranks_samples_per_s": summarize([r["samples_per_s_median"] for r in two]),
        "scaling_efficiency_same_cores": summarize(efficiencies),
    }
    found = problems("1 rank", result["one_rank_samples_per_s"]) + problems(
        "2 ranks", result["two_ranks_samples_per_s"]
    )
    if max(efficiencies) > 1.0:
        found.append(
            f"efficiency up to {max(efficiencies):.2f} > 1: two ranks on the cores of one beat it, so a "
            "1-rank run was disturbed; rerun on a quiet machine"
        )
    return {**result, "valid": not found, "problems": found}


def out_problem(out: Path) -> str | None:
    """Why the results folder cannot be made or written (its first existing path decides), else None."""
    for path in (out, *out.parents):
        if path.exists():
            if not path.is_dir():
                return f"{path} is a file, not a folder"
            if not os.access(path, os.W_OK | os.X_OK):
                return f"{path} is not writable"
            return None
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=150, help="training steps per run (default 150)")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds (default 3, at least 3)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results", help="results folder")
    args = parser.parse_args(argv)
    if args.steps <= WARMUP_STEPS + 10:
        parser.error(f"--steps={args.steps} leaves too few measured steps; use more than {WARMUP_STEPS + 10}")
    if args.rounds < 3:
        parser.error(f"--rounds={args.rounds}: a spread needs at least 3 rounds")
    if (problem := out_problem(args.out)) is not None:
        parser.error(f"--out {args.out}: {problem}; give a folder the results can be written to")
    result = cpu_ddp_scaling(args.steps, args.rounds)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"cpu-ddp-{result['time'].replace(':', '')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    for problem in result["problems"]:
        print(f"INVALID: {problem}", file=sys.stderr)
    print(f"wrote {path}")
    print(f"wrote {gloo_allreduce_table(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
