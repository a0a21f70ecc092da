#!/usr/bin/env python3
"""FSDP benchmark on CPU: the trainer against the plain loop a user would write instead, side by side.

    make bench                       # or: python benchmarks/fsdp.py [--steps 30] [--rounds 3] [--compile]

Contenders, alternated round by round in one invocation (so both see the same machine): the FSDP
trainer (``src/train.py --preset small``, one process, fp32, every core) and ``plain_hf_loop.py`` (a
Hugging Face ``LlamaForCausalLM`` + AdamW loop with the same shapes, batch, loss and clipping). Each run's
figure is the median tokens/s of its steady steps (the first quarter dropped: warm-up, compile); each
contender's runs give min / median / max, and the result is invalid when a spread is above 25%. The
ratio trainer ÷ plain is reported per round and as the ratio of medians (goal: >= 1.0). Also: the
trainer's MFU against the GEMM peak it measured at start (flagged above 90%), and the FLOPs formula
against torch's flop counter on one forward + backward, and what verifying the run's checkpoint (every
file's CRC-32 against its manifest, as resume does) costs. Writes ``bench-results/fsdp-<time>.json`` and
a Markdown table beside it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import ROOT, machine_info, out_problem
from stats import problems, summarize

FSDP = ROOT / "3.test_cases" / "pytorch" / "FSDP"
PLAIN = Path(__file__).resolve().parent / "plain_hf_loop.py"
sys.path.insert(0, str(FSDP / "src"))  # the trainer's own modules: the FLOPs formula, the MFU threshold


def steady_median(records: list[dict]) -> float:
    rates = [r["tokens_per_s"] for r in records if "tokens_per_s" in r and "event" not in r]
    return statistics.median(rates[len(rates) // 4 :])


def run_trainer(steps: int, compiled: bool) -> dict:
    """The FSDP trainer on ``small`` for ``steps`` steps: steady tokens/s, MFU and its measured peak."""
    with tempfile.TemporaryDirectory(prefix="bench-fsdp-") as run_dir:
        command = [sys.executable, "src/train.py", "--preset", "small", "--max-steps", str(steps)]
        command += ["--checkpoint-every", str(steps), "--val-every", "0", "--run-dir", run_dir]
        if compiled:
            command.append("--compile")
        subprocess.run(command, cwd=FSDP, check=True, capture_output=True, text=True)
        records = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
        checkpoint_bytes, verify_s = verification_cost(max((Path(run_dir) / "checkpoints").glob("step-*")))
    start = next(r for r in records if r.get("event") == "start")
    steady = [r for r in records if "mfu_pct" in r and "event" not in r]
    steady = steady[len(steady) // 4 :]
    return {
        "tokens_per_s": steady_median(records),
        "mfu_pct": statistics.median(r["mfu_pct"] for r in steady),
        "peak_tflops": start["peak_tflops"],
        "flops_per_token": start["flops_per_token"],
        "checkpoint_bytes": checkpoint_bytes,
        "verify_s": verify_s,
    }


def verification_cost(folder: Path) -> tuple[int, float]:
    """What checking a checkpoint before resuming costs: every file's CRC-32 against the manifest, as one
    process does it (with N ranks each reads 1/N of the files). (bytes, seconds)."""
    from fsdp.atomic_checkpoint import MARKER, crc32  # noqa: PLC0415 - imports torch

    files = json.loads((folder / MARKER).read_text())["files"]
    begin = time.perf_counter()
    damaged = [name for name, entry in files.items() if crc32(folder / name) != entry["crc32"]]
    seconds = time.perf_counter() - begin
    if damaged:
        raise RuntimeError(f"the benchmark's own checkpoint {folder} fails its checksums: {damaged}")
    return sum(entry["size"] for entry in files.values()), seconds


def run_plain(steps: int, compiled: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-plain-") as scratch:
        out = Path(scratch) / "steps.jsonl"
        command = [sys.executable, str(PLAIN), "--steps", str(steps), "--out", str(out)]
        if compiled:
            command.append("--compile")
        subprocess.run(command, check=True, capture_output=True, text=True)
        records = [json.loads(line) for line in out.read_text().splitlines()]
    return {"tokens_per_s": steady_median(records)}


def formula_check() -> dict:
    """The FLOPs formula against torch's flop counter, one forward + backward of ``small``."""
    from fsdp.model import counted_flops, flops_per_token  # noqa: PLC0415
    from fsdp.presets import PRESETS  # noqa: PLC0415

    arch, seq_len = PRESETS["small"].arch, PRESETS["small"].training.seq_len
    formula = flops_per_token(arch, seq_len) * seq_len
    counted = counted_flops(arch, seq_len)
    return {
        "formula": "6*N + 12*L*H*Q*T per token",
        "counted_flops": counted,
        "formula_flops": formula,
        "counted_over_formula": round(counted / formula, 4),
    }


