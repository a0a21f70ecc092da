"""Model FLOPs per token and the peak they are divided by for MFU."""

from __future__ import annotations

import time

import torch

from megatron_gpt.config import ModelConfig

# Dense bf16 peaks (TFLOP/s) by GPU name, the figures of 1.architectures/instance-types.yaml.
GPU_PEAKS = {"B200": 2250.0, "H200": 989.0, "H100": 989.0, "A100": 312.0, "A10G": 125.0, "L4": 121.0}


def flops_per_token(model: ModelConfig, vocab_size: int) -> float:
    """6N + 12 L H Q T (PaLM / torchtitan), N = every parameter but the input embedding."""
    h, layers = model.hidden_size, model.num_layers
    head_dim = h // model.num_attention_heads
    attention = h * h * 2 + 2 * h * model.num_query_groups * head_dim  # q, o; k, v
    mlp = 3 * h * model.ffn_hidden_size  # gate, up, down
    per_layer = attention + mlp + 2 * h  # two norms
    params = layers * per_layer + h + vocab_size * h  # final norm, output layer
    return 6 * params + 12 * layers * model.num_attention_heads * head_dim * model.seq_length


def gpu_peak_tflops() -> float:
    name = torch.cuda.get_device_name()
    for key, peak in GPU_PEAKS.items():
        if key in name:
            return peak
    return float("nan")


def cpu_gemm_peak_tflops(size: int = 512, repeats: int = 8) -> float:
    """fp32 GEMM throughput measured here, the CPU's practical peak (threads as set for this run)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e12
