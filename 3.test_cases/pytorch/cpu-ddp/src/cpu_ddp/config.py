"""Typed training configuration: named presets, CLI overrides, validation with errors that say the fix."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

from .faults import FaultSpecError, parse_fault


class ConfigError(ValueError):
    """A bad configuration value; the message names the value and how to fix it."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on. Written to ``<run_dir>/config.json`` and into every checkpoint."""

    preset: str = "digits"
    hidden_sizes: tuple[int, ...] = (128, 64)
    batch_size: int = 32  # per rank
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 1e-4
    max_steps: int = 400
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    seed: int = 1234
    test_fraction: float = 0.25
    run_dir: str = "runs/cpu-ddp"
    checkpoint_dir: str = ""  # empty: <run_dir>/checkpoints
    resume: str = "auto"  # auto (newest complete checkpoint) | never | a checkpoint folder
    min_accuracy: float = 0.0  # exit non-zero when held-out accuracy ends below this
    record_samples: bool = False  # write the sample indices each rank saw to <run_dir>/samples/
    log_every: int = 10  # one human line + one metrics record every N steps (and at the last step)
    step_delay_s: float = 0.0  # slow each step down, for resilience drills (requeue, kill)
    fault_kill_at_step: str = ""  # "RANK:STEP": SIGKILL that rank at that step on the first attempt
    fault_kill_in_checkpoint: int = 0  # SIGKILL rank 0 inside the save at this step, before the marker

    @property
    def checkpoint_path(self) -> Path:
        return Path(self.checkpoint_dir or Path(self.run_dir) / "checkpoints")

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["hidden_sizes"] = list(self.hidden_sizes)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


PRESETS: dict[str, dict] = {
    # Trains in a few seconds per rank; the integration tests use it.
    "tiny": {"hidden_sizes": (32,), "max_steps": 60, "checkpoint_every": 20, "lr": 0.1, "log_every": 1},
    # The default: reaches about 95% held-out accuracy on two CPU ranks in seconds.
    "digits": {},
    # A wider model for throughput comparisons across node counts.
    "wide": {"hidden_sizes": (1024, 1024, 512), "max_steps": 600, "checkpoint_every": 200},
}


def _field_parsers() -> dict[str, type]:
    return {f.name: f.type for f in dataclasses.fields(TrainConfig) if f.name != "preset"}


def build_parser() -> argparse.ArgumentParser:
    """CLI: ``--preset NAME`` then any field as ``--field-name VALUE``."""
    parser = argparse.ArgumentParser(description="DDP (gloo, CPU) on scikit-learn's digits.")
    parser.add_argument("--preset", default="digits", help=f"one of: {', '.join(PRESETS)}")
    for name, kind in _field_parsers().items():
        flag = "--" + name.replace("_", "-")
        default_help = getattr(TrainConfig, name, None)
        if kind == "bool":
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None)
        else:
            parser.add_argument(flag, dest=name, default=None, help=f"default from preset ({default_help})")
    return parser


def _convert(name: str, raw: str, kind: str):
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            value = float(raw)
        if kind == "tuple[int, ...]":
            return tuple(int(part) for part in str(raw).split(",") if part.strip())
    except ValueError:
        flag = "--" + name.replace("_", "-")
        raise ConfigError(
            f"{flag}={raw!r} is not a valid {kind.split('[', maxsplit=1)[0]}; pass e.g. {flag} "
            f"{getattr(TrainConfig, name, '')}"
        ) from None
    if kind == "float":
        if not math.isfinite(value):
            raise ConfigError(f"--{name.replace('_', '-')}={raw!r} must be a finite number")
        return value
    return raw


def config_from_args(argv: list[str] | None = None) -> TrainConfig:
    """Parse the CLI into a validated config: preset values first, then explicit overrides."""
    args = build_parser().parse_args(argv)
    if args.preset not in PRESETS:
        raise ConfigError(f"unknown preset {args.preset!r}; choose one of: {', '.join(PRESETS)}")
    values = dict(PRESETS[args.preset])
    for name, kind in _field_parsers().items():
        raw = getattr(args, name)
        if raw is not None:
            values[name] = raw if kind == "bool" else _convert(name, raw, kind)
    config = TrainConfig(preset=args.preset, **values)
    validate(config)
    return config


def validate(config: TrainConfig) -> None:
    """Raise ConfigError on the first value that cannot work, naming it and the fix."""
    positive_ints = ("batch_size", "max_steps", "checkpoint_every", "keep_checkpoints", "log_every")
    for name in positive_ints:
        value = getattr(config, name)
        if value <= 0:
            raise ConfigError(f"--{name.replace('_', '-')}={value} must be a positive integer")
    if not config.hidden_sizes or min(config.hidden_sizes) <= 0:
        raise ConfigError(
            f"--hidden-sizes={config.hidden_sizes} needs positive sizes, e.g. --hidden-sizes 128,64"
        )
    if config.lr <= 0:
        raise ConfigError(f"--lr={config.lr} must be > 0, e.g. --lr 0.05")
    if not 0.0 < config.test_fraction < 1.0:
        raise ConfigError(f"--test-fraction={config.test_fraction} must be between 0 and 1, e.g. 0.25")
    if not 0.0 <= config.min_accuracy <= 1.0:
        raise ConfigError(f"--min-accuracy={config.min_accuracy} is a fraction between 0 and 1, e.g. 0.9")
    if config.step_delay_s < 0:
        raise ConfigError(f"--step-delay-s={config.step_delay_s} must be >= 0")
    if not 0.0 <= config.momentum < 1.0:
        raise ConfigError(f"--momentum={config.momentum} must be in [0, 1), e.g. --momentum 0.9")
    if config.weight_decay < 0:
        raise ConfigError(f"--weight-decay={config.weight_decay} must be >= 0, e.g. --weight-decay 1e-4")
    if config.fault_kill_in_checkpoint < 0:
        raise ConfigError(
            f"--fault-kill-in-checkpoint={config.fault_kill_in_checkpoint} must be a checkpoint step "
            "(a multiple of --checkpoint-every), or 0 for none"
        )
    if config.fault_kill_at_step:
        try:
            parse_fault(config.fault_kill_at_step)  # the shared drill's own check and message
        except FaultSpecError as exc:
            raise ConfigError(str(exc)) from None
