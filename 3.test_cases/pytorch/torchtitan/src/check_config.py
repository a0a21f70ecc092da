"""Parse and validate a run config with torchtitan's own ConfigManager, before any job starts.

    python src/check_config.py --config llama3_8b_fsdp [--section.field value ...]

Prints one ``ok:`` line with what the job will run, or one ``error:`` line naming the bad input and
the fix (exit 2). ``--module`` defaults to this folder's ``aws_llama3``; any torchtitan module works.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import re
import sys
import warnings
from pathlib import Path

MODULE = "aws_llama3"
BOX = re.compile(r"[\u2500-\u257f]")  # the frame tyro draws around its messages


def _unrecognized(message: str) -> str | None:
    """tyro's 'Unrecognized options' box as one line, with its first suggestion."""
    lines = [BOX.sub("", line).strip() for line in message.splitlines()]
    lines = [line for line in lines if line]
    found = next((line for line in lines if line.startswith("Unrecognized options:")), None)
    if found is None:
        return None
    options = [word.rstrip(",") for word in found.split(":", 1)[1].split() if word.startswith("--")]
    hint = ""
    if "Perhaps you meant:" in lines:
        suggestion = lines[lines.index("Perhaps you meant:") + 1].split()[0]
        hint = f"; did you mean {suggestion}?"
    return f"unknown option {' '.join(options) or found}{hint}"


def _tyro_error(message: str) -> str:
    """The first informative lines of any other tyro message, joined into one."""
    lines = [BOX.sub("", line).strip() for line in message.splitlines()]
    lines = [line for line in lines if line.strip("-") and not line.startswith("For full helptext")]
    return "; ".join(lines[:3]) or "the command line did not parse"


def parse(args: list[str]):
    """``ConfigManager().parse_args`` with tyro's output captured; raises ValueError with one line."""
    from torchtitan.config import ConfigManager  # noqa: PLC0415 - after sys.path is set

    if not any(a == "--module" or a.startswith("--module=") for a in args):
        args = ["--module", MODULE, *args]
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured), contextlib.redirect_stdout(captured):
            return ConfigManager().parse_args(args)
    except SystemExit as exit_:
        if exit_.code in (0, None):  # --help
            print(captured.getvalue(), end="")
            raise
        text = captured.getvalue()
        raise ValueError(_unrecognized(text) or _tyro_error(text)) from None
    except Exception as exc:  # the config functions and ConfigManager raise plain exceptions
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{type(exc).__name__}: {first}") from None


# Values torchtitan takes as they are and fails on later (or trains to garbage with): checked here.
AT_LEAST_1 = (
    "training.steps",
    "training.local_batch_size",
    "training.seq_len",
    "parallelism.data_parallel_replicate_degree",
    "parallelism.tensor_parallel_degree",
    "parallelism.pipeline_parallel_degree",
    "parallelism.context_parallel_degree",
    "parallelism.expert_parallel_degree",
)
AUTO_OR_AT_LEAST_1 = ("training.global_batch_size", "parallelism.data_parallel_shard_degree")  # -1: derived
POSITIVE = ("training.max_norm",)
NOT_NEGATIVE = ("lr_scheduler.warmup_steps",)
FRACTIONS = ("lr_scheduler.decay_ratio", "lr_scheduler.min_lr_factor")


def _value(config, dotted: str):
    for name in dotted.split("."):
        config = getattr(config, name, None)
    return config


def _out_of_range(name: str, value) -> str | None:
    """Why ``value`` of option ``name`` is refused, or None."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    rules = (
        (not math.isfinite(value), "must be a finite number"),
        (name in AT_LEAST_1 and value < 1, "must be at least 1"),
        (name in AUTO_OR_AT_LEAST_1 and value != -1 and value < 1, "must be -1 (derived) or at least 1"),
        ((name in POSITIVE or name.endswith("_kwargs.lr")) and value <= 0, "must be more than 0"),
        (name in FRACTIONS and not 0 <= value <= 1, "must be between 0 and 1"),
        (name not in AUTO_OR_AT_LEAST_1 and value < 0, "must not be negative"),
    )
    return next((why for bad, why in rules if bad), None)


def check_ranges(config) -> None:
    """ValueError naming the first option whose value is out of range or not a finite number."""
    names = (*AT_LEAST_1, *AUTO_OR_AT_LEAST_1, *POSITIVE, *NOT_NEGATIVE, *FRACTIONS)
    values = [(name, _value(config, name)) for name in names]
    for index, group in enumerate(getattr(config.optimizer, "param_groups", None) or []):
        kwargs = getattr(group, "optimizer_kwargs", None) or {}
        prefix = f"optimizer.param_groups.{index}.optimizer_kwargs"
        values += [(f"{prefix}.{key}", kwargs.get(key)) for key in ("lr", "eps", "weight_decay")]
    for name, value in values:
        if (why := _out_of_range(name, value)) is not None:
            raise ValueError(f"--{name} {value!r} {why}")


def summary(config) -> str:
    model = config.model_spec
    p, t = config.parallelism, config.training
    converters = sorted({type(layer).__qualname__ for layer in _linears(model.model)} - {"Linear.Config"})
    return (
        f"{model.name} {model.flavor}: dp_shard={p.data_parallel_shard_degree} tp={p.tensor_parallel_degree} "
        f"compile={config.compile.enable} ac={type(config.activation_checkpoint).__qualname__} "
        f"linear={','.join(converters) or 'bf16'} checkpoint={config.checkpoint.async_mode} "
        f"seq_len={t.seq_len} local_batch_size={t.local_batch_size} steps={t.steps}"
    )


def _linears(model_config) -> list:
    layer = model_config.layers[0]
    return [layer.feed_forward.w1, layer.feed_forward.w2]


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    logging.disable(logging.WARNING)  # torchtitan warns about absent assets; the check is the config
    warnings.simplefilter("ignore")
    name = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--config"), None)
    try:
        config = parse(argv)
        check_ranges(config)
    except ValueError as exc:
        where = f"presets: src/{MODULE}/config_registry.py"
        print(f"error: {name or '--config'}: {exc} ({where})", file=sys.stderr)
        return 2
    print(f"ok: {name}: {summary(config)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
