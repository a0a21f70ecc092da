"""The presets (configs/*.json) and src/nxd_args.py: every argument is one the example script accepts
(neuronx-distributed v2.28.0, vendored in tests/upstream/), the parallel layout fits the instances, and
bad presets or job sizes end in one error line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nxd_args
import pytest

FOLDER = Path(__file__).resolve().parents[1]
UPSTREAM = json.loads((FOLDER / "tests" / "upstream" / "neuronx-distributed-v2.28.0.json").read_text())
PRESETS = sorted(p.stem for p in (FOLDER / "configs").glob("*.json"))
EXAMPLES = "/fsx/neuronx-distributed"


def line(preset: str, nodes: int, nproc: int = 32, *extra: str, step: str = "train") -> list[str]:
    options = nxd_args.parser().parse_args(
        ["args", "--preset", preset, "--nodes", str(nodes), "--nproc-per-node", str(nproc)]
        + ["--data-dir", "/fsx/data", "--run-dir", "/fsx/run", "--examples-dir", EXAMPLES, "--step", step]
        + (["--", *extra] if extra else [])
    )
    options.extra = [a for a in options.extra if a != "--"]
    return nxd_args.command(options)


def flags(arguments: list[str]) -> dict[str, str | None]:
    """--flag value pairs (None for a switch) of an argument list."""
    out: dict[str, str | None] = {}
    for index, arg in enumerate(arguments):
        if arg.startswith("--"):
            nxt = arguments[index + 1] if index + 1 < len(arguments) else None
            out[arg] = None if nxt is None or nxt.startswith("--") else nxt
    return out


def test_there_are_the_documented_presets():
    assert PRESETS == ["llama3-70b", "llama3-8b"]


@pytest.mark.parametrize("preset", PRESETS)
def test_every_argument_is_one_the_example_script_takes(preset):
    config = nxd_args.load_preset(preset)
    script = UPSTREAM["scripts"][config["entry_point"]]
    for name in ("args", "compile_args"):
        unknown = set(config[name]) - set(script["flags"])
        assert not unknown, f"{preset} {name}: {sorted(unknown)} are not flags of {config['entry_point']}"
    for flag, value in config["args"].items():
        assert (value is None) == (flag in script["store_true"]), f"{preset}: {flag} switch or value"


@pytest.mark.parametrize("preset", PRESETS)
def test_model_config_is_the_examples_and_tensor_parallel_fits_its_heads(preset):
    config = nxd_args.load_preset(preset)
    arguments = flags(line(preset, nodes=config["tensor_parallel"] * config["pipeline_parallel"] // 32)[1:])
    folder = arguments.get("--model_path") or arguments["--training_config"]
    model = UPSTREAM["model_configs"][folder.removeprefix(EXAMPLES + "/")]
    tp, replicator = config["tensor_parallel"], int(arguments["--kv_replicator"])
    assert model["num_attention_heads"] % tp == 0
    assert model["num_key_value_heads"] * replicator == tp  # KV heads replicated up to the TP degree
    assert model["max_position_embeddings"] >= int(arguments["--seq_len"]) == config["seq_len"]
    assert model["num_hidden_layers"] % config["pipeline_parallel"] == 0


@pytest.mark.parametrize(
    ("preset", "nodes", "nproc", "expected"),
    [
        ("llama3-8b", 1, 32, {"--grad_accum_usteps": "1024"}),  # one trn1: DP 1
        ("llama3-8b", 4, 32, {"--grad_accum_usteps": "256"}),  # DP 4
        ("llama3-8b", 16, 32, {"--grad_accum_usteps": "64"}),
        ("llama3-8b", 2, 64, {"--grad_accum_usteps": "256"}),  # trn2.48xlarge at LNC=2: 64 ranks a node
        ("llama3-70b", 8, 32, {"--train_batch_size": "1024", "--num_microbatches": "1024"}),  # one replica
        ("llama3-70b", 32, 32, {"--train_batch_size": "256", "--num_microbatches": "256"}),
    ],
)
def test_batch_split_follows_the_job_size(preset, nodes, nproc, expected):
    arguments = flags(line(preset, nodes, nproc)[1:])
    assert {k: arguments[k] for k in expected} == expected


def test_entry_point_compile_step_and_user_arguments():
    train = line("llama3-8b", 4, 32, "--max_steps", "50")
    assert (
        train[0]
        == f"{EXAMPLES}/examples/training/llama/tp_zero1_llama_hf_pretrain/tp_zero1_llama_hf_pretrain.py"
    )
    assert train[-2:] == ["--max_steps", "50"]  # after the preset's: argparse keeps the last one
    assert flags(train)["--loading_step"] == "latest_if_exists"  # a requeued job resumes
    compile_step = flags(line("llama3-8b", 4, step="compile"))
    assert compile_step["--steps_this_run"] == "2" and compile_step["--checkpoint_freq"] == "-1"
    assert flags(line("llama3-70b", 8, step="compile"))["--max_steps"] == "10"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(FOLDER / "src" / "nxd_args.py"), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_env_lines_are_the_presets():
    done = run("env", "--preset", "llama3-70b")
    assert done.returncode == 0
    assert "XLA_DOWNCAST_BF16=1" in done.stdout.splitlines()


BASE = ["--data-dir", "/d", "--run-dir", "/r"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["args", "--preset", "llama3-9b", *BASE],
            "error: unknown preset 'llama3-9b'; use one of: llama3-70b, llama3-8b",
        ),
        (
            ["args", "--preset", "llama3-70b", "--nodes", "4", *BASE],
            "is not a multiple of tensor_parallel 32 x pipeline_parallel 8",
        ),
        (["args", "--preset", "llama3-8b", "--nodes", "0", *BASE], "both must be >= 1"),
        (["args", "--preset", "llama3-8b", "--nodes", "3", *BASE], "global_batch_size 1024 is not divisible"),
    ],
)
def test_bad_job_or_preset_is_one_error_line(args, message):
    done = run(*args)
    assert done.returncode == 2 and not done.stdout
    assert len(done.stderr.splitlines()) == 1 and message in done.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"entry_point": "x.py"}', "lacks tensor_parallel"),
        (
            '{"entry_point": "x.py", "tensor_parallel": 0, "pipeline_parallel": 1, "micro_batch_size": 1, '
            '"global_batch_size": 8}',
            "tensor_parallel must be a whole number >= 1",
        ),
    ],
)
def test_a_broken_preset_file_is_named(tmp_path, text, message):
    preset = tmp_path / "mine.json"
    preset.write_text(text)
    done = run("args", "--preset", str(preset), *BASE)
    assert done.returncode == 2 and message in done.stderr and str(preset) in done.stderr
