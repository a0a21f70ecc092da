#!/usr/bin/env python3
"""picotron config files for common layouts: write them, check them, make one, or verify one for a job.

    python3 src/picotron_config.py                  # write configs/<layout>.json for every shipped layout
    python3 src/picotron_config.py --check          # exit 1 when a file in configs/ differs from its layout
    python3 src/picotron_config.py --list           # the shipped layouts, one line each
    python3 src/picotron_config.py --model llama3_1_8b --nodes 4 --tp 8 --global-batch 128 --out my.json
    python3 src/picotron_config.py --verify configs/llama3_1_8b-2nodes.json --world-size 16   # the sbatch
    python3 src/picotron_config.py --nodes-for configs/llama3_1_8b-2nodes.json   # nodes it needs: 2

The files are picotron's own JSON config (the keys of template/base_config.json at the pinned commit),
read by its train.py: ``torchrun ... train.py --config configs/<layout>.json``. A layout whose
tp x pp x cp x dp is not the world size, or whose sizes do not divide the model, is refused with one
``error:`` line naming the fix (exit 2); nothing is written then. Standard library only, so it runs on a
cluster's head node as well as in the image.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

FOLDER = Path(__file__).resolve().parents[1]
CONFIGS = FOLDER / "configs"


class LayoutError(ValueError):
    """A layout or config that picotron would reject (or that would not fit the job)."""


@dataclass(frozen=True)
class Model:
    hf_name: str  # picotron downloads the config, tokenizer and safetensors of this Hub repository
    layers: int
    heads: int
    kv_heads: int
    hidden: int
    intermediate: int
    vocab: int
    seq_len: int


# Architecture numbers from the models' config.json on the Hugging Face Hub.
MODELS = {
    "smollm_360m": Model("HuggingFaceTB/SmolLM-360M", 32, 15, 5, 960, 2560, 49152, 2048),
    "llama3_1_8b": Model("meta-llama/Llama-3.1-8B", 32, 32, 8, 4096, 14336, 128256, 8192),
    "llama3_1_70b": Model("meta-llama/Llama-3.1-70B", 80, 64, 8, 8192, 28672, 128256, 8192),
}


@dataclass(frozen=True)
class Layout:
    model: str
    nodes: int
    tp: int
    pp: int
    cp: int
    dp: int
    micro_batch: int  # sequences per rank per forward/backward
    global_batch: int  # sequences per optimizer step = micro_batch x accumulation x dp
    gpus_per_node: int = 8
    steps: int = 200
    seq_len: int | None = None  # the model's by default

    @property
    def world_size(self) -> int:
        return self.nodes * self.gpus_per_node

    @property
    def accumulation(self) -> int:
        return self.global_batch // (self.micro_batch * self.dp)

    @property
    def sequence_length(self) -> int:
        return self.seq_len or MODELS[self.model].seq_len


# p5.48xlarge (8x H100 80 GB). Tensor parallelism stays inside a node (NVLink); picotron's data
# parallelism replicates weights and optimizer state, so the 70B model needs tp x pp = 32 GPUs.
# Llama 3.1: 128 sequences of 8192 tokens (1M tokens) per step on every node count.
LAYOUTS = {
    "smollm_360m-1gpu": Layout("smollm_360m", 1, 1, 1, 1, 1, 8, 64, gpus_per_node=1),
    "smollm_360m-1node": Layout("smollm_360m", 1, 1, 1, 1, 8, 8, 64),
    "llama3_1_8b-1node": Layout("llama3_1_8b", 1, 8, 1, 1, 1, 1, 128),
    "llama3_1_8b-2nodes": Layout("llama3_1_8b", 2, 4, 1, 1, 4, 1, 128),
    "llama3_1_8b-4nodes": Layout("llama3_1_8b", 4, 4, 1, 1, 8, 1, 128),
    "llama3_1_8b-8nodes": Layout("llama3_1_8b", 8, 4, 1, 2, 8, 1, 128),
    "llama3_1_8b-16nodes": Layout("llama3_1_8b", 16, 4, 1, 1, 32, 1, 128),
    "llama3_1_70b-4nodes": Layout("llama3_1_70b", 4, 8, 4, 1, 1, 1, 128),
    "llama3_1_70b-8nodes": Layout("llama3_1_70b", 8, 8, 4, 1, 2, 1, 128),
    "llama3_1_70b-16nodes": Layout("llama3_1_70b", 16, 8, 4, 1, 4, 1, 128),
}


def check_layout(name: str, layout: Layout) -> None:
    """Raise LayoutError naming the first size picotron (or the job) would reject, and the fix."""
    if layout.model not in MODELS:
        raise LayoutError(f"{name}: unknown model '{layout.model}'; choose one of {', '.join(MODELS)}")
    for field in ("nodes", "gpus_per_node", "tp", "pp", "cp", "dp", "micro_batch", "global_batch", "steps"):
        value = getattr(layout, field)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise LayoutError(f"{name}: {field}={value!r} must be a positive integer")
    model, seq = MODELS[layout.model], layout.sequence_length
    product = layout.tp * layout.pp * layout.cp * layout.dp
    if product != layout.world_size:
        hint = layout.world_size // (layout.tp * layout.pp * layout.cp)
        fix = (
            f"set dp to {hint}"
            if hint and hint * layout.tp * layout.pp * layout.cp == layout.world_size
            else ("change tp, pp or cp so that their product divides the world size")
        )
        raise LayoutError(
            f"{name}: tp({layout.tp}) * pp({layout.pp}) * cp({layout.cp}) * dp({layout.dp}) = {product} != "
            f"world size {layout.world_size} ({layout.nodes} nodes x {layout.gpus_per_node} GPUs); {fix}"
        )
    if layout.gpus_per_node % layout.tp:
        raise LayoutError(
            f"{name}: tp({layout.tp}) does not divide the {layout.gpus_per_node} GPUs of a node; tensor "
            "parallelism must stay inside a node (NVLink): use a divisor of the GPUs per node"
        )
    for what, size in (
        ("attention heads", model.heads),
        ("key/value heads", model.kv_heads),
        ("hidden size", model.hidden),
        ("intermediate size", model.intermediate),
        ("vocabulary", model.vocab),
    ):
        if size % layout.tp:
            raise LayoutError(
                f"{name}: tp({layout.tp}) does not divide the {what} ({size}) of {layout.model}"
            )
    if layout.pp > model.layers:
        raise LayoutError(f"{name}: pp({layout.pp}) is more than the {model.layers} layers of {layout.model}")
    if seq % layout.cp:
        raise LayoutError(f"{name}: cp({layout.cp}) does not divide the sequence length {seq}")
    if layout.global_batch % (layout.micro_batch * layout.dp):
        raise LayoutError(
            f"{name}: global batch {layout.global_batch} is not micro batch ({layout.micro_batch}) x "
            f"dp ({layout.dp}) x a whole number of accumulation steps; use a multiple of "
            f"{layout.micro_batch * layout.dp}"
        )


def picotron_config(name: str, layout: Layout) -> dict:
    """The config file picotron's train.py reads (the sections and keys of its base_config.json)."""
    check_layout(name, layout)
    model = MODELS[layout.model]
    return {
        "distributed": {
            "tp_size": layout.tp,
            "cp_size": layout.cp,
            "pp_size": layout.pp,
            "dp_size": layout.dp,
            "pp_engine": "1f1b",
            "backend": "nccl",
            "use_cpu": False,
        },
        "model": {
            "name": model.hf_name,
            "num_hidden_layers": model.layers,
            "num_attention_heads": model.heads,
            "num_key_value_heads": model.kv_heads,
            "dtype": "bfloat16",
            "use_flash_attention": True,
            "use_fused_adam": True,
        },
        "training": {
            "seed": 42,
            "learning_rate": 3e-4,
            "total_train_steps": layout.steps,
            "seq_length": layout.sequence_length,
            "micro_batch_size": layout.micro_batch,
            "gradient_accumulation_steps": layout.accumulation,
            "num_samples": 400000,
            "max_tokens": None,
        },
        "dataset": {"name": "roneneldan/TinyStories", "subset_name": None, "num_workers": 0, "num_proc": 8},
        # Relative to the job's working directory: the run folder on shared storage.
        "checkpoint": {"save_dir": "checkpoints", "save_frequency": layout.steps, "load_path": ""},
        "logging": {"use_wandb": False, "project_name": "picotron", "run_name": name},
        # HF_TOKEN stays out of the file: train.py takes it from the environment.
        "environment": {
            "OMP_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "FLASH_ATTEN": "1",
            "HF_TOKEN": None,
        },
    }


