"""Config: presets, overrides and one-line errors that name the value and the fix (no processes)."""

from __future__ import annotations

import json

import pytest
from training.config import ConfigError, TrainConfig, config_from_args


def test_defaults_and_overrides():
    config = config_from_args(
        ["--preset", "small", "--seq-len", "128", "--micro-batch-size", "2", "--compile"]
    )
    assert config.model.seq_len == 128 and config.model.micro_batch_size == 2 and config.compile
    assert config.model.hidden_size == 512
    assert config_from_args([]) == TrainConfig()
    resolved = json.loads(config.to_json())
    assert resolved["resolved_model"]["seq_len"] == 128


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--preset", "nope"], "unknown preset 'nope'; choose one of: tiny, small, llama2_7b"),
        (["--seq-len", "1000"], "--seq-len=1000 exceeds tiny's 512 positions; use --seq-len 512 or less"),
        (["--num-heads", "3"], "--num-heads=3 does not divide --hidden-size=64"),
        (["--micro-batch-size", "0"], "--micro-batch-size=0 must be a positive integer"),
        (["--max-steps", "0"], "--max-steps=0 must be a positive integer"),
        (["--data-path", "/no/such/corpus"], "--data-path /no/such/corpus does not exist"),
        (["--dtype", "fp8"], "--dtype='fp8'; choose auto, fp32 or bf16"),
        (["--lr", "abc"], "--lr='abc' is not a valid float"),
    ],
)
def test_bad_values_are_named(argv, expected):
    with pytest.raises(ConfigError) as info:
        config_from_args(argv)
    assert expected in str(info.value) and "\n" not in str(info.value)
