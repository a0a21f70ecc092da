"""Offline data: scikit-learn's bundled 8x8 handwritten digits (1,797 images, no download).

The split is fixed by the seed; each rank draws its own shard of every epoch through
``DistributedSampler``, and the position in the data is just the global step, so a resumed run
sees exactly the batches it would have seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from sklearn.datasets import load_digits
from torch.utils.data import DistributedSampler, TensorDataset


@dataclass
class DigitsData:
    """Train/test tensors and the per-rank batch schedule."""

    train: TensorDataset
    test: TensorDataset
    rank: int
    world_size: int
    batch_size: int
    seed: int

    @property
    def num_features(self) -> int:
        return self.train.tensors[0].shape[1]

    @property
    def num_classes(self) -> int:
        return 10

    @property
    def steps_per_epoch(self) -> int:
        per_rank = len(self.train) // self.world_size
        return max(1, per_rank // self.batch_size)

    def batch_indices(self, step: int) -> list[int]:
        """The dataset indices this rank trains on at global ``step``."""
        epoch, position = divmod(step, self.steps_per_epoch)
        sampler = DistributedSampler(
            self.train,
            num_replicas=self.world_size,
            rank=self.rank,
            shuffle=True,
            seed=self.seed,
            drop_last=True,
        )
        sampler.set_epoch(epoch)
        order = list(sampler)
        return order[position * self.batch_size : (position + 1) * self.batch_size]

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        indices = self.batch_indices(step)
        features, labels = self.train.tensors
        index = torch.tensor(indices)
        return features[index], labels[index], indices

    def test_shard(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's share of the held-out set (strided, no padding, so counts sum exactly)."""
        features, labels = self.test.tensors
        return features[self.rank :: self.world_size], labels[self.rank :: self.world_size]


def load_data(rank: int, world_size: int, batch_size: int, seed: int, test_fraction: float) -> DigitsData:
    """Load the digits, scale pixels to [0, 1] and split train/test with a seeded permutation."""
    digits = load_digits()
    features = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    labels = torch.tensor(digits.target, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=generator)
    n_test = int(len(labels) * test_fraction)
    test_idx, train_idx = order[:n_test], order[n_test:]
    return DigitsData(
        train=TensorDataset(features[train_idx], labels[train_idx]),
        test=TensorDataset(features[test_idx], labels[test_idx]),
        rank=rank,
        world_size=world_size,
        batch_size=batch_size,
        seed=seed,
    )
