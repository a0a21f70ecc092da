"""Training samples: megatron-core's GPTDataset over the .bin/.idx that src/prepare_data.py wrote, built
by its BlendedMegatronDatasetBuilder, and each data-parallel rank's slice of every global batch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig

from megatron_gpt.config import TrainConfig


@dataclass(frozen=True)
class TokenIds:
    """The two tokenizer facts GPTDataset reads (vocabulary size and end-of-document id), from the dataset's
    description, so training ranks need neither the tokenizer folder nor transformers."""

    vocab_size: int
    eod: int

    @property
    def unique_identifiers(self) -> dict:
        """Part of the dataset's cache key, as for megatron-core's own tokenizers."""
        return {"class": type(self).__name__, "vocab_size": self.vocab_size, "eod": self.eod}


def build_train_dataset(config: TrainConfig, info: dict, cache_dir: Path) -> GPTDataset:
    """Enough samples for every step; the index (document order, sample boundaries) is cached in
    ``cache_dir``, built by rank 0 first, then read by the others."""
    dataset_config = GPTDatasetConfig(
        random_seed=config.seed,
        sequence_length=config.model.seq_length,
        blend=([config.data_prefix], None),
        split="100,0,0",
        tokenizer=TokenIds(vocab_size=info["vocab_size"], eod=info["eod"]),
        reset_position_ids=False,
        reset_attention_mask=False,
        eod_mask_loss=False,
        create_attention_mask=False,  # causal attention, masked by the kernel
        path_to_cache=str(cache_dir),
        mid_level_dataset_surplus=0.005,
    )
    samples = config.max_steps * config.global_batch_size
    train, _, _ = BlendedMegatronDatasetBuilder(
        GPTDataset, [samples, None, None], lambda: True, dataset_config
    ).build()
    return train


def micro_batches(
    dataset: GPTDataset, config: TrainConfig, step: int, dp_rank: int, dp_size: int
) -> list[dict[str, torch.Tensor]]:
    """This data-parallel rank's micro-batches of global batch ``step`` (0-based): a fixed function of the
    step, so a resumed run reads exactly what the uninterrupted one would have."""
    mbs = config.micro_batch_size
    first = step * config.global_batch_size
    batches = []
    for micro in range(config.global_batch_size // (mbs * dp_size)):
        start = first + (micro * dp_size + dp_rank) * mbs
        samples = [dataset[i] for i in range(start, start + mbs)]
        batches.append({key: torch.stack([s[key] for s in samples]) for key in samples[0]})
    return batches
