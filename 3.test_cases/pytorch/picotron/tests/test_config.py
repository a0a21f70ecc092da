"""The shipped picotron configs: generated from their layouts, in picotron's own format at the pinned
commit, with sizes that divide the model and the world and batch arithmetic that holds; bad layouts and
bad files are refused with one line and nothing written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import picotron_config
import pytest
import yaml
from picotron_config import LAYOUTS, MODELS, Layout, LayoutError

FOLDER = Path(__file__).resolve().parents[1]
ROOT = FOLDER.parents[2]
UPSTREAM = json.loads((FOLDER / "tests" / "upstream" / "picotron-59714b1.json").read_text())
VERSIONS = yaml.safe_load((ROOT / "2.ami_and_containers" / "versions.yaml").read_text())
SCRIPT = FOLDER / "src" / "picotron_config.py"


def run(*args: str, cwd: Path = FOLDER) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def shipped() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((FOLDER / "configs").glob("*.json"))}


def test_configs_are_what_the_layouts_generate():
    assert run("--check").returncode == 0
    assert set(shipped()) == set(LAYOUTS)


def test_the_layouts_cover_llama_3_1_8b_and_70b_on_1_to_16_nodes():
    nodes = {model: sorted(lay.nodes for lay in LAYOUTS.values() if lay.model == model) for model in MODELS}
    assert nodes["llama3_1_8b"] == [1, 2, 4, 8, 16]
    assert nodes["llama3_1_70b"] == [4, 8, 16]  # 70B needs tp x pp = 32 H100s: picotron's DP replicates
    assert {lay.gpus_per_node for lay in LAYOUTS.values() if lay.model != "smollm_360m"} == {8}


def test_keys_are_those_of_the_pinned_commits_config_format():
    """Same sections and keys as template/base_config.json at the commit, and every key train.py indexes."""
    assert UPSTREAM["commit"] == VERSIONS["components"]["picotron"]
    for name, config in shipped().items():
        assert {section: sorted(keys) for section, keys in config.items()} == UPSTREAM["config_keys"], name
        for read in UPSTREAM["required_reads"]:
            section, key = read.split(".")
            assert key in config[section], f"{name}: train.py reads {read}"
        assert config["environment"]["HF_TOKEN"] is None, "the token comes from the environment, not a file"


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_sizes_divide_and_batch_arithmetic_holds(name):
    layout, config = LAYOUTS[name], shipped()[name]
    dist, train, model = config["distributed"], config["training"], MODELS[layout.model]
    sizes = [dist[f"{k}_size"] for k in ("tp", "pp", "cp", "dp")]
    assert sizes[0] * sizes[1] * sizes[2] * sizes[3] == layout.nodes * layout.gpus_per_node
    tp, pp, cp = sizes[:3]
    assert layout.gpus_per_node % tp == 0  # TP inside a node
    assert (
        config["model"]["num_attention_heads"] % tp == 0 and config["model"]["num_key_value_heads"] % tp == 0
    )
    assert model.vocab % tp == 0 and model.hidden % tp == 0 and model.intermediate % tp == 0
    assert pp <= config["model"]["num_hidden_layers"] and train["seq_length"] % cp == 0
    # picotron's MicroBatchDataLoader: global batch = micro batch x accumulation x dp
    global_batch = train["micro_batch_size"] * train["gradient_accumulation_steps"] * dist["dp_size"]
    assert global_batch == layout.global_batch
    if layout.model != "smollm_360m":
        assert global_batch * train["seq_length"] == 128 * 8192  # 1M tokens per step on every node count
    assert config["checkpoint"]["save_frequency"] <= train["total_train_steps"]  # a checkpoint is written
    assert config["logging"]["run_name"] == name and config["model"]["name"] == model.hf_name


def test_verify_accepts_the_job_that_fits_and_names_the_fix_otherwise():
    ok = run("--verify", "configs/llama3_1_70b-8nodes.json", "--world-size", "64")
    assert ok.returncode == 0 and "tp 8 x pp 4 x cp 1 x dp 2 = 64 ranks" in ok.stdout
    assert "global batch 1 x 64 x 2 = 128 sequences of 8192 tokens" in ok.stdout
    bad = run("--verify", "configs/llama3_1_70b-8nodes.json", "--world-size", "32")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith(
        "error: configs/llama3_1_70b-8nodes.json: tp(8) * pp(4) * cp(1) * dp(2) = 64,"
    )
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert run("--nodes-for", "configs/llama3_1_70b-8nodes.json").stdout.strip() == "8"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--nodes", "2", "--tp", "8", "--dp", "3"],
            "tp(8) * pp(1) * cp(1) * dp(3) = 24 != world size 16 (2 nodes x 8 GPUs); set dp to 2",
        ),
        (["--nodes", "2", "--tp", "3"], "change tp, pp or cp so that their product divides the world size"),
        (
            ["--nodes", "1", "--gpus-per-node", "6", "--tp", "6"],
            "tp(6) does not divide the attention heads (32)",
        ),
        (["--nodes", "2", "--tp", "16", "--dp", "1"], "tensor parallelism must stay inside a node"),
        (["--nodes", "1", "--tp", "8", "--global-batch", "100", "--micro-batch", "3"], "use a multiple of 3"),
        (["--nodes", "0"], "nodes=0 must be a positive integer"),
        (
            ["--gpus-per-node", "3", "--cp", "3", "--dp", "1", "--seq-len", "4096"],
            "cp(3) does not divide the sequence length 4096",
        ),
        (["--nodes", "two"], "argument --nodes: invalid int value: 'two'"),
    ],
)
def test_bad_layouts_are_refused_with_one_line_and_nothing_written(tmp_path, args, message):
    out = tmp_path / "custom.json"
    result = run("--model", "llama3_1_8b", *args, "--out", str(out))
    assert result.returncode == 2, result.stdout
    assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_custom_layout_is_written_and_verified(tmp_path):
    out = tmp_path / "mine.json"
    result = run(
        "--model", "llama3_1_8b", "--nodes", "4", "--tp", "8", "--global-batch", "256", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    config = json.loads(out.read_text())
    assert config["distributed"]["dp_size"] == 4 and config["training"]["gradient_accumulation_steps"] == 64
    assert config["logging"]["run_name"] == "mine"
    assert "tp 8 x pp 1 x cp 1 x dp 4 = 32 ranks; global batch 1 x 64 x 4 = 256" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such config"),
        ("{not json", "not a readable JSON config"),
        ("[1, 2]", "not a picotron config"),
        (b"\xff\xfe\x00", "not a readable JSON config"),
        ('{"distributed": {"tp_size": 0}}', "distributed.tp_size=0 must be a positive integer"),
        ('{"distributed": {"tp_size": 1.5}}', "distributed.tp_size=1.5 must be a positive integer"),
    ],
)
def test_bad_config_files_are_named(tmp_path, content, message):
    path = tmp_path / "config.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    result = run("--verify", str(path), "--world-size", "8")
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert run("--verify", str(tmp_path), "--world-size", "8").stderr.startswith(
        f"error: {tmp_path} is a folder"
    )


def test_unwritable_or_missing_output_folder_is_named(tmp_path):
    missing = run("--model", "smollm_360m", "--out", str(tmp_path / "nope" / "x.json"))
    assert missing.returncode == 2 and "does not exist; create it" in missing.stderr
    folder = run("--model", "smollm_360m", "--out", str(tmp_path))
    assert folder.returncode == 2 and "is a folder" in folder.stderr


def test_an_invalid_shipped_layout_stops_the_generator_before_writing(monkeypatch, tmp_path):
    monkeypatch.setattr(picotron_config, "CONFIGS", tmp_path)
    monkeypatch.setitem(LAYOUTS, "broken", Layout("llama3_1_8b", 2, 8, 1, 1, 1, 1, 8))
    with pytest.raises(LayoutError, match="world size 16"):
        picotron_config.write_all()
    assert list(tmp_path.iterdir()) == []


def test_dockerfile_pins_the_commit_not_a_branch():
    text = (FOLDER / "picotron.Dockerfile").read_text()
    commit = re.search(r"^ARG PICOTRON_VERSION=(\S+)$", text, re.MULTILINE)[1]
    assert re.fullmatch(r"[0-9a-f]{40}", commit) and commit == VERSIONS["components"]["picotron"]
    assert 'git fetch -q --depth 1 https://github.com/huggingface/picotron.git "${PICOTRON_VERSION}"' in text
    assert 'test "$(git rev-parse HEAD)" = "${PICOTRON_VERSION}"' in text
    assert not re.search(r"(--branch|-b)\s+main|checkout\s+main|@main", text)


def test_requirements_pin_what_the_commit_leaves_open():
    ours = [
        line for line in (FOLDER / "requirements.txt").read_text().splitlines() if line and line[0] != "#"
    ]
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==\S+", line) for line in ours)
    names = {line.split("==")[0].replace("_", "-").lower() for line in ours}
    upstream_open = {
        re.split(r"[\[=]", line)[0].replace("_", "-").lower()
        for line in UPSTREAM["requirements"]
        if "==" not in line
    }
    assert upstream_open <= names  # wandb, huggingface-hub
    upstream_pinned = {line.split("==")[0].lower() for line in UPSTREAM["requirements"] if "==" in line}
    assert not names & upstream_pinned  # the commit's own pins are not overridden
    assert "torch==2.1.0" in UPSTREAM["requirements"] and "flash-attn==2.5.0" in UPSTREAM["requirements"]
