"""The model: a plain single-device MLP. Wrapping in DDP happens in ``trainer.wrap_model`` only."""

from __future__ import annotations

import torch
from torch import nn


def build_model(num_features: int, hidden_sizes: tuple[int, ...], num_classes: int, seed: int) -> nn.Module:
    """An MLP initialised from ``seed``, so every rank starts from identical weights."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    width = num_features
    for hidden in hidden_sizes:
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flops_per_sample(model: nn.Module) -> int:
    """Training FLOPs per sample: 6·N with N all parameters (forward 2N, backward 4N: the gradients
    with respect to the inputs and to the weights). An MLP has no embedding and no attention term."""
    return 6 * parameter_count(model)
