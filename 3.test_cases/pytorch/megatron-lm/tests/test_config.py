"""Presets and validation, without torch: every real preset fits its layout on p5 nodes, overrides apply,
and bad input ends in one ``error:`` line with exit code 2 (checked through ``python src/train.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from megatron_gpt.config import PRESETS, ConfigError, check_cpu, check_world, config_from_args

FOLDER = Path(__file__).resolve().parents[1]
GPUS_PER_NODE = 8  # p5.48xlarge


@pytest.fixture
def data_prefix(tmp_path) -> str:
    for suffix in (".bin", ".idx"):
        (tmp_path / f"corpus{suffix}").write_bytes(b"")
    (tmp_path / "corpus.json").write_text('{"vocab_size": 512, "eod": 0}')
    return str(tmp_path / "corpus")


@pytest.mark.parametrize("name", [n for n in PRESETS if n != "tiny"])
def test_real_presets_fit_their_nodes(name, data_prefix):
    config = config_from_args(["--preset", name, "--data-prefix", data_prefix])
    world = config.nodes * GPUS_PER_NODE
    data_parallel = check_world(config, world)
    parallel = config.parallel
    assert (
        data_parallel * parallel.tensor_parallel * parallel.pipeline_parallel * parallel.context_parallel
        == world
    )
    assert parallel.tensor_parallel <= GPUS_PER_NODE  # TP stays inside a node (NVLink)
    assert config.model.position_embedding_type == "rope" and config.bf16
    with pytest.raises(ConfigError, match="on CPU: RoPE allocates on CUDA"):
        check_cpu(config)


def test_llama_sizes_are_the_published_ones():
    llama3_70b = PRESETS["llama3_1_70b"].model
    assert (llama3_70b.num_layers, llama3_70b.hidden_size, llama3_70b.num_query_groups) == (80, 8192, 8)
    assert llama3_70b.vocab_size == 128256 and llama3_70b.rotary_base == 500000 and llama3_70b.rope_scaling
    llama2_7b = PRESETS["llama2_7b"].model
    assert (llama2_7b.ffn_hidden_size, llama2_7b.num_query_groups, llama2_7b.seq_length) == (11008, 32, 4096)


def test_overrides_and_the_cpu_smoke_settings(data_prefix):
    config = config_from_args(
        ["--preset", "tiny", "--data-prefix", data_prefix, "--tensor-parallel", "2", "--max-steps", "7"]
    )
    assert config.parallel.tensor_parallel == 2 and config.max_steps == 7
    check_cpu(config)  # tiny is the CPU preset: nothing to change
    assert check_world(config, 2) == 1
    with pytest.raises(ConfigError, match="not a multiple of --micro-batch-size 4 x data parallel 4"):
        check_world(config_from_args(["--data-prefix", data_prefix]), 4)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "llama9"], "error: unknown preset 'llama9'; choose one of tiny, llama2_7b"),
        (["--max-steps", "ten"], "error: --max-steps 'ten' is not an int"),
        (["--lr", "nan"], "error: --lr 'nan' must be a finite number"),
        (["--tensor-parallel", "3"], "is not divisible by --tensor-parallel 3"),
        (
            ["--data-prefix", "nowhere/corpus"],
            "error: --data-prefix 'nowhere/corpus': nowhere/corpus.bin does not exist",
        ),
        ([], "error: --data-prefix is not set; write a dataset with src/prepare_data.py"),
        (["--warmup-steps", "40"], "error: --warmup-steps 40 must be less than --max-steps 30"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, data_prefix):
    if "--data-prefix" not in args and "is not set" not in message:
        args = [*args, "--data-prefix", data_prefix]
    result = subprocess.run(
        [sys.executable, "src/train.py", *args], cwd=FOLDER, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_damaged_dataset_description_is_an_error(data_prefix):
    from megatron_gpt.config import read_data_info  # noqa: PLC0415

    Path(data_prefix + ".json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"is not a dataset description written by src/prepare_data\.py"):
        read_data_info(data_prefix)
