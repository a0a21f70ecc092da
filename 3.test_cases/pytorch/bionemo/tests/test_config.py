"""The presets (configs/*.json) and src/bionemo_args.py: every argument is one BioNeMo's training script
takes (bionemo-framework v2.7, vendored in tests/upstream/), the required ones are there, the model sizes
are ESM-2's, and bad presets or job sizes end in one error line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import bionemo_args
import pytest

FOLDER = Path(__file__).resolve().parents[1]
UPSTREAM = json.loads((FOLDER / "tests" / "upstream" / "bionemo-framework-v2.7.json").read_text())
PRESETS = sorted(p.stem for p in (FOLDER / "configs").glob("*.json"))


def line(preset: str, nodes: int = 2, gpus: int = 8, *extra: str) -> list[str]:
    argv = ["args", "--preset", preset, "--nodes", str(nodes), "--gpus-per-node", str(gpus)]
    argv += ["--result-dir", "/fsx/results"] + (["--", *extra] if extra else [])
    options = bionemo_args.parser().parse_args(argv)
    options.extra = [a for a in options.extra if a != "--"]
    return bionemo_args.command(options)


def flags(arguments: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for index, arg in enumerate(arguments):
        if arg.startswith("--"):
            nxt = arguments[index + 1] if index + 1 < len(arguments) else None
            out[arg] = None if nxt is None or nxt.startswith("--") else nxt
    return out


def test_the_documented_presets():
    assert PRESETS == ["esm2-3b", "esm2-650m", "esm2-8m", "geneformer-10m"]


@pytest.mark.parametrize("preset", PRESETS)
def test_every_argument_is_one_the_script_takes_and_the_required_are_there(preset):
    config = bionemo_args.load_preset(preset)
    script = UPSTREAM["scripts"][config["entry_point"]]
    unknown = set(config["args"]) - set(script["flags"])
    assert not unknown, f"{preset}: {sorted(unknown)} are not flags of {config['entry_point']}"
    assert set(script["required"]) <= set(config["args"])
    for flag, value in config["args"].items():
        assert (value is None) == (flag in script["store_true"]), f"{preset}: {flag} switch or value"
    assert "--resume-if-exists" in config["args"]  # a requeued job or restarted pod resumes


@pytest.mark.parametrize(
    ("preset", "layers", "hidden", "heads", "ffn"),
    [("esm2-8m", 6, 320, 20, 1280), ("esm2-650m", 33, 1280, 20, 5120), ("esm2-3b", 36, 2560, 40, 10240)],
)
def test_esm2_sizes_are_the_published_ones(preset, layers, hidden, heads, ffn):
    got = flags(line(preset))
    size = ("--num-layers", "--hidden-size", "--num-attention-heads", "--ffn-hidden-size")
    assert tuple(int(got[k]) for k in size) == (layers, hidden, heads, ffn)
    assert hidden % heads == 0 and ffn == 4 * hidden


def test_data_paths_and_job_size():
    got = flags(line("esm2-650m", 4, 8, "--num-steps", "100"))
    esm2 = UPSTREAM["esm2_data"]["file_names"]
    paths = [
        got[k]
        for k in (
            "--train-cluster-path",
            "--train-database-path",
            "--valid-cluster-path",
            "--valid-database-path",
        )
    ]
    assert paths == [f"/fsx/bionemo/esm2-data/{name}" for name in esm2]
    assert (got["--num-nodes"], got["--num-gpus"]) == ("4", "8")
    assert line("esm2-650m", 4, 8, "--num-steps", "100")[-2:] == ["--num-steps", "100"]  # the user's wins
    assert flags(line("geneformer-10m"))["--data-dir"] == "/fsx/bionemo/geneformer-scdl"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(FOLDER / "src" / "bionemo_args.py"), *args],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--preset", "esm3"],
            "error: unknown preset 'esm3'; use one of: esm2-3b, esm2-650m, esm2-8m, geneformer-10m",
        ),
        (["--preset", "esm2-8m", "--nodes", "0"], "both must be >= 1"),
    ],
)
def test_bad_job_or_preset_is_one_error_line(args, message):
    done = run("args", *args, "--result-dir", "/r")
    assert done.returncode == 2 and not done.stdout
    assert len(done.stderr.splitlines()) == 1 and message in done.stderr


def test_model_parallel_must_divide_the_gpus(tmp_path):
    preset = json.loads((FOLDER / "configs" / "esm2-3b.json").read_text())
    (tmp_path / "tp3.json").write_text(json.dumps({**preset, "tensor_parallel": 3}))
    done = run("args", "--preset", str(tmp_path / "tp3.json"), "--result-dir", "/r")
    assert done.returncode == 2
    assert "1 nodes x 8 GPUs = 8 is not a multiple of tensor x pipeline parallel = 3" in done.stderr
    (tmp_path / "broken.json").write_text("{")
    done = run("args", "--preset", str(tmp_path / "broken.json"), "--result-dir", "/r")
    assert done.returncode == 2 and "is not valid JSON" in done.stderr