def render(config: dict) -> str:
    return json.dumps(config, indent=4) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, so it is whole or absent."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def shipped_files() -> dict[Path, str]:
    return {
        CONFIGS / f"{name}.json": render(picotron_config(name, layout)) for name, layout in LAYOUTS.items()
    }


def write_all() -> int:
    files = shipped_files()  # every layout checked before anything is written
    CONFIGS.mkdir(exist_ok=True)
    for path, text in files.items():
        write_atomic(path, text)
    print(f"wrote {len(files)} configs in {CONFIGS.relative_to(FOLDER)}/")
    return 0


def check_all() -> int:
    files = shipped_files()
    stale = [path for path, text in files.items() if not path.is_file() or path.read_text() != text]
    extra = sorted(set(CONFIGS.glob("*.json")) - set(files))
    for path in stale:
        print(f"{path.relative_to(FOLDER)} differs from its layout; run 'python3 src/picotron_config.py'")
    for path in extra:
        print(f"{path.relative_to(FOLDER)} has no layout in src/picotron_config.py; remove it or add one")
    return 1 if stale or extra else 0


def positive(field: str, config: dict, section: str, key: str) -> int:
    value = config.get(section, {}).get(key) if isinstance(config.get(section), dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LayoutError(f"{field}: {section}.{key}={value!r} must be a positive integer")
    return value


def read_config(path: Path) -> dict:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LayoutError(f"{path}: no such config; the shipped ones are in configs/ (--list)") from None
    except IsADirectoryError:
        raise LayoutError(
            f"{path} is a folder; give a config file such as configs/smollm_360m-1node.json"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LayoutError(f"{path}: not a readable JSON config ({exc}); regenerate it") from None
    if not isinstance(config, dict):
        raise LayoutError(f"{path}: not a picotron config (a JSON object with a distributed section)")
    return config


def verify(path: Path, world_size: int) -> str:
    """One line describing ``path`` when its sizes fit ``world_size`` ranks; LayoutError otherwise."""
    config = read_config(path)
    sizes = {
        key: positive(str(path), config, "distributed", f"{key}_size") for key in ("tp", "pp", "cp", "dp")
    }
    micro = positive(str(path), config, "training", "micro_batch_size")
    accumulation = positive(str(path), config, "training", "gradient_accumulation_steps")
    seq = positive(str(path), config, "training", "seq_length")
    product = sizes["tp"] * sizes["pp"] * sizes["cp"] * sizes["dp"]
    if product != world_size:
        raise LayoutError(
            f"{path}: tp({sizes['tp']}) * pp({sizes['pp']}) * cp({sizes['cp']}) * dp({sizes['dp']}) = "
            f"{product}, "
            f"but the job has {world_size} ranks; submit it on nodes x GPUs per node = {product} GPUs "
            "or pick another config"
        )
    batch = micro * accumulation * sizes["dp"]
    return (
        f"{path.name}: tp {sizes['tp']} x pp {sizes['pp']} x cp {sizes['cp']} x dp {sizes['dp']} = {product} "
        f"ranks; global batch {micro} x {accumulation} x {sizes['dp']} = {batch} sequences of {seq} tokens"
    )


def nodes_for(path: Path, gpus_per_node: int) -> int:
    """How many nodes of ``gpus_per_node`` GPUs the config's tp x pp x cp x dp ranks fill."""
    config = read_config(path)
    ranks = 1
    for key in ("tp", "pp", "cp", "dp"):
        ranks *= positive(str(path), config, "distributed", f"{key}_size")
    if gpus_per_node < 1 or ranks % gpus_per_node:
        raise LayoutError(f"{path}: {ranks} ranks do not fill whole nodes of {gpus_per_node} GPUs")
    return ranks // gpus_per_node


def custom(args: argparse.Namespace) -> int:
    tp, pp, cp = args.tp, args.pp, args.cp
    world = args.nodes * args.gpus_per_node
    dp = args.dp if args.dp is not None else max(world // max(tp * pp * cp, 1), 1)
    layout = Layout(
        args.model,
        args.nodes,
        tp,
        pp,
        cp,
        dp,
        args.micro_batch,
        args.global_batch or 0,
        gpus_per_node=args.gpus_per_node,
        steps=args.steps,
        seq_len=args.seq_len,
    )
    if args.global_batch is None:
        layout = replace(layout, global_batch=args.micro_batch * dp)
    name = args.name or Path(args.out).stem
    if args.seq_len is not None and args.seq_len < 1:
        raise LayoutError(f"{name}: seq_len={args.seq_len} must be a positive integer")
    text = render(picotron_config(name, layout))
    out = Path(args.out)
    if not out.parent.is_dir():
        raise LayoutError(
            f"--out {out}: folder {out.parent} does not exist; create it or choose another path"
        )
    if out.is_dir():
        raise LayoutError(f"--out {out} is a folder; give a file name such as {out}/{name}.json")
    try:
        write_atomic(out, text)
    except OSError as exc:
        raise LayoutError(f"--out {out}: cannot write ({exc.strerror}); choose a writable path") from None
    print(verify(out, layout.world_size))
    return 0


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other bad input
        print(f"error: {message}; see --help", file=sys.stderr)
        sys.exit(2)


def positive_int(text: str) -> int:
    """Sizes, counts and steps: whole numbers of at least 1 (argparse names the flag when refused)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = Parser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check", action="store_true", help="report configs/ files that differ from their layout"
    )
    mode.add_argument("--list", action="store_true", help="print the shipped layouts")
    mode.add_argument("--verify", metavar="CONFIG", help="check a config against --world-size ranks")
    mode.add_argument("--nodes-for", metavar="CONFIG", help="print how many nodes the config needs")
    mode.add_argument("--model", choices=sorted(MODELS), help="make one config for this model (with --out)")
    parser.add_argument("--world-size", type=positive_int, help="ranks of the job (with --verify)")
    parser.add_argument("--out", help="file to write (with --model)")
    parser.add_argument("--name", help="run name (default: the file name of --out)")
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--gpus-per-node", type=int, default=8)
    for size in ("tp", "pp", "cp"):
        parser.add_argument(f"--{size}", type=int, default=1)
    parser.add_argument("--dp", type=int, help="default: the world size / (tp x pp x cp)")
    parser.add_argument("--micro-batch", type=int, default=1)
    parser.add_argument("--global-batch", type=int, help="sequences per step (default: micro batch x dp)")
    parser.add_argument("--seq-len", type=int, help="default: the model's context length")
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args(argv)
    if args.verify and args.world_size is None:
        parser.error("--verify needs --world-size N (nodes x GPUs per node)")
    if args.model and not args.out:
        parser.error("--model needs --out FILE.json")
    return args


def list_layouts() -> int:
    for name, layout in LAYOUTS.items():
        print(
            f"{name:22} {layout.nodes:2} x {layout.gpus_per_node} GPUs  tp {layout.tp} pp {layout.pp} "
            f"cp {layout.cp} dp {layout.dp:2}  batch {layout.micro_batch} x {layout.accumulation} x "
            f"{layout.dp} = {layout.global_batch} x {layout.sequence_length} tokens"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        if args.check:
            return check_all()
        if args.list:
            return list_layouts()
        if args.verify:
            print(verify(Path(args.verify), args.world_size))
        elif args.nodes_for:
            print(nodes_for(Path(args.nodes_for), args.gpus_per_node))
        elif args.model:
            return custom(args)
        else:
            return write_all()
    except LayoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
