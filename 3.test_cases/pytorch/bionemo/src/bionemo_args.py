#!/usr/bin/env python3
"""The command line of BioNeMo's training scripts (train_esm2, train_geneformer) from a preset and the job.

A preset (``configs/<name>.json``) names the script's module (``bionemo.esm2.scripts.train_esm2``), its
tensor and pipeline parallel sizes and its arguments in the script's own vocabulary, with placeholders
for what depends on the job: ``{data_dir}``, ``{result_dir}``, ``{nodes}``, ``{gpus_per_node}``,
``{tensor_parallel}``, ``{pipeline_parallel}``, ``{preset}``; ``data_dir`` is where the preset's data
lies under the shared storage unless ``--data-dir`` says otherwise.

    python3 src/bionemo_args.py args --preset esm2-650m --nodes 2 --gpus-per-node 8 \\
        --shared-dir /fsx --result-dir /fsx/bionemo/results
    python3 src/bionemo_args.py run ...        # exec torchrun -m <module> here (a PyTorchJob pod)

``args`` prints the module, then one argument per line (the sbatch reads them with mapfile). Arguments
after ``--`` are appended and win (argparse keeps the last value). Standard library only: it runs on a
head node with the system Python.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
REQUIRED = ("entry_point", "tensor_parallel", "pipeline_parallel", "args")


class PresetError(ValueError):
    """A preset or job size that cannot work; the message names the value and the fix."""


def load_preset(name: str, configs: Path = CONFIGS) -> dict:
    """The preset ``name`` (a file of ``configs``, or a path to a JSON file)."""
    path = Path(name) if name.endswith(".json") else configs / f"{name}.json"
    try:
        found = path.is_file()
    except OSError:  # a name too long for the file system
        found = False
    if not found:
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
        raise PresetError(f"{path} lacks {', '.join(missing)}; compare it with configs/esm2-650m.json")
    for key in ("tensor_parallel", "pipeline_parallel"):
        if not isinstance(preset[key], int) or isinstance(preset[key], bool) or preset[key] < 1:
            raise PresetError(f"{path}: {key} must be a whole number >= 1, not {preset[key]!r}")
    preset["name"] = path.stem
    return preset


def command(options: argparse.Namespace) -> list[str]:
    """The module, then its arguments (the user's extra arguments last)."""
    preset = load_preset(options.preset)
    if options.nodes < 1 or options.gpus_per_node < 1:
        raise PresetError(
            f"--nodes {options.nodes} --gpus-per-node {options.gpus_per_node}: both must be >= 1"
        )
    world = options.nodes * options.gpus_per_node
    model_parallel = preset["tensor_parallel"] * preset["pipeline_parallel"]
    if world % model_parallel:
        raise PresetError(
            f"{options.nodes} nodes x {options.gpus_per_node} GPUs = {world} is not a multiple of tensor x "
            f"pipeline parallel = {model_parallel}; change the node count"
        )
    values = {
        "data_dir": options.data_dir or f"{options.shared_dir}/{preset.get('data_dir', 'bionemo/data')}",
        "result_dir": options.result_dir,
        "nodes": options.nodes,
        "gpus_per_node": options.gpus_per_node,
        "tensor_parallel": preset["tensor_parallel"],
        "pipeline_parallel": preset["pipeline_parallel"],
        "preset": preset["name"],
    }
    out = [options.entry_point or preset["entry_point"]]
    for flag, value in preset["args"].items():
        out.append(flag)
        if value is not None:
            try:
                out.append(str(value).format(**values))
            except KeyError as exc:
                raise PresetError(
                    f"argument {flag} uses an unknown placeholder {exc}; see bionemo_args.py"
                ) from None
    return out + options.extra


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = top.add_subparsers(dest="action", required=True)
    for name, text in (("args", "print the module and its arguments"), ("run", "exec torchrun -m <module>")):
        job = sub.add_parser(name, help=text)
        job.add_argument("--preset", required=True)
        job.add_argument("--nodes", type=int, default=1)
        job.add_argument("--gpus-per-node", type=int, default=8)
        job.add_argument(
            "--shared-dir", default="/fsx", help="shared storage (default data: the preset's data_dir there)"
        )
        job.add_argument(
            "--data-dir", default="", help="the prepared data (default: SHARED_DIR/<preset's data_dir>)"
        )
        job.add_argument("--result-dir", required=True)
        job.add_argument("--entry-point", default="", help="run this module instead of the preset's")
        job.add_argument("extra", nargs=argparse.REMAINDER, help="-- then arguments appended to the preset's")
    return top


def main(argv: list[str] | None = None) -> int:
    options = parser().parse_args(argv)
    if options.extra and options.extra[0] == "--":
        options.extra = options.extra[1:]
    try:
        line = command(options)
    except PresetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if options.action == "args":
        print("\n".join(line))
        return 0
    launcher = ["torchrun", f"--nproc-per-node={options.gpus_per_node}", "-m", *line]
    os.execvp(launcher[0], launcher)  # noqa: S606 - the launcher replaces this process, no shell
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
