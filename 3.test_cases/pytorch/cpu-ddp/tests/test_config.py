"""Config: presets, overrides and validation errors that name the value and the fix."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cpu_ddp.config import PRESETS, ConfigError, TrainConfig, config_from_args

TEST_CASE_DIR = Path(__file__).resolve().parents[1]


def test_presets_resolve_and_overrides_win():
    config = config_from_args(["--preset", "tiny", "--batch-size", "8", "--hidden-sizes", "16,8"])
    assert config.preset == "tiny"
    assert config.max_steps == PRESETS["tiny"]["max_steps"]
    assert config.batch_size == 8
    assert config.hidden_sizes == (16, 8)
    assert config_from_args([]) == TrainConfig()


def test_log_every_comes_from_the_preset_unless_given():
    assert config_from_args(["--preset", "tiny"]).log_every == 1
    assert config_from_args(["--preset", "digits"]).log_every == 10
    assert config_from_args(["--preset", "wide"]).log_every == 10
    assert config_from_args(["--preset", "tiny", "--log-every", "7"]).log_every == 7


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
        (["--log-every", "0"], "--log-every=0 must be a positive integer"),
        (["--lr", "0"], "--lr=0.0 must be > 0"),
        (["--hidden-sizes", "0,4"], "--hidden-sizes=(0, 4) needs positive sizes"),
        (["--test-fraction", "1.5"], "--test-fraction=1.5 must be between 0 and 1"),
        (["--min-accuracy", "97"], "--min-accuracy=97.0 is a fraction between 0 and 1"),
        (["--fault-kill-in-checkpoint", "-1"], "--fault-kill-in-checkpoint=-1 must be a checkpoint step"),
        # The drill's form is checked by the shared faults module; its message arrives as a ConfigError.
        (["--fault-kill-at-step", "x"], "--fault-kill-at-step='x' must be RANK:STEP, e.g. 1:30"),
        (["--fault-kill-at-step", "1:0"], "--fault-kill-at-step='1:0' needs a rank >= 0 and a step >= 1"),
    ],
)
def test_bad_values_name_the_flag(argv, expected):
    with pytest.raises(ConfigError) as info:
        config_from_args(argv)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--batch-size", "0"], "error: --batch-size=0 must be a positive integer"),
        (["--fault-kill-at-step", "x"], "error: --fault-kill-at-step='x' must be RANK:STEP, e.g. 1:30"),
    ],
)
def test_bad_value_is_reported_before_torch_is_imported(argv, message):
    """The entry point validates first: a typo costs no torch import (seconds on a busy login node)."""
    probe = (
        "import sys; sys.path.insert(0, 'src'); import train; "
        f"code = train.main({argv!r}); print(code, 'torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=TEST_CASE_DIR, capture_output=True, text=True, check=False
    )
    assert result.stdout.split() == ["2", "False"], result.stderr[-2000:]
    assert result.stderr.strip() == message
