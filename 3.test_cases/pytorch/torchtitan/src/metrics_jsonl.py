"""torchtitan's TensorBoard scalars as this repository's metrics.jsonl (one JSON record per logged step).

    python src/metrics_jsonl.py RUN_DIR        (RUN_DIR is torchtitan's --dump_folder)

Reads ``RUN_DIR/tb/*/events.out.tfevents.*`` (written with ``--metrics.enable_tensorboard``) and writes
``RUN_DIR/metrics.jsonl`` with the keys every case uses: step, loss, tokens_per_s (per device), tflops,
mfu_pct (absent under float8, where torchtitan reports none), mem_gib, step_time_s. Needs tensorboard
(a torchtitan dependency).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# torchtitan's tag -> our key.
KEYS = {
    "loss_metrics/global_avg_loss": "loss",
    "throughput(tps)": "tokens_per_s",
    "tflops": "tflops",
    "mfu(%)": "mfu_pct",
    "memory/max_reserved(GiB)": "mem_gib",
    "time_metrics/end_to_end(s)": "step_time_s",
}


class InputError(ValueError):
    """Bad input: printed as one ``error:`` line, exit 2."""


def read_scalars(run_dir: Path) -> dict[int, dict[str, float]]:
    """Every step's scalars from the newest TensorBoard run under ``run_dir/tb``."""
    runs = sorted((run_dir / "tb").glob("*/events.out.tfevents.*"), key=os.path.getmtime)
    if not runs:
        raise InputError(
            f"{run_dir}/tb has no TensorBoard events; train with --metrics.enable_tensorboard "
            "and pass torchtitan's --dump_folder"
        )
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: PLC0415

    events = EventAccumulator(str(runs[-1].parent), size_guidance={"scalars": 0})
    events.Reload()
    steps: dict[int, dict[str, float]] = {}
    for tag, key in KEYS.items():
        if tag in events.Tags()["scalars"]:
            for scalar in events.Scalars(tag):
                steps.setdefault(scalar.step, {})[key] = scalar.value
    return steps


def write_metrics(run_dir: Path) -> Path:
    if not run_dir.is_dir():
        raise InputError(f"{run_dir} is not a folder; pass torchtitan's --dump_folder")
    steps = read_scalars(run_dir)
    out = run_dir / "metrics.jsonl"
    tmp = out.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps({"step": step, **steps[step]}) + "\n" for step in sorted(steps)))
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument(
        "run_dir", type=Path, help="torchtitan's --dump_folder (holds tb/ and writes metrics.jsonl)"
    )
    args = parser.parse_args(argv)
    try:
        out = write_metrics(args.run_dir)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