def compare(steps: int, rounds: int, compiled: bool) -> dict:
    """Alternate trainer and plain loop ``rounds`` times; summaries, per-round ratios, validity."""
    trainer, plain = [], []
    for _ in range(rounds):
        trainer.append(run_trainer(steps, compiled))
        plain.append(run_plain(steps, compiled))
    summaries = {
        "trainer_tokens_per_s": summarize([r["tokens_per_s"] for r in trainer]),
        "plain_tokens_per_s": summarize([r["tokens_per_s"] for r in plain]),
        "trainer_mfu_pct": summarize([r["mfu_pct"] for r in trainer]),
        "peak_tflops": summarize([r["peak_tflops"] for r in trainer]),
        "checkpoint_verify_s": summarize([r["verify_s"] for r in trainer]),
    }
    ratios = [t["tokens_per_s"] / p["tokens_per_s"] for t, p in zip(trainer, plain, strict=True)]
    found = problems("trainer tokens/s", summaries["trainer_tokens_per_s"])
    found += problems("plain tokens/s", summaries["plain_tokens_per_s"])
    from fsdp.metrics import IMPLAUSIBLE_MFU_PCT  # noqa: PLC0415 - imports torch

    if summaries["trainer_mfu_pct"]["max"] > IMPLAUSIBLE_MFU_PCT:
        found.append(
            f"trainer MFU up to {summaries['trainer_mfu_pct']['max']}%: implausible, a peak probe ran slow"
        )
    return {
        "mode": "compiled" if compiled else "eager",
        "steps": steps,
        **summaries,
        "ratio_per_round": summarize(ratios),
        "ratio_of_medians": round(
            summaries["trainer_tokens_per_s"]["median"] / summaries["plain_tokens_per_s"]["median"], 3
        ),
        "checkpoint_bytes": trainer[0]["checkpoint_bytes"],
        "valid": not found,
        "problems": found,
    }


def markdown(result: dict) -> str:
    machine = result["machine"]
    lines = [
        f"FSDP `small` against a plain Hugging Face loop on {machine['cpu']} ({machine['cores']} cores), "
        f"torch {machine['torch']}, {result['time']}; {result['rounds']} alternated rounds, "
        "min / median / max",
        "",
        "| mode | trainer tokens/s | plain loop tokens/s | trainer ÷ plain (per round) | trainer MFU % "
        "| valid |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        t, p, q, m = (
            r["trainer_tokens_per_s"],
            r["plain_tokens_per_s"],
            r["ratio_per_round"],
            r["trainer_mfu_pct"],
        )
        lines.append(
            f"| {r['mode']} | {t['min']:,.0f} / {t['median']:,.0f} / {t['max']:,.0f} | "
            f"{p['min']:,.0f} / {p['median']:,.0f} / {p['max']:,.0f} | {q['min']:.2f} / {q['median']:.2f} / "
            f"{q['max']:.2f} | {m['min']:.1f} / {m['median']:.1f} / {m['max']:.1f} | "
            f"{'yes' if r['valid'] else 'NO: ' + '; '.join(r['problems'])} |"
        )
    for r in result["runs"]:
        v = r["checkpoint_verify_s"]
        lines.append(
            f"\nCheckpoint verification ({r['mode']}, one process): {r['checkpoint_bytes'] / 2**20:,.0f} MiB "
            f"checked in {v['min']:.3f} / {v['median']:.3f} / {v['max']:.3f} s "
            f"({r['checkpoint_bytes'] / 2**30 / v['median']:.2f} GiB/s at the median)"
        )
    check = result["flops_formula"]
    lines += ["", f"FLOPs: torch's counter / formula ({check['formula']}) = {check['counted_over_formula']}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="training steps per run (default 30)")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds (default 3, at least 3)")
    parser.add_argument("--compile", action="store_true", help="also compare both with torch.compile")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results", help="results folder")
    args = parser.parse_args(argv)
    if args.steps < 8:
        parser.error(f"--steps={args.steps} is too few to measure steady steps; use 8 or more")
    if args.rounds < 3:
        parser.error(f"--rounds={args.rounds}: a spread needs at least 3 rounds")
    if (problem := out_problem(args.out)) is not None:
        parser.error(f"--out {args.out}: {problem}; give a folder the results can be written to")
    modes = [False, True] if args.compile else [False]
    stamp = time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime())
    result = {
        "benchmark": "fsdp/small vs plain Hugging Face loop",
        "time": stamp,
        "machine": machine_info(),
        "rounds": args.rounds,
        "runs": [compare(args.steps, args.rounds, compiled) for compiled in modes],
        "flops_formula": formula_check(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"fsdp-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"fsdp-{stamp}.md").write_text(markdown(result))
    print(markdown(result))
    print(f"wrote {args.out / f'fsdp-{stamp}.json'}")
    for run in result["runs"]:
        for problem in run["problems"]:
            print(f"INVALID ({run['mode']}): {problem}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
