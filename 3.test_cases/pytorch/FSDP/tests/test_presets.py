"""Every preset is the model it is named after: each value that changes the computation is compared with
the official ``config.json`` (recorded below with its source), through the transformers config the
trainer builds, so a library default (MistralConfig's 4096-token sliding window) cannot slip in."""

from __future__ import annotations

import pytest
from fsdp.model import build_meta_model, hf_config
from fsdp.presets import PRESETS, checkpoint_gib, hsdp_replicas

LLAMA3_SCALING = {"rope_type": "llama3", "low_freq_factor": 1.0, "high_freq_factor": 4.0}
LLAMA3_SCALING["original_max_position_embeddings"] = 8192


def llama2(hidden, intermediate, heads, layers, kv_heads):
    return {
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "num_key_value_heads": kv_heads,
        "rms_norm_eps": 1e-05,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
        "vocab_size": 32000,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": False,
    }


def llama3(hidden, intermediate, heads, layers, head_dim, factor, tied):
    return {
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "num_key_value_heads": 8,
        "head_dim": head_dim,
        "rms_norm_eps": 1e-05,
        "rope_parameters": {"rope_theta": 500000.0, "factor": factor, **LLAMA3_SCALING},
        "vocab_size": 128256,
        "max_position_embeddings": 131072,
        "tie_word_embeddings": tied,
    }


MISTRAL_7B = {
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "rms_norm_eps": 1e-05,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
    "max_position_embeddings": 32768,
    "sliding_window": None,
    "tie_word_embeddings": False,
}

# The official config.json values (huggingface.co/<repo>/blob/main/config.json; rope_theta and
# rope_scaling written here as transformers 5's rope_parameters).
OFFICIAL = {
    # meta-llama/Llama-2-7b-hf, -13b-hf, -70b-hf
    "llama2_7b": llama2(4096, 11008, 32, 32, 32),
    "llama2_13b": llama2(5120, 13824, 40, 40, 40),
    "llama2_70b": llama2(8192, 28672, 64, 80, 8),
    # meta-llama/Llama-3.1-8B, Llama-3.1-70B, Llama-3.2-1B, Llama-3.2-3B
    "llama3_1_8b": llama3(4096, 14336, 32, 32, 128, 8.0, tied=False),
    "llama3_1_70b": llama3(8192, 28672, 64, 80, 128, 8.0, tied=False),
    "llama3_2_1b": llama3(2048, 8192, 32, 16, 64, 32.0, tied=True),
    "llama3_2_3b": llama3(3072, 8192, 24, 28, 128, 32.0, tied=True),
    # mistralai/Mathstral-7B-v0.1: full attention ("sliding_window": null), 32768-token vocabulary
    "mathstral_7b": {**MISTRAL_7B, "vocab_size": 32768},
    # mistralai/Mixtral-8x7B-v0.1
    "mixtral_8x7b": {**MISTRAL_7B, "vocab_size": 32000, "num_local_experts": 8, "num_experts_per_tok": 2},
}
CONFIG_CLASS = {"llama": "LlamaConfig", "mistral": "MistralConfig", "mixtral": "MixtralConfig"}
FAMILY = {"mathstral_7b": "mistral", "mixtral_8x7b": "mixtral"}


def test_every_gpu_preset_is_recorded():
    assert set(OFFICIAL) == set(PRESETS) - {"tiny", "small"}


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_preset_architecture_equals_the_official_config(name):
    config = hf_config(PRESETS[name].arch)
    assert type(config).__name__ == CONFIG_CLASS[FAMILY.get(name, "llama")]
    got = {key: getattr(config, key, "<absent>") for key in OFFICIAL[name]}
    assert got == OFFICIAL[name]
    assert PRESETS[name].source.endswith("/config.json")


@pytest.mark.parametrize("name", ["mathstral_7b", "mixtral_8x7b"])
def test_mistral_family_models_attend_to_the_whole_sequence(name):
    model = build_meta_model(PRESETS[name].arch)
    assert model.config.sliding_window is None
    assert all(getattr(layer.self_attn, "sliding_window", None) is None for layer in model.model.layers)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_parameter_counts_from_shapes_equal_the_built_model(name):
    arch = PRESETS[name].arch
    model = build_meta_model(arch)
    counts = arch.parameter_counts()
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert counts["embedding"] == model.model.embed_tokens.weight.numel()


def test_cluster_defaults_are_stated():
    # An 8B checkpoint with AdamW state is about 96 GB (90 GiB): say so before a user fills /fsx.
    assert checkpoint_gib(PRESETS["llama3_1_8b"].arch) == pytest.approx(89.8, abs=0.1)
    # HSDP on p5 (8 x 80 GB): 8B shards within a node and replicates across the 2; 70B needs 8 of 16 nodes.
    assert hsdp_replicas(PRESETS["llama3_1_8b"].arch, nodes=2, ranks_per_node=8, device_gib=80) == 2
    assert hsdp_replicas(PRESETS["llama3_1_70b"].arch, nodes=16, ranks_per_node=8, device_gib=80) == 2
    assert hsdp_replicas(PRESETS["llama3_1_70b"].arch, nodes=1, ranks_per_node=8, device_gib=80) == 1
