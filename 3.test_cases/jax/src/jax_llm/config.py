"""Typed config, named presets and CLI overrides, validated before JAX is imported.

A preset is an architecture (every value that changes the computation) plus training knobs; flags
override both. ``config_from_args`` raises ``ConfigError`` with a message that names the bad value and
the fix; ``train.py`` turns it into one ``error:`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path


class ConfigError(ValueError):
    """A configuration value a user must change."""


@dataclass(frozen=True, kw_only=True)
class Architecture:
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    max_seq_len: int
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = False


@dataclass(frozen=True, kw_only=True)
class Training:
    seq_len: int
    global_batch: int  # sequences per step, summed over every device of every process
    max_steps: int
    lr: float = 3e-3
    warmup_steps: int = 10
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    log_every: int = 1
    checkpoint_every: int = 20
    keep_checkpoints: int = 2
    model_parallel: int = 1  # size of the mesh's "model" axis (tensor parallel); "data" gets the rest
    cpu_devices: int = 1  # CPU devices per process (XLA host platform); ignored on GPU
    dtype: str = "float32"  # compute dtype; parameters and optimizer state stay float32
    remat: bool = False  # recompute each block's activations in the backward pass


PRESETS: dict[str, tuple[Architecture, Training]] = {
    # Trains on this machine's CPUs in seconds: 2 processes x 2 CPU devices, a 2 x 2 data x model mesh.
    "tiny": (
        Architecture(
            vocab_size=256,
            hidden_size=64,
            num_layers=2,
            num_heads=4,
            num_kv_heads=2,
            intermediate_size=128,
            max_seq_len=256,
        ),
        Training(
            seq_len=64, global_batch=8, max_steps=20, checkpoint_every=10, model_parallel=2, cpu_devices=2
        ),
    ),
    # The CPU benchmark size: 1 process, no model parallelism.
    "small": (
        Architecture(
            vocab_size=256,
            hidden_size=384,
            num_layers=6,
            num_heads=6,
            num_kv_heads=2,
            intermediate_size=1024,
            max_seq_len=512,
        ),
        Training(seq_len=256, global_batch=8, max_steps=50, lr=1e-3, checkpoint_every=50),
    ),
    # Llama 3.2 1B shape (config.json of meta-llama/Llama-3.2-1B), one p5.48xlarge: 8-way data parallel.
    "llama3_2_1b": (
        Architecture(
            vocab_size=128256,
            hidden_size=2048,
            num_layers=16,
            num_heads=32,
            num_kv_heads=8,
            intermediate_size=8192,
            max_seq_len=8192,
            rope_theta=500000.0,
            tie_embeddings=True,
        ),
        Training(
            seq_len=8192,
            global_batch=16,
            max_steps=1000,
            lr=3e-4,
            warmup_steps=100,
            log_every=10,
            checkpoint_every=500,
            dtype="bfloat16",
            remat=True,
        ),
    ),
    # Llama 3.1 8B shape, 2 x p5.48xlarge: tensor parallel over a node's 8 GPUs, data parallel across nodes.
    "llama3_1_8b": (
        Architecture(
            vocab_size=128256,
            hidden_size=4096,
            num_layers=32,
            num_heads=32,
            num_kv_heads=8,
            intermediate_size=14336,
            max_seq_len=8192,
            rope_theta=500000.0,
        ),
        Training(
            seq_len=8192,
            global_batch=16,
            max_steps=1000,
            lr=3e-4,
            warmup_steps=100,
            log_every=10,
            checkpoint_every=500,
            model_parallel=8,
            dtype="bfloat16",
            remat=True,
        ),
    ),
}
DTYPES = ("float32", "bfloat16")


@dataclass(frozen=True, kw_only=True)
class Config:
    preset: str
    arch: Architecture
    training: Training
    run_dir: str = "runs/local"
    data_path: str | None = None
    seed: int = 0
    fault_kill_at_step: str | None = None  # "PROCESS:STEP": that process SIGKILLs itself (first attempt only)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @property
    def run_path(self) -> Path:
        return Path(self.run_dir)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are ConfigErrors: under a launcher only process 0 reports them (train.py)."""

    def error(self, message: str):
        hint = (
            " (a value that starts with '-' goes after '=': --lr=-inf)" if "expected one" in message else ""
        )
        raise ConfigError(f"{message}{hint}; see python src/train.py --help")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="train.py", description="Train a Llama-class model with JAX, Flax, Optax and Orbax."
    )
    parser.add_argument("--preset", default="tiny", help=f"one of {', '.join(PRESETS)} (default tiny)")
    parser.add_argument("--run-dir", default="runs/local", help="run folder: config, metrics, checkpoints")
    parser.add_argument(
        "--data-path", help="a UTF-8 .txt file (bytes as tokens) or a .bin of uint16 token ids"
    )
    parser.add_argument("--seed", default="0")
    parser.add_argument("--fault-kill-at-step", metavar="PROCESS:STEP", help="drill: SIGKILL PROCESS at STEP")
    for part in (Architecture, Training):
        for field in dataclasses.fields(part):
            parser.add_argument(_flag(field.name), dest=field.name, metavar=field.type.upper())
    return parser


