"""The model: a plain single-device MLP. Wrapping in DDP happens in ``train.wrap_model`` only."""

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
