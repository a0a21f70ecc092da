"""Presets, meta-device builds, initialisation and the FLOPs formula (in process, no torchrun)."""

from __future__ import annotations

import pytest
import torch
from training.model import build_meta_model, flops_per_token, hf_config, initialise, parameter_counts
from training.presets import PRESETS

# Published sizes (total parameters, billions).
EXPECTED_BILLIONS = {
    "llama2_7b": 6.74,
    "llama2_13b": 13.02,
    "llama2_70b": 68.98,
    "llama3_1_8b": 8.03,
    "llama3_1_70b": 70.55,
    "llama3_2_1b": 1.24,
    "llama3_2_3b": 3.21,
    "mathstral_7b": 7.25,
    "mixtral_8x7b": 46.70,
}


@pytest.mark.parametrize("name", sorted(EXPECTED_BILLIONS))
def test_every_preset_builds_on_meta_with_its_published_size(name):
    model = build_meta_model(PRESETS[name])
    assert all(p.is_meta for p in model.parameters())  # no real memory allocated
    total = sum(p.numel() for p in model.parameters())
    assert total / 1e9 == pytest.approx(EXPECTED_BILLIONS[name], abs=0.006)


def test_cpu_presets_are_small():
    assert parameter_counts(PRESETS["tiny"])["total"] < 500_000
    assert 10e6 < parameter_counts(PRESETS["small"])["total"] < 100e6


def test_preset_architecture_details_reach_the_hf_config():
    config = hf_config(PRESETS["llama3_1_8b"])
    assert (
        config.rope_parameters["rope_type"] == "llama3" and config.rope_parameters["rope_theta"] == 500000.0
    )
    assert config.num_key_value_heads == 8 and not config.tie_word_embeddings
    assert hf_config(PRESETS["llama3_2_1b"]).tie_word_embeddings
    mixtral = hf_config(PRESETS["mixtral_8x7b"])
    assert (mixtral.num_local_experts, mixtral.num_experts_per_tok) == (8, 2)
    assert type(hf_config(PRESETS["mathstral_7b"])).__name__ == "MistralConfig"


def test_moe_flops_count_active_experts_only():
    counts = parameter_counts(PRESETS["mixtral_8x7b"])
    assert counts["active_non_embedding"] / 1e9 == pytest.approx(12.6, abs=0.1)
    preset = PRESETS["llama3_1_8b"]
    n = parameter_counts(preset)["active_non_embedding"]
    assert flops_per_token(preset, n) == 6 * n + 12 * 32 * 32 * 128 * 8192


def test_initialisation_matches_hf_rules_and_is_deterministic():
    preset = PRESETS["tiny"]
    model = build_meta_model(preset).to_empty(device="cpu")
    initialise(model, seed=7)
    params = dict(model.named_parameters())
    assert torch.equal(params["model.norm.weight"], torch.ones(preset.hidden_size))
    q = params["model.layers.0.self_attn.q_proj.weight"]
    assert q.std().item() == pytest.approx(0.02, rel=0.05) and abs(q.mean().item()) < 2e-3
    reference = build_meta_model(preset).to_empty(device="cpu")
    initialise(reference, seed=7)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), reference.parameters(), strict=True))
    # Rotary buffers, empty after the meta build, equal a model built for real.
    with torch.device("cpu"):
        real = type(model)(hf_config(preset))
    assert torch.equal(model.model.rotary_emb.inv_freq, real.model.rotary_emb.inv_freq)