def _convert(name: str, raw: str, kind: str):
    if kind == "bool":
        if raw.lower() not in {"true", "false", "1", "0"}:
            raise ConfigError(f"{_flag(name)}={raw!r} is not a boolean; use true or false")
        return raw.lower() in {"true", "1"}
    try:
        value = {"int": int, "float": float, "str": str}[kind](raw)
    except ValueError:
        raise ConfigError(
            f"{_flag(name)}={raw!r} is not {'an integer' if kind == 'int' else 'a number'}"
        ) from None
    if kind == "float" and not math.isfinite(value):
        raise ConfigError(f"{_flag(name)}={raw!r} is not a finite number")
    return value


def _overrides(part, args: argparse.Namespace) -> dict:
    return {
        f.name: _convert(f.name, getattr(args, f.name), f.type)
        for f in dataclasses.fields(part)
        if getattr(args, f.name) is not None
    }


def config_from_args(argv: list[str] | None = None) -> Config:
    """Parse and validate; raise ConfigError naming the bad value and the fix."""
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        raise ConfigError(f"unknown option {unknown[0]!r}; 'python src/train.py --help' lists the options")
    if args.preset not in PRESETS:
        raise ConfigError(f"unknown preset {args.preset!r}; use one of: {', '.join(PRESETS)}")
    arch, training = PRESETS[args.preset]
    config = Config(
        preset=args.preset,
        arch=dataclasses.replace(arch, **_overrides(Architecture, args)),
        training=dataclasses.replace(training, **_overrides(Training, args)),
        run_dir=args.run_dir,
        data_path=args.data_path,
        seed=_convert("seed", args.seed, "int"),
        fault_kill_at_step=args.fault_kill_at_step,
    )
    validate(config)
    return config


def validate(config: Config) -> None:
    """Every check that needs no device: shapes, counts, paths."""
    arch, training = config.arch, config.training
    positive = [
        f for f in (*dataclasses.fields(arch), *dataclasses.fields(training)) if f.type in {"int", "float"}
    ]
    for field in positive:
        value = getattr(arch if hasattr(arch, field.name) else training, field.name)
        if value <= 0 and field.name not in {"weight_decay", "warmup_steps"}:
            raise ConfigError(f"{_flag(field.name)}={value} must be positive")
        if value < 0:
            raise ConfigError(f"{_flag(field.name)}={value} must not be negative")
    if arch.hidden_size % arch.num_heads:
        raise ConfigError(
            f"--num-heads={arch.num_heads} does not divide --hidden-size={arch.hidden_size}; "
            "pick a head count that divides it"
        )
    if arch.num_heads % arch.num_kv_heads:
        raise ConfigError(f"--num-kv-heads={arch.num_kv_heads} does not divide --num-heads={arch.num_heads}")
    if training.seq_len > arch.max_seq_len:
        raise ConfigError(
            f"--seq-len={training.seq_len} exceeds {config.preset}'s {arch.max_seq_len} positions; "
            f"use --seq-len {arch.max_seq_len} or less"
        )
    tp = training.model_parallel
    for name, value in (
        ("num_heads", arch.num_heads),
        ("num_kv_heads", arch.num_kv_heads),
        ("intermediate_size", arch.intermediate_size),
    ):
        if value % tp:
            raise ConfigError(f"--model-parallel={tp} does not divide {_flag(name)}={value}; use a divisor")
    if training.dtype not in DTYPES:
        raise ConfigError(f"--dtype={training.dtype!r} is not one of {', '.join(DTYPES)}")
    if config.data_path is not None and not Path(config.data_path).is_file():
        raise ConfigError(
            f"--data-path={config.data_path!r} is not a file; give a .txt or a .bin of token ids"
        )
    if config.fault_kill_at_step is not None and not re.fullmatch(r"\d+:\d+", config.fault_kill_at_step):
        raise ConfigError(
            f"--fault-kill-at-step={config.fault_kill_at_step!r} is not PROCESS:STEP; e.g. 1:15"
        )
    run = config.run_path
    if run.exists() and not run.is_dir():
        raise ConfigError(f"--run-dir={config.run_dir!r} exists and is not a folder; choose another path")


def validate_world(config: Config, num_devices: int, num_processes: int) -> None:
    """The checks that need the device count: the mesh and the batch split."""
    training = config.training
    tp = training.model_parallel
    if num_devices % tp:
        raise ConfigError(
            f"--model-parallel={tp} does not divide the {num_devices} devices; use a divisor of {num_devices}"
        )
    data = num_devices // tp
    if training.global_batch % data or training.global_batch % num_processes:
        raise ConfigError(
            f"--global-batch={training.global_batch} does not split over {data} data-parallel groups and "
            f"{num_processes} processes; use a multiple of {math.lcm(data, num_processes)}"
        )
