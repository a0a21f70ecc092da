"""Model presets: the real architectures (from the model cards' config.json) plus CPU sizes.

``tiny`` trains on a laptop CPU in seconds; ``small`` (tens of millions of parameters) is the CPU
benchmark size. The others are the sizes users run on GPU clusters, with the node counts and
instance types the generated sbatch and Kubernetes files default to.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LLAMA3_ROPE = {
    "rope_type": "llama3",
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
}


@dataclass(frozen=True)
class ModelPreset:
    """Architecture of one model, plus where it usually runs."""

    family: str  # llama | mistral | mixtral
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    vocab_size: int
    seq_len: int  # the training sequence length users expect
    max_position_embeddings: int
    rope_parameters: dict = field(default_factory=dict)
    rms_norm_eps: float = 1e-5
    tie_embeddings: bool = False
    num_experts: int = 0
    experts_per_token: int = 0
    # Cluster defaults for the generated launch files.
    nodes: int = 1
    gpus_per_node: int = 8
    instance_type: str = "p5.48xlarge"
    micro_batch_size: int = 1


def _llama3(theta: float = 500000.0, factor: float = 8.0) -> dict:
    return {"rope_theta": theta, "factor": factor, **LLAMA3_ROPE}


PRESETS: dict[str, ModelPreset] = {
    "tiny": ModelPreset(
        "llama",
        64,
        2,
        4,
        2,
        176,
        512,
        128,
        512,
        {"rope_type": "default", "rope_theta": 10000.0},
        nodes=2,
        gpus_per_node=0,
        instance_type="cpu",
        micro_batch_size=4,
    ),
    "small": ModelPreset(
        "llama",
        512,
        8,
        8,
        4,
        1408,
        8192,
        256,
        2048,
        {"rope_type": "default", "rope_theta": 10000.0},
        nodes=1,
        gpus_per_node=0,
        instance_type="cpu",
        micro_batch_size=4,
    ),
    "llama2_7b": ModelPreset(
        "llama",
        4096,
        32,
        32,
        32,
        11008,
        32000,
        4096,
        4096,
        {"rope_type": "default", "rope_theta": 10000.0},
        nodes=2,
    ),
    "llama2_13b": ModelPreset(
        "llama",
        5120,
        40,
        40,
        40,
        13824,
        32000,
        4096,
        4096,
        {"rope_type": "default", "rope_theta": 10000.0},
        nodes=4,
    ),
    "llama2_70b": ModelPreset(
        "llama",
        8192,
        80,
        64,
        8,
        28672,
        32000,
        4096,
        4096,
        {"rope_type": "default", "rope_theta": 10000.0},
        nodes=16,
    ),
    "llama3_1_8b": ModelPreset("llama", 4096, 32, 32, 8, 14336, 128256, 8192, 131072, _llama3(), nodes=2),
    "llama3_1_70b": ModelPreset("llama", 8192, 80, 64, 8, 28672, 128256, 8192, 131072, _llama3(), nodes=16),
    "llama3_2_1b": ModelPreset(
        "llama",
        2048,
        16,
        32,
        8,
        8192,
        128256,
        8192,
        131072,
        _llama3(factor=32.0),
        tie_embeddings=True,
        nodes=1,
    ),
    "llama3_2_3b": ModelPreset(
        "llama",
        3072,
        28,
        24,
        8,
        8192,
        128256,
        8192,
        131072,
        _llama3(factor=32.0),
        tie_embeddings=True,
        nodes=1,
    ),
    "mathstral_7b": ModelPreset(
        "mistral",
        4096,
        32,
        32,
        8,
        14336,
        32768,
        32768,
        32768,
        {"rope_type": "default", "rope_theta": 1000000.0},
        nodes=2,
    ),
    "mixtral_8x7b": ModelPreset(
        "mixtral",
        4096,
        32,
        32,
        8,
        14336,
        32000,
        32768,
        32768,
        {"rope_type": "default", "rope_theta": 1000000.0},
        num_experts=8,
        experts_per_token=2,
        nodes=8,
    ),
}
