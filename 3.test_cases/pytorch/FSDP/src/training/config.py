"""What a run depends on: typed, built from a preset plus CLI overrides, validated before anything starts."""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from .presets import PRESETS, ModelPreset


class ConfigError(ValueError):
    """A value that cannot work; the message names it and the fix."""


@dataclass(frozen=True)
class TrainConfig:
    """Training settings. Zero means "take it from the preset" for the model-shape fields."""

    preset: str = "tiny"
    # Model shape overrides (0: the preset's value).
    hidden_size: int = 0
    num_layers: int = 0
    num_heads: int = 0
    num_kv_heads: int = 0
    intermediate_size: int = 0
    seq_len: int = 0
    # Optimisation.
    micro_batch_size: int = 0
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
    # Data.
    data_path: str = (
        ""  # empty: the offline corpus shipped with Python; else a folder of .txt/.jsonl or a .jsonl
    )
    tokenizer: str = ""  # empty: UTF-8 bytes; else a local Hugging Face tokenizer folder (stage.py)
    val_every: int = 20
    val_batches: int = 4
    record_samples: bool = False
    # Outputs.
    run_dir: str = "runs/fsdp"
    checkpoint_dir: str = ""  # empty: <run_dir>/checkpoints
    checkpoint_every: int = 20
    keep_checkpoints: int = 3
    resume: str = "auto"  # auto | never | a step-* folder
    # Resilience drills.
    fault_kill_at_step: str = ""  # RANK:STEP, SIGKILL on the first attempt
    fault_kill_in_checkpoint: int = 0  # SIGKILL rank 0 inside the save at this step, before the marker
    step_delay_s: float = 0.0

    @property
    def model(self) -> ModelPreset:
        """The preset with this config's shape overrides applied."""
        preset = PRESETS[self.preset]
        overrides = {name: getattr(self, name) for name in _SHAPE_FIELDS if getattr(self, name)}
        if self.micro_batch_size:
            overrides["micro_batch_size"] = self.micro_batch_size
        return dataclasses.replace(preset, **overrides)

    @property
    def checkpoint_path(self) -> Path:
        return Path(self.checkpoint_dir or Path(self.run_dir) / "checkpoints")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps({**self.to_dict(), "resolved_model": dataclasses.asdict(self.model)}, indent=2)


_SHAPE_FIELDS = ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size", "seq_len")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="FSDP2 training of Llama/Mistral/Mixtral presets.")
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        if field.type == "bool":
            parser.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction, default=None)
        else:
            parser.add_argument(flag, dest=field.name, default=None, help=f"default {field.default!r}")
    return parser


def _convert(name: str, raw: str, kind: str):
    converters = {"int": int, "float": float, "str": str}
    try:
        return converters[kind](raw)
    except ValueError:
        flag = "--" + name.replace("_", "-")
        raise ConfigError(f"{flag}={raw!r} is not a valid {kind}") from None


def config_from_args(argv: list[str] | None = None) -> TrainConfig:
    """Parse the CLI into a validated TrainConfig."""
    args = _parser().parse_args(argv)
    values = {}
    for field in dataclasses.fields(TrainConfig):
        raw = getattr(args, field.name)
        if raw is not None:
            values[field.name] = raw if field.type == "bool" else _convert(field.name, raw, field.type)
    for name in (*_SHAPE_FIELDS, "micro_batch_size"):
        if name in values and values[name] <= 0:  # 0 in the dataclass means "the preset's value"
            raise ConfigError(f"--{name.replace('_', '-')}={values[name]} must be a positive integer")
    preset = values.get("preset", TrainConfig.preset)
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    config = TrainConfig(**values)
    validate(config)
    return config


def validate(config: TrainConfig) -> None:
    """Raise ConfigError naming the first value that cannot work, and the fix."""
    for name in ("grad_accum", "max_steps", "checkpoint_every", "keep_checkpoints", "val_batches"):
        if getattr(config, name) <= 0:
            raise ConfigError(
                f"--{name.replace('_', '-')}={getattr(config, name)} must be a positive integer"
            )
    for name in (*_SHAPE_FIELDS, "micro_batch_size", "warmup_steps", "val_every"):
        if getattr(config, name) < 0:
            raise ConfigError(f"--{name.replace('_', '-')}={getattr(config, name)} must be >= 0")
    model = config.model
    if model.micro_batch_size <= 0:
        raise ConfigError(f"--micro-batch-size={model.micro_batch_size} must be a positive integer")
    if model.hidden_size % model.num_heads:
        raise ConfigError(
            f"--num-heads={model.num_heads} does not divide --hidden-size={model.hidden_size}; "
            "pick a head count that divides the hidden size"
        )
    if model.num_heads % model.num_kv_heads:
        raise ConfigError(
            f"--num-kv-heads={model.num_kv_heads} does not divide --num-heads={model.num_heads}"
        )
    if model.seq_len > model.max_position_embeddings:
        raise ConfigError(
            f"--seq-len={model.seq_len} exceeds {config.preset}'s {model.max_position_embeddings} "
            f"positions; use --seq-len {model.max_position_embeddings} or less"
        )
    validate_run_options(config)


def validate_run_options(config: TrainConfig) -> None:
    """The non-shape settings: precision, schedule, data and tokenizer paths, fault drills."""
    if config.dtype not in {"auto", "fp32", "bf16"}:
        raise ConfigError(f"--dtype={config.dtype!r}; choose auto, fp32 or bf16")
    if config.lr <= 0 or not 0 <= config.min_lr_ratio <= 1:
        raise ConfigError(f"--lr={config.lr} must be > 0 and --min-lr-ratio={config.min_lr_ratio} in [0, 1]")
    if config.data_path and not Path(config.data_path).exists():
        raise ConfigError(
            f"--data-path {config.data_path} does not exist; give a folder of .txt files or a "
            ".jsonl file with a 'text' field, or leave it empty for the built-in corpus"
        )
    if config.tokenizer and not (Path(config.tokenizer) / "tokenizer.json").is_file():
        raise ConfigError(
            f"--tokenizer {config.tokenizer} has no tokenizer.json; stage one with "
            "'python src/stage.py --tokenizer <hub id> --out <folder>'"
        )
    if config.fault_kill_at_step:
        parse_fault(config.fault_kill_at_step)


def parse_fault(spec: str) -> tuple[int, int]:
    """``"RANK:STEP"`` -> (rank, step)."""
    try:
        rank, step = (int(part) for part in spec.split(":"))
    except ValueError:
        raise ConfigError(f"--fault-kill-at-step={spec!r} must be RANK:STEP, e.g. 1:30") from None
    return rank, step
