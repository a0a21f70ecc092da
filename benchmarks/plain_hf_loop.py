#!/usr/bin/env python3
"""What a user would write instead of the FSDP trainer: a plain Hugging Face Llama + AdamW loop.

    python benchmarks/plain_hf_loop.py --steps 30 --out steps.jsonl [--compile]

The same shapes as the FSDP ``small`` preset (read from its presets file), the same batch (4 x 256
tokens), the same optimizer, loss and gradient clipping, one process, fp32, every core. Writes one
JSON line per step (``step``, ``step_time_s``, ``tokens_per_s``) for benchmarks/fsdp.py to compare.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM

PRESETS_FILE = Path(__file__).resolve().parents[1] / "3.test_cases/pytorch/FSDP/src/fsdp/presets.py"


def small_preset():
    spec = importlib.util.spec_from_file_location("fsdp_presets", PRESETS_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module.PRESETS["small"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    preset = small_preset()
    arch, batch, seq = preset.arch, preset.training.micro_batch_size, preset.training.seq_len
    config = LlamaConfig(
        hidden_size=arch.hidden_size,
        intermediate_size=arch.intermediate_size,
        num_hidden_layers=arch.num_layers,
        num_attention_heads=arch.num_heads,
        num_key_value_heads=arch.num_kv_heads,
        vocab_size=arch.vocab_size,
        max_position_embeddings=arch.max_position_embeddings,
        rope_parameters=arch.rope_parameters,
        use_cache=False,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    forward = torch.compile(model) if args.compile else model
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1, foreach=True
    )
    with args.out.open("w") as out:
        for step in range(1, args.steps + 1):
            started = time.perf_counter()
            tokens = torch.randint(0, arch.vocab_size, (batch, seq + 1))
            logits = forward(input_ids=tokens[:, :-1]).logits
            loss = F.cross_entropy(logits.float().flatten(0, 1), tokens[:, 1:].flatten())
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            loss.item()
            elapsed = time.perf_counter() - started
            out.write(
                json.dumps({"step": step, "step_time_s": elapsed, "tokens_per_s": batch * seq / elapsed})
                + "\n"
            )


if __name__ == "__main__":
    main()
