"""What a run depends on: a preset plus CLI overrides, resolved once into typed values and validated
before anything starts (no torch import here, so a bad flag costs a fraction of a second)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from .faults import FaultSpecError, parse_fault
from .presets import PRESETS, Architecture, Launch, Training


class ConfigError(ValueError):
    """A value that cannot work; the message names it and the fix."""


# Architecture values a flag may override (the rest of an architecture is what makes the model the
# one named, so it is only changed in presets.py).
ARCH_FLAGS = ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size")
TRAINING_FLAGS = tuple(f.name for f in dataclasses.fields(Training))


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """The resolved run: the preset's three parts after overrides, and the run's own settings."""

    preset: str = "tiny"
    arch: Architecture = field(default_factory=lambda: PRESETS["tiny"].arch)
    launch: Launch = field(default_factory=lambda: PRESETS["tiny"].launch)
    training: Training = field(default_factory=lambda: PRESETS["tiny"].training)
    # Optimisation.
    grad_accum: int = 1
    max_steps: int = 60
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 10
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    seed: int = 42
    dtype: str = "auto"  # auto: bf16 mixed precision on GPU, fp32 on CPU | fp32 | bf16
    compile: bool = False
    activation_checkpointing: bool = False
    cpu_offload: bool = False
    dp_replicate: str = "auto"  # HSDP replica groups: auto (from the model size and the GPUs) or a count
    # Data.
    data_path: str = ""  # empty: the corpus shipped with Python; else a folder staged by src/stage.py
    tokenizer: str = ""  # empty: UTF-8 bytes (or the staged folder's); else a local tokenizer folder
    val_every: int = 20  # 0: no validation
    val_batches: int = 4
    record_samples: bool = False
    # Outputs.
    run_dir: str = "runs/fsdp"
    checkpoint_dir: str = ""  # empty: <run_dir>/checkpoints
    resume: str = "auto"  # auto | never | a step-* folder
    final_checkpoint: bool = True  # also save at --max-steps (benchmarks turn it off)
    # Resilience drills.
    fault_kill_at_step: str = ""  # RANK:STEP, SIGKILL on the first attempt
    fault_kill_in_checkpoint: int = 0  # SIGKILL rank 0 inside the save at this step, before the marker
    step_delay_s: float = 0.0

    @property
    def checkpoint_path(self) -> Path:
        return Path(self.checkpoint_dir or Path(self.run_dir) / "checkpoints")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


_RUN_FIELDS = {
    f.name: f for f in dataclasses.fields(TrainConfig) if f.name not in {"arch", "launch", "training"}
}
_KINDS = {"int": int, "float": float, "str": str, "bool": bool}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="FSDP2 training of Llama/Mistral/Mixtral presets.")
    for name, spec in _RUN_FIELDS.items():
        flag = "--" + name.replace("_", "-")
        if spec.type == "bool":
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None)
        else:
            parser.add_argument(flag, dest=name, default=None, help=f"default {spec.default!r}")
    for name in (*ARCH_FLAGS, *TRAINING_FLAGS):
        parser.add_argument(
            "--" + name.replace("_", "-"), dest=name, default=None, help="default: the preset's"
        )
    return parser


def _convert(name: str, raw, kind: str):
    if kind == "bool" or raw is None:
        return raw
    flag = "--" + name.replace("_", "-")
    try:
        value = _KINDS[kind](raw)
    except ValueError:
        raise ConfigError(f"{flag}={raw!r} is not a valid {kind}") from None
    if kind == "float" and not math.isfinite(value):
        raise ConfigError(f"{flag}={raw!r} must be a finite number")
    return value


def config_from_args(argv: list[str] | None = None) -> TrainConfig:
    """Parse the CLI into a validated TrainConfig: the preset's values, then the flags given."""
    args = vars(_parser().parse_args(argv))
    preset_name = args.pop("preset") or TrainConfig.preset
    if preset_name not in PRESETS:
        raise ConfigError(f"unknown preset {preset_name!r}; choose one of: {', '.join(PRESETS)}")
    preset = PRESETS[preset_name]
    arch_overrides = {n: _positive(n, _convert(n, args.pop(n), "int")) for n in ARCH_FLAGS}
    training_overrides = {n: _positive(n, _convert(n, args.pop(n), "int")) for n in TRAINING_FLAGS}
    run = {n: _convert(n, raw, _RUN_FIELDS[n].type) for n, raw in args.items() if raw is not None}
    config = TrainConfig(
        preset=preset_name,
        arch=dataclasses.replace(preset.arch, **{k: v for k, v in arch_overrides.items() if v is not None}),
        launch=preset.launch,
        training=dataclasses.replace(
            preset.training, **{k: v for k, v in training_overrides.items() if v is not None}
        ),
        **run,
    )
    validate(config)
    return config


