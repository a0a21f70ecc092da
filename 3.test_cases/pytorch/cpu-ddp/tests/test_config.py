"""Config: presets, overrides and validation errors that name the value and the fix (no processes)."""

import json

import pytest
from cpu_ddp.config import PRESETS, ConfigError, TrainConfig, config_from_args


def test_presets_resolve_and_overrides_win():
    config = config_from_args(["--preset", "tiny", "--batch-size", "8", "--hidden-sizes", "16,8"])
    assert config.preset == "tiny"
    assert config.max_steps == PRESETS["tiny"]["max_steps"]
    assert config.batch_size == 8
    assert config.hidden_sizes == (16, 8)
    assert config_from_args([]) == TrainConfig()


def test_checkpoint_dir_defaults_inside_run_dir():
    config = config_from_args(["--run-dir", "/tmp/x"])
    assert str(config.checkpoint_path) == "/tmp/x/checkpoints"
    assert str(config_from_args(["--checkpoint-dir", "/fsx/c"]).checkpoint_path) == "/fsx/c"


def test_resolved_config_round_trips_as_json():
    config = config_from_args(["--preset", "tiny", "--record-samples"])
    data = json.loads(config.to_json())
    assert data["record_samples"] is True
    assert data["hidden_sizes"] == [32]
    assert TrainConfig(**{**data, "hidden_sizes": tuple(data["hidden_sizes"])}) == config


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--preset", "nope"], "unknown preset 'nope'; choose one of: tiny, digits, wide"),
        (["--batch-size", "0"], "--batch-size=0 must be a positive integer"),
        (["--batch-size", "-3"], "--batch-size=-3 must be a positive integer"),
        (["--batch-size", "abc"], "--batch-size='abc' is not a valid int"),
        (["--max-steps", "0"], "--max-steps=0 must be a positive integer"),
        (["--lr", "0"], "--lr=0.0 must be > 0"),
        (["--hidden-sizes", "0,4"], "--hidden-sizes=(0, 4) needs positive sizes"),
        (["--test-fraction", "1.5"], "--test-fraction=1.5 must be between 0 and 1"),
        (["--min-accuracy", "97"], "--min-accuracy=97.0 is a fraction between 0 and 1"),
        (["--fault-kill-at-step", "x"], "--fault-kill-at-step='x' must be RANK:STEP"),
    ],
)
def test_bad_values_name_the_flag(argv, expected):
    with pytest.raises(ConfigError) as info:
        config_from_args(argv)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)
