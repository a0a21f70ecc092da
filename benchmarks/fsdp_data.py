#!/usr/bin/env python3
"""FSDP data: staging throughput, and the trainer's start time and memory against corpus size.

    python benchmarks/fsdp_data.py [--sizes 10MB 100MB 1GB] [--repeats 3] [--out bench-results]

Synthetic corpora (the pydoc topics as JSONL lines, shuffled deterministically and repeated up to the
size) are staged with ``src/stage.py``: tokens/s with the byte tokenizer at every size, and with a
locally trained BPE on the smallest. Then ``src/train.py --preset tiny --max-steps 1`` runs from each
staged folder (and from the built-in corpus, for reference): wall time and peak RSS of the child. The
shards are memory-mapped, so both should stay flat from 10 MB to 1 GB. Each figure is measured
``--repeats`` times (min / median / max). Writes ``bench-results/fsdp-data-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import ROOT, machine_info, out_problem

FSDP = ROOT / "3.test_cases" / "pytorch" / "FSDP"
SIZES = {"10MB": 10**7, "100MB": 10**8, "1GB": 10**9}
FILE_BYTES = 10**8  # the corpus is split into files of at most this size, as real corpora are
BPE_VOCAB = 4096


def write_corpus(folder: Path, size: int) -> int:
    """JSONL files of pydoc topics (shuffled with a fixed seed, repeated) totalling ``size`` bytes."""
    from pydoc_data.topics import topics  # noqa: PLC0415

    lines = [(json.dumps({"text": topics[key]}) + "\n").encode() for key in sorted(topics)]
    rng, written, number = random.Random(0), 0, 0
    folder.mkdir(parents=True)
    while written < size:
        with (folder / f"part-{number:03d}.jsonl").open("wb") as out:
            in_file = 0
            while in_file < min(FILE_BYTES, size - written):
                rng.shuffle(lines)
                for line in lines:
                    out.write(line)
                    in_file += len(line)
        written, number = written + in_file, number + 1
    return written


def train_bpe(folder: Path) -> Path:
    """A byte-level BPE trained on the pydoc topics, saved like a hub tokenizer."""
    from pydoc_data.topics import topics  # noqa: PLC0415

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers  # noqa: PLC0415
    from transformers import PreTrainedTokenizerFast  # noqa: PLC0415

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel()
    bpe.train_from_iterator(
        list(topics.values()), trainers.BpeTrainer(vocab_size=BPE_VOCAB, special_tokens=["<eos>"])
    )
    PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>").save_pretrained(folder)  # noqa: S106
    return folder


def measure(command: list[str]) -> tuple[float, float]:
    """Run ``command`` in the FSDP folder; return its wall time (s) and peak RSS (MiB, largest process)."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=FSDP, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise SystemExit(f"{' '.join(command)} failed:\n{errors.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def spread(values: list[float]) -> dict:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def bench_stage(corpus: Path, out: Path, tokenizer: str, repeats: int) -> dict:
    """Stage ``corpus`` ``repeats`` times (``--force``): tokens/s and peak RSS."""
    command = [sys.executable, "src/stage.py", "--input", str(corpus), "--out", str(out), "--force"]
    runs = [measure([*command, "--tokenizer", tokenizer]) for _ in range(repeats)]
    tokens = json.loads((out / "index.json").read_text())["tokens"]
    return {
        "tokens": tokens,
        "tokens_per_s": spread([tokens / wall for wall, _ in runs]),
        "rss_mib": spread([rss for _, rss in runs]),
    }


def bench_start(data_path: str, run_root: Path, repeats: int) -> dict:
    """``train.py --preset tiny --max-steps 1`` from ``data_path``: wall time and peak RSS."""
    runs = []
    for repeat in range(repeats):
        command = [sys.executable, "src/train.py", "--preset", "tiny", "--max-steps", "1", "--val-every", "0"]
        command += [
            "--checkpoint-every",
            "1",
            "--data-path",
            data_path,
            "--run-dir",
            str(run_root / f"r{repeat}"),
        ]
        runs.append(measure(command))
    return {"start_s": spread([wall for wall, _ in runs]), "rss_mib": spread([rss for _, rss in runs])}


def bench_size(name: str, work: Path, repeats: int, bpe: Path | None) -> dict:
    corpus_bytes = write_corpus(work / name / "corpus", SIZES[name])
    staged = work / name / "staged"
    row = {
        "corpus": name,
        "bytes": corpus_bytes,
        "stage_bytes": bench_stage(work / name / "corpus", staged, "bytes", repeats),
    }
    if bpe is not None:
        row["stage_bpe"] = bench_stage(work / name / "corpus", work / name / "staged-bpe", str(bpe), repeats)
    row["train_start"] = bench_start(str(staged), work / name / "runs", repeats)
    print(f"# {name}: done", file=sys.stderr, flush=True)
    return row


def fmt(figures: dict, spec: str) -> str:
    return "/".join(format(figures[k], spec) for k in ("min", "median", "max"))


def table(result: dict) -> str:
    machine = result["machine"]
    lines = [
        f"# FSDP data, {machine['cpu']} ({machine['cores']} cores), torch {machine['torch']}, "
        f"{result['time']}",
        "# min/median/max of each figure; start = train.py --preset tiny --max-steps 1, wall time",
        f"{'corpus':>9} {'tokens':>14} {'stage Mtok/s':>16} {'stage MiB':>14} {'BPE Mtok/s':>15} "
        f"{'start s':>16} {'start MiB':>16}",
    ]
    for row in result["rows"]:
        stage = row.get("stage_bytes")
        bpe = row.get("stage_bpe")
        lines.append(
            f"{row['corpus']:>9} {stage['tokens'] if stage else '-':>14} "
            f"{fmt({k: v / 1e6 for k, v in stage['tokens_per_s'].items()}, '.1f') if stage else '-':>16} "
            f"{fmt(stage['rss_mib'], '.0f') if stage else '-':>14} "
            f"{fmt({k: v / 1e6 for k, v in bpe['tokens_per_s'].items()}, '.2f') if bpe else '-':>15} "
            f"{fmt(row['train_start']['start_s'], '.2f'):>16} {fmt(row['train_start']['rss_mib'], '.0f'):>16}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES), help="corpus sizes")
    parser.add_argument("--repeats", type=int, default=3, help="measurements of each figure (default 3)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results", help="results folder")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats={args.repeats} must be at least 1")
    if (problem := out_problem(args.out)) is not None:
        parser.error(f"--out {args.out}: {problem}; give a folder the results can be written to")
    with tempfile.TemporaryDirectory(prefix="bench-fsdp-data-") as scratch:
        work = Path(scratch)
        bpe = train_bpe(work / "bpe")
        rows = [{"corpus": "built-in", "train_start": bench_start("", work / "builtin-runs", args.repeats)}]
        for index, name in enumerate(args.sizes):
            rows.append(bench_size(name, work, args.repeats, bpe if index == 0 else None))
    stamp = time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime())
    result = {
        "benchmark": "fsdp/data",
        "time": stamp,
        "machine": machine_info(),
        "workers": "stage.py default",
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"fsdp-data-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"wrote {args.out / f'fsdp-data-{stamp}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
