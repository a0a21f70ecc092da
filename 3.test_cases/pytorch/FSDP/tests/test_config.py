"""Config: presets, overrides and one-line errors that name the value and the fix (no processes)."""

from __future__ import annotations

import json

import pytest
from fsdp.config import ConfigError, TrainConfig, config_from_args
from fsdp.presets import PRESETS


def test_defaults_and_overrides_are_resolved_once():
    config = config_from_args(
        ["--preset", "small", "--seq-len", "128", "--micro-batch-size", "2", "--compile"]
    )
    assert config.training.seq_len == 128 and config.training.micro_batch_size == 2 and config.compile
    assert (
        config.arch == PRESETS["small"].arch
        and config.training.log_every == PRESETS["small"].training.log_every
    )
    assert config_from_args([]) == TrainConfig()
    resolved = json.loads(config.to_json())
    assert resolved["training"]["seq_len"] == 128 and resolved["arch"]["hidden_size"] == 512
    layers = config_from_args(["--preset", "llama3_1_8b", "--num-layers", "4"])
    assert layers.arch.num_layers == 4 and layers.arch.rope_theta == 500000.0


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--preset", "nope"], "unknown preset 'nope'; choose one of: tiny, small, llama2_7b"),
        (["--seq-len", "1000"], "--seq-len=1000 exceeds tiny's 512 positions; use --seq-len 512 or less"),
        (["--num-heads", "3"], "--num-heads=3 does not divide --hidden-size=64"),
        (["--micro-batch-size", "0"], "--micro-batch-size=0 must be a positive integer"),
        (["--log-every", "-1"], "--log-every=-1 must be a positive integer"),
        (["--max-steps", "0"], "--max-steps=0 must be a positive integer"),
        (["--data-path", "/no/such/corpus"], "--data-path /no/such/corpus does not exist"),
        (["--dtype", "fp8"], "--dtype='fp8'; choose auto, fp32 or bf16"),
        (["--lr", "abc"], "--lr='abc' is not a valid float"),
        (["--lr", "nan"], "--lr='nan' must be a finite number"),
        (["--lr", "inf"], "--lr='inf' must be a finite number"),
        (["--grad-clip", "-1"], "--grad-clip=-1.0 must be > 0"),
        (["--weight-decay", "-1"], "--weight-decay=-1.0 must be >= 0"),
        (["--step-delay-s", "-1"], "--step-delay-s=-1.0 must be >= 0"),
        (["--dp-replicate", "0"], "--dp-replicate='0' must be auto or a positive integer"),
        (["--fault-kill-at-step", "x"], "--fault-kill-at-step='x' must be RANK:STEP"),
    ],
)
def test_bad_values_are_named(argv, expected):
    with pytest.raises(ConfigError) as info:
        config_from_args(argv)
    assert expected in str(info.value) and "\n" not in str(info.value)
