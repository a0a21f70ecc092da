#!/usr/bin/env python3
"""FSDP benchmark on CPU: the ``small`` preset, eager and compiled, a fixed number of steps.

    make bench                       # or: python benchmarks/fsdp.py [--steps 40] [--out bench-results]

One process with every core's threads, fp32: tokens/s and MFU against the GEMM peak the trainer
measures at start (the steady steps: the first quarter is dropped, which also hides the compile).
Writes ``bench-results/fsdp-<time>.json`` and a Markdown table beside it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import ROOT, machine_info

FSDP = ROOT / "3.test_cases" / "pytorch" / "FSDP"


def run_small(steps: int, compiled: bool) -> dict:
    """Train ``small`` for ``steps`` steps; return the trainer's summary and its measured peak."""
    with tempfile.TemporaryDirectory(prefix="bench-fsdp-") as run_dir:
        command = [
            sys.executable,
            "src/train.py",
            "--preset",
            "small",
            "--max-steps",
            str(steps),
            "--checkpoint-every",
            str(steps),
            "--val-every",
            "0",
            "--run-dir",
            run_dir,
        ]
        if compiled:
            command.append("--compile")
        subprocess.run(command, cwd=FSDP, check=True, capture_output=True, text=True)
        records = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    start = next(r for r in records if r.get("event") == "start")
    summary = next(r for r in records if r.get("event") == "summary")
    return {
        "mode": "compiled" if compiled else "eager",
        "steps": steps,
        "tokens_per_s": round(summary["tokens_per_s"], 1),
        "mfu_pct": round(summary["mfu_pct"], 1),
        "peak_tflops": round(start["peak_tflops"], 4),
        "peak_source": start["peak_source"],
        "flops_per_token": start["flops_per_token"],
        "params_total": start["params"]["total"],
    }


def markdown(result: dict) -> str:
    lines = [
        f"FSDP `small` on {result['machine']['cpu']} ({result['machine']['cores']} cores), "
        f"torch {result['machine']['torch']}, {result['time']}",
        "",
        "| mode | tokens/s | MFU % | measured peak TFLOP/s |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r['mode']} | {r['tokens_per_s']:,.0f} | {r['mfu_pct']} | {r['peak_tflops']} |"
        for r in result["runs"]
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="training steps per run (default 40)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results", help="results folder")
    args = parser.parse_args(argv)
    if args.steps < 8:
        parser.error(f"--steps={args.steps} is too few to measure steady steps; use 8 or more")
    runs = [run_small(args.steps, compiled) for compiled in (False, True)]
    stamp = time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime())
    result = {"benchmark": "fsdp/small", "time": stamp, "machine": machine_info(), "runs": runs}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"fsdp-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"fsdp-{stamp}.md").write_text(markdown(result))
    print(markdown(result))
    print(f"wrote {args.out / f'fsdp-{stamp}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
