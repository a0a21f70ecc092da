"""Meta-device builds, initialisation and the FLOPs formula (in process, no torchrun)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from fsdp.model import build_meta_model, counted_flops, flops_per_token, hf_config, initialise
from fsdp.presets import PRESETS

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
    model = build_meta_model(PRESETS[name].arch)
    assert all(p.is_meta for p in model.parameters())  # no real memory allocated
    total = sum(p.numel() for p in model.parameters())
    assert total / 1e9 == pytest.approx(EXPECTED_BILLIONS[name], abs=0.006)


def test_cpu_presets_are_small():
    assert PRESETS["tiny"].arch.parameter_counts()["total"] < 500_000
    assert 10e6 < PRESETS["small"].arch.parameter_counts()["total"] < 100e6


def test_flops_count_the_output_projection_and_active_experts_only():
    mixtral = PRESETS["mixtral_8x7b"].arch.parameter_counts()
    assert mixtral["flops"] / 1e9 == pytest.approx(12.75, abs=0.01)  # 2 of 8 experts, plus the head
    arch = PRESETS["llama3_1_8b"].arch
    counts = arch.parameter_counts()
    assert counts["flops"] == counts["total"] - counts["embedding"]  # untied: the head counts
    assert flops_per_token(arch, 8192) == 6 * counts["flops"] + 12 * 32 * 32 * 128 * 8192
    tied = PRESETS["llama3_2_1b"].arch.parameter_counts()
    assert tied["flops"] == tied["total"]  # tied: the one shared matrix is the output projection's too


@pytest.mark.parametrize(("name", "tie"), [("small", False), ("small", True)])
def test_flops_formula_agrees_with_torch_flop_counter(name, tie):
    arch = dataclasses.replace(PRESETS[name].arch, tie_embeddings=tie)
    seq_len = PRESETS[name].training.seq_len
    formula = flops_per_token(arch, seq_len) * seq_len
    ratio = counted_flops(arch, seq_len) / formula
    # The formula leaves out only element-wise work (norms, rotary, softmax), which the counter ignores.
    assert ratio == pytest.approx(1.0, abs=0.005)


def test_initialisation_matches_hf_rules_and_is_deterministic():
    arch = PRESETS["tiny"].arch
    model = build_meta_model(arch).to_empty(device="cpu")
    initialise(model, seed=7)
    params = dict(model.named_parameters())
    assert torch.equal(params["model.norm.weight"], torch.ones(arch.hidden_size))
    q = params["model.layers.0.self_attn.q_proj.weight"]
    assert q.std().item() == pytest.approx(0.02, rel=0.05) and abs(q.mean().item()) < 2e-3
    reference = build_meta_model(arch).to_empty(device="cpu")
    initialise(reference, seed=7)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), reference.parameters(), strict=True))
    # Rotary buffers, empty after the meta build, equal a model built for real.
    with torch.device("cpu"):
        real = type(model)(hf_config(arch))
    assert torch.equal(model.model.rotary_emb.inv_freq, real.model.rotary_emb.inv_freq)
