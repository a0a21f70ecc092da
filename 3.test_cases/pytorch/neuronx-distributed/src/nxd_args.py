#!/usr/bin/env python3
"""The command line of neuronx-distributed's Llama pretraining scripts, from a preset and the job's size.

A preset (``configs/<name>.json``) holds the example script to run, its tensor and pipeline parallel
degrees, the global and micro batch sizes, the Neuron environment it wants and its arguments in the
script's own vocabulary (``--tensor_parallel_size`` ...), with ``{placeholders}`` for what depends on the
job: ``{examples}`` (the neuronx-distributed checkout), ``{data_dir}``, ``{run_dir}``, ``{tensor_parallel}``,
``{pipeline_parallel}``, ``{micro_batch_size}``, ``{seq_len}``, ``{grad_accum}`` (micro batches per step
per data-parallel rank), ``{batch_per_replica}`` and ``{microbatches}`` (the pipeline's batch and micro
batch count per data-parallel replica).

    python3 src/nxd_args.py env  --preset llama3-8b                      # NAME=VALUE lines
    python3 src/nxd_args.py args --preset llama3-8b --nodes 4 --nproc-per-node 32 \\
        --data-dir /fsx/data/llama3 --run-dir /fsx/runs/x --examples-dir /fsx/neuronx-distributed
    python3 src/nxd_args.py run  --preset llama3-8b ... [--step compile]  # exec torchrun (one node or pod)

``args`` prints the entry point and then one argument per line (the sbatch reads them with mapfile);
``--step compile`` swaps in the preset's ``compile_args`` (a few steps, no checkpoints: what
``neuron_parallel_compile`` needs to extract the graphs). Arguments after ``--`` are appended, so they
override the preset's (the scripts' argparse keeps the last value). Standard library only: it runs on a
cluster's head node with the system Python (3.9 and newer).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
REQUIRED = ("entry_point", "tensor_parallel", "pipeline_parallel", "micro_batch_size", "global_batch_size")


class PresetError(ValueError):
    """A preset or job size that cannot work; the message names the value and the fix."""


def load_preset(name: str, configs: Path = CONFIGS) -> dict:
    """The preset ``name`` (a file of ``configs``, or a path to a JSON file)."""
    path = Path(name) if name.endswith(".json") else configs / f"{name}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in configs.glob("*.json")))
        raise PresetError(f"unknown preset {name!r}; use one of: {known} (or a path to a .json preset)")
    try:
        preset = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PresetError(f"{path} is not valid JSON ({exc}); fix the file") from None
    if not isinstance(preset, dict):
        raise PresetError(f"{path} must hold a JSON object")
    missing = [key for key in REQUIRED if key not in preset]
    if missing:
        raise PresetError(f"{path} lacks {', '.join(missing)}; compare it with configs/llama3-8b.json")
    for key in REQUIRED[1:]:
        if not isinstance(preset[key], int) or isinstance(preset[key], bool) or preset[key] < 1:
            raise PresetError(f"{path}: {key} must be a whole number >= 1, not {preset[key]!r}")
    return preset


def layout(preset: dict, nodes: int, nproc_per_node: int) -> dict[str, int]:
    """Data-parallel size and batch split for ``nodes`` x ``nproc_per_node`` ranks; PresetError if none."""
    if nodes < 1 or nproc_per_node < 1:
        raise PresetError(f"--nodes {nodes} --nproc-per-node {nproc_per_node}: both must be >= 1")
    world = nodes * nproc_per_node
    tp, pp = preset["tensor_parallel"], preset["pipeline_parallel"]
    if world % (tp * pp):
        raise PresetError(
            f"{nodes} nodes x {nproc_per_node} ranks = {world} is not a multiple of tensor_parallel {tp} x "
            f"pipeline_parallel {pp} = {tp * pp}; use a node count that is "
            f"(e.g. --nodes {max(1, tp * pp // nproc_per_node)})"
        )
    dp = world // (tp * pp)
    gbs, mbs = preset["global_batch_size"], preset["micro_batch_size"]
    if gbs % (mbs * dp):
        raise PresetError(
            f"global_batch_size {gbs} is not divisible by micro_batch_size {mbs} x data-parallel {dp}; "
            "change the node count or the preset's batch sizes"
        )
    return {
        "world_size": world,
        "data_parallel": dp,
        "grad_accum": gbs // (mbs * dp),
        "batch_per_replica": gbs // dp,
        "microbatches": gbs // dp // mbs,
    }


def entry_arguments(preset: dict, values: dict[str, object], compile_only: bool = False) -> list[str]:
    """The example script's arguments, placeholders filled."""
    arguments = dict(preset.get("args", {}))
    if compile_only:
        arguments.update(preset.get("compile_args", {}))
    out: list[str] = []
    for flag, value in arguments.items():
        out.append(flag)
        if value is not None:
            try:
                out.append(str(value).format(**values))
            except KeyError as exc:
                raise PresetError(
                    f"argument {flag} uses an unknown placeholder {exc}; see nxd_args.py"
                ) from None
    return out


def command(options: argparse.Namespace) -> list[str]:
    """The entry point, then its arguments (the user's extra arguments last)."""
    preset = load_preset(options.preset)
    values: dict[str, object] = {
        "examples": options.examples_dir,
        "data_dir": options.data_dir,
        "run_dir": options.run_dir,
        "tensor_parallel": preset["tensor_parallel"],
        "pipeline_parallel": preset["pipeline_parallel"],
        "micro_batch_size": preset["micro_batch_size"],
        "seq_len": preset.get("seq_len", 4096),
        **layout(preset, options.nodes, options.nproc_per_node),
    }
    entry = options.entry_point or f"{options.examples_dir}/{preset['entry_point']}"
    return [entry, *entry_arguments(preset, values, options.step == "compile"), *options.extra]


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = top.add_subparsers(dest="action", required=True)
    env = sub.add_parser("env", help="the preset's environment, NAME=VALUE lines")
    env.add_argument("--preset", required=True)
    for name in ("args", "run"):
        job = sub.add_parser(
            name, help="print the entry point and its arguments" if name == "args" else "exec torchrun"
        )
        job.add_argument("--preset", required=True)
        job.add_argument("--nodes", type=int, default=1)
        job.add_argument("--nproc-per-node", type=int, default=32)
        job.add_argument("--data-dir", required=True)
        job.add_argument("--run-dir", required=True)
        job.add_argument("--examples-dir", default="neuronx-distributed")
        job.add_argument("--entry-point", default="", help="run this script instead of the preset's")
        job.add_argument(
            "--step",
            choices=("compile", "train"),
            default="train",
            help="compile: the neuron_parallel_compile step's arguments (and launcher, for run)",
        )
        job.add_argument("extra", nargs=argparse.REMAINDER, help="-- then arguments appended to the preset's")
    return top


def main(argv: list[str] | None = None) -> int:
    options = parser().parse_args(argv)
    if getattr(options, "extra", None) and options.extra[0] == "--":
        options.extra = options.extra[1:]
    try:
        if options.action == "env":
            environment = load_preset(options.preset).get("env", {})
            print("\n".join(f"{name}={value}" for name, value in environment.items()))
            return 0
        line = command(options)
    except PresetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if options.action == "args":
        print("\n".join(line))
        return 0
    torchrun = ["torchrun", f"--nproc-per-node={options.nproc_per_node}", *line]
    launcher = ["neuron_parallel_compile", *torchrun] if options.step == "compile" else torchrun
    os.environ.update(load_preset(options.preset).get("env", {}))
    os.execvp(launcher[0], launcher)  # noqa: S606 - the launcher replaces this process, no shell
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
