"""The shipped presets, parsed and validated by torchtitan's own ConfigManager (framework-marked: the
torchtitan nox session), the one-line errors of src/check_config.py, and the data step's bad input."""

from __future__ import annotations

import importlib.util
import json
import re
import sys

import pytest
from titan_paths import FOLDER, REGISTRY, preset_names, run_python

FLOAT8 = [name for name in preset_names() if "float8" in name]
# Published Llama 3.1 shapes (model cards): hidden, layers, heads, kv heads, vocab.
SHAPES = {"8B": (4096, 32, 32, 8, 128256), "70B": (8192, 80, 64, 8, 128256)}


def test_the_docstring_table_lists_exactly_the_presets():
    documented = re.findall(r"^\| (\w+)\s+\|", REGISTRY.read_text(), re.MULTILINE)
    assert [name for name in documented if name != "preset"] == preset_names()
    assert {"tiny", "llama3_8b_fsdp", "llama3_70b_fsdp_tp"} <= set(preset_names())


@pytest.fixture(scope="module")
def parse(request):
    """torchtitan's ConfigManager on this folder's presets, in this process (one import for all)."""
    sys.path.insert(0, str(FOLDER / "src"))
    check_config = _load("check_config", FOLDER / "src" / "check_config.py")
    yield check_config.parse
    sys.path.remove(str(FOLDER / "src"))


def _load(name: str, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.framework
@pytest.mark.parametrize("name", preset_names())
def test_every_preset_parses_and_validates(parse, name, monkeypatch):
    if name in FLOAT8:
        # Float8LinearConverter refuses to build below SM89 (H100) while the config is made; this machine
        # has no GPU, so the check is told it runs on one. Everything else is validated as on a cluster.
        from torchtitan.components.quantization import float8  # noqa: PLC0415

        monkeypatch.setattr(float8, "has_cuda_capability", lambda major, minor: True)
    config = parse(["--config", name])
    layer = config.model_spec.model.layers[0]
    assert config.parallelism.spmd_backend == "partial_dtensor"
    assert config.parallelism.data_parallel_shard_degree == -1
    assert (type(layer.feed_forward.w1).__name__ == "Config") and (
        ("Float8" in type(layer.feed_forward.w1).__qualname__) == (name in FLOAT8)
    )
    if name == "tiny":
        assert config.dataloader.dataset == "c4_test" and config.hf_assets_path == "assets/tiny"
        return
    flavor = config.model_spec.flavor
    model = config.model_spec.model
    attention = model.layers[0].attention
    shape = (model.dim, len(model.layers), attention.n_heads, attention.n_kv_heads, model.vocab_size)
    assert shape == SHAPES[flavor]
    assert config.checkpoint.enable and config.checkpoint.async_mode == "async"
    assert config.training.seq_len == 8192 and config.training.mixed_precision_param == "bfloat16"
    assert config.parallelism.tensor_parallel_degree == (8 if flavor == "70B" else 1)
    assert config.compile.enable == (name != "llama3_8b_fsdp")
    expected_ac = "FullAC.Config" if flavor == "70B" else "SelectiveAC.Config"
    assert type(config.activation_checkpoint).__qualname__ == expected_ac


@pytest.mark.framework
def test_command_line_overrides_reach_the_config(parse):
    config = parse(
        [
            "--config",
            "llama3_70b_fsdp_tp",
            "--parallelism.tensor_parallel_degree",
            "4",
            "--training.steps",
            "50",
        ]
    )
    assert (config.parallelism.tensor_parallel_degree, config.training.steps) == (4, 50)


@pytest.mark.framework
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--config", "nope"], "Available config functions: ['llama3_70b_fsdp_tp'"),
        (["--config", "tiny", "--training.steps", "many"], "Error parsing --training.steps"),
        (["--config", "tiny", "--parallelism.spmd_backend", "x"], "invalid choice 'x'"),
        (["--config", "llama3_8b_fsdp_float8"], "float8 is only supported on NVIDIA SM89 or later"),
    ],
)
def test_bad_configs_are_refused_with_the_reason(parse, args, expected):
    with pytest.raises(ValueError, match=re.escape(expected)) as caught:
        parse(args)
    assert "\n" not in str(caught.value)


@pytest.mark.framework
def test_a_mistyped_key_fails_with_one_line(parse, capsys):
    """check_config.py's own path (the README's `configs` walkthrough runs it as a command too)."""
    check_config = _load("check_config", FOLDER / "src" / "check_config.py")
    assert check_config.main(["--config", "llama3_8b_fsdp", "--training.stpes", "5"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "error: llama3_8b_fsdp: unknown option --training.stpes; did you mean --training.steps? "
        "(presets: src/aws_llama3/config_registry.py)"
    ]
    assert check_config.main(["--config", "llama3_70b_fsdp_tp", "--training.steps", "7"]) == 0
    assert capsys.readouterr().out.startswith(
        "ok: llama3_70b_fsdp_tp: llama3 70B: dp_shard=-1 tp=8 compile=True"
    )


def test_tiny_assets_are_written_whole_or_not_at_all(tmp_path):
    out = tmp_path / "assets" / "tiny"
    result = run_python("src/make_tiny_assets.py", "--out", str(out), "--vocab-size", "400")
    assert result.returncode == 0, result.stderr
    from tokenizers import Tokenizer  # noqa: PLC0415

    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    assert tokenizer.get_vocab_size() == 400
    assert json.loads((out / "tokenizer_config.json").read_text())["bos_token"] == "<|begin_of_text|>"  # noqa: S105
    first = json.loads((out / "c4_test" / "data.json").read_text().splitlines()[0])
    assert set(first) == {"text"} and len(first["text"]) > 100
    for args, message in [
        (["--vocab-size", "4096"], "error: --vocab-size 4096 is outside 300..2048"),
        (["--out", str(out / "tokenizer.json")], "is a file; name a folder"),
    ]:
        bad = run_python("src/make_tiny_assets.py", "--out", str(tmp_path / "other"), *args)
        assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1 and message in bad.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["assets"]  # nothing half-written


def test_metrics_conversion_refuses_a_folder_without_events(tmp_path):
    result = run_python("src/metrics_jsonl.py", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {tmp_path}/tb has no TensorBoard events; train with --metrics.enable_tensorboard "
        "and pass torchtitan's --dump_folder"
    )
    assert not (tmp_path / "metrics.jsonl").exists()
