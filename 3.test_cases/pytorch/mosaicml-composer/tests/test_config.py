"""The llm-foundry YAMLs: they load, use only the keys llm-foundry 0.22.0's TrainConfig accepts (recorded
from the wheel), every ${variables.*} resolves, and the batch arithmetic holds on 1, 2, 4 and 8 nodes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

FOLDER = Path(__file__).resolve().parents[1]
ROOT = FOLDER.parents[2]
UPSTREAM = json.loads((FOLDER / "tests" / "upstream" / "llm-foundry-0.22.0.json").read_text())
VERSIONS = yaml.safe_load((ROOT / "2.ami_and_containers" / "versions.yaml").read_text())
YAMLS = sorted((FOLDER / "yamls").glob("*.yaml"))
GPUS_PER_NODE = 8
REFERENCE = re.compile(r"\$\{variables\.(\w+)\}")


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def strings(node) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in strings(value)]
    return [node] if isinstance(node, str) else []


def test_recorded_keys_are_from_the_pinned_versions():
    assert UPSTREAM["version"] == VERSIONS["python"]["llm-foundry"]
    assert UPSTREAM["composer_launcher"]["version"] == VERSIONS["python"]["mosaicml"]
    assert {y.stem for y in YAMLS} == {"mpt-125m", "mpt-1b", "mpt-7b"}


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.stem)
def test_keys_are_train_config_fields_and_variables_resolve(path):
    config = load(path)
    fields = set(UPSTREAM["train_config_fields"])
    assert set(config) <= fields, sorted(set(config) - fields)  # llm-foundry rejects unknown top-level keys
    required = set(UPSTREAM["mandatory"]) - set(UPSTREAM["derived"])
    assert required <= set(config), sorted(required - set(config))
    assert {"global_train_batch_size", "device_train_microbatch_size"} <= set(config)
    used = {name for text in strings(config) for name in REFERENCE.findall(text)}
    assert used <= set(config["variables"]), sorted(used - set(config["variables"]))
    assert config["autoresume"] is True and "{run_name}" in config["variables"]["save_folder"]


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.stem)
@pytest.mark.parametrize("nodes", [1, 2, 4, 8])
def test_batch_arithmetic_holds(path, nodes):
    """global batch = micro batch x accumulation x world size, with a whole accumulation (llm-foundry's
    calculate_batch_size_info refuses a global batch the world size does not divide)."""
    config = load(path)
    world = nodes * GPUS_PER_NODE
    global_batch, micro = config["global_train_batch_size"], config["device_train_microbatch_size"]
    assert global_batch % world == 0
    device_batch = global_batch // world
    assert device_batch % micro == 0 and device_batch >= micro
    accumulation = device_batch // micro
    assert global_batch == micro * accumulation * world
    comment = f"{micro} x {accumulation} x {world}"
    assert comment in path.read_text(), f"the batch comment of {path.name} lacks '{comment}'"


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.stem)
def test_model_fits_flash_attention_and_the_sequence(path):
    config = load(path)
    model = config["model"]
    assert model["name"] == "mpt_causal_lm" and model["attn_config"]["attn_impl"] == "flash"
    head_dim, rest = divmod(model["d_model"], model["n_heads"])
    assert rest == 0 and head_dim % 8 == 0 and head_dim <= 256
    assert config["variables"]["max_seq_len"] == 2048
    assert model["vocab_size"] % 64 == 0
    for loader in ("train_loader", "eval_loader"):
        assert config[loader]["dataset"]["local"] == "${variables.data_local}"
    assert config["precision"] == "amp_bf16" and config["fsdp_config"]["sharding_strategy"] == "FULL_SHARD"