def _positive(name: str, value: int | None) -> int | None:
    if value is not None and value <= 0:
        raise ConfigError(f"--{name.replace('_', '-')}={value} must be a positive integer")
    return value


def validate(config: TrainConfig) -> None:
    """Raise ConfigError naming the first value that cannot work, and the fix."""
    for name in ("grad_accum", "max_steps", "val_batches"):
        _positive(name, getattr(config, name))
    for name in ("warmup_steps", "val_every", "fault_kill_in_checkpoint"):
        if getattr(config, name) < 0:
            raise ConfigError(f"--{name.replace('_', '-')}={getattr(config, name)} must be >= 0")
    validate_architecture(config.preset, config.arch, config.training)
    validate_run_options(config)


def validate_architecture(preset: str, arch: Architecture, training: Training) -> None:
    if arch.hidden_size % arch.num_heads:
        raise ConfigError(
            f"--num-heads={arch.num_heads} does not divide --hidden-size={arch.hidden_size}; "
            "pick a head count that divides the hidden size"
        )
    if arch.num_heads % arch.num_kv_heads:
        raise ConfigError(f"--num-kv-heads={arch.num_kv_heads} does not divide --num-heads={arch.num_heads}")
    if training.seq_len > arch.max_position_embeddings:
        raise ConfigError(
            f"--seq-len={training.seq_len} exceeds {preset}'s {arch.max_position_embeddings} "
            f"positions; use --seq-len {arch.max_position_embeddings} or less"
        )


def validate_run_options(config: TrainConfig) -> None:
    """The non-shape settings: optimiser, precision, layout, data and tokenizer paths, fault drills."""
    if config.dtype not in {"auto", "fp32", "bf16"}:
        raise ConfigError(f"--dtype={config.dtype!r}; choose auto, fp32 or bf16")
    if config.lr <= 0 or not 0 <= config.min_lr_ratio <= 1:
        raise ConfigError(f"--lr={config.lr} must be > 0 and --min-lr-ratio={config.min_lr_ratio} in [0, 1]")
    if config.grad_clip <= 0:
        raise ConfigError(f"--grad-clip={config.grad_clip} must be > 0 (the maximum gradient norm), e.g. 1.0")
    for name in ("weight_decay", "step_delay_s"):
        if getattr(config, name) < 0:
            raise ConfigError(f"--{name.replace('_', '-')}={getattr(config, name)} must be >= 0")
    if config.dp_replicate != "auto" and not (config.dp_replicate.isdigit() and int(config.dp_replicate) > 0):
        raise ConfigError(
            f"--dp-replicate={config.dp_replicate!r} must be auto or a positive integer, e.g. 2"
        )
    if config.data_path and not Path(config.data_path).exists():
        raise ConfigError(
            f"--data-path {config.data_path} does not exist; give a folder staged by "
            "'python src/stage.py --input <text files> --out <folder>', or leave it empty for the "
            "built-in corpus"
        )
    if config.tokenizer and not (Path(config.tokenizer) / "tokenizer.json").is_file():
        raise ConfigError(
            f"--tokenizer {config.tokenizer} has no tokenizer.json; stage one with "
            "'python src/stage.py --tokenizer <hub id> --out <folder>'"
        )
    if config.fault_kill_at_step:
        try:
            parse_fault(config.fault_kill_at_step)
        except FaultSpecError as exc:
            raise ConfigError(str(exc)) from None
