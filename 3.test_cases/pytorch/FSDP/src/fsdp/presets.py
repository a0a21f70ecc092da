"""Model presets: the real architectures (the model cards' ``config.json``) plus two CPU sizes.

A preset is three keyword-built parts, resolved once at start and never recomputed in the loop:
``Architecture`` (every value that changes the computation), ``Launch`` (where it usually runs: what
the generated sbatch and Kubernetes files default to) and ``Training`` (sequence length, batch,
logging and checkpoint cadence). ``tiny`` trains on a laptop CPU in seconds; ``small`` (tens of millions
of parameters) is the CPU benchmark size. The batch arithmetic sits next to the numbers.

This file imports nothing outside the standard library: ``generate.py`` reads it without torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_ROPE = {"rope_type": "default"}
# Llama 3.x "llama3" rope scaling (its config.json ``rope_scaling``), theta 500000.
LLAMA3_ROPE = {"rope_type": "llama3", "low_freq_factor": 1.0, "high_freq_factor": 4.0}
LLAMA3_ROPE_ORIGINAL_POSITIONS = 8192
# Bytes of training state per parameter with AdamW under FSDP2 mixed precision: fp32 parameter,
# fp32 gradient, two fp32 moments. A checkpoint holds parameters and moments: 12 bytes per parameter.
TRAINING_STATE_BYTES_PER_PARAM = 16
CHECKPOINT_BYTES_PER_PARAM = 12


@dataclass(frozen=True, kw_only=True)
class Architecture:
    """Every value that changes what the model computes."""

    family: str  # llama | mistral | mixtral (the transformers config class)
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    rope_theta: float
    rope_scaling: dict = field(default_factory=lambda: dict(DEFAULT_ROPE))
    rms_norm_eps: float = 1e-5
    tie_embeddings: bool = False
    sliding_window: int | None = None  # None: full attention (the official Mistral-family models)
    num_experts: int = 0
    experts_per_token: int = 0

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def rope_parameters(self) -> dict:
        """The transformers 5 ``rope_parameters`` (theta and scaling together)."""
        return {"rope_theta": self.rope_theta, **self.rope_scaling}

    def parameter_counts(self) -> dict[str, int]:
        """Parameters by kind, from the shapes alone (a test checks them against the built model).

        ``flops`` is N of the FLOPs formula: everything but the input embedding (the output
        projection is a matmul per token, tied or not), with only the active experts of an MoE.
        """
        h, kv = self.hidden_size, self.num_kv_heads * self.head_dim
        attention = h * (self.num_heads * self.head_dim) * 2 + h * kv * 2  # q, o; k, v
        mlp = 3 * h * self.intermediate_size  # gate, up, down
        if self.num_experts:
            router = h * self.num_experts
            layer_total = attention + self.num_experts * mlp + router + 2 * h
            layer_active = attention + self.experts_per_token * mlp + router + 2 * h
        else:
            layer_total = layer_active = attention + mlp + 2 * h  # + two RMSNorm weights
        embedding = self.vocab_size * h
        output = embedding  # the output projection's size (one shared tensor when tied)
        total = embedding + self.num_layers * layer_total + h + (0 if self.tie_embeddings else output)
        return {
            "total": total,
            "embedding": embedding,
            "flops": self.num_layers * layer_active + h + output,
        }


@dataclass(frozen=True, kw_only=True)
class Launch:
    """Where the preset usually runs: the defaults of its generated sbatch and PyTorchJob."""

    nodes: int
    gpus_per_node: int = 8  # 0: a CPU preset (two ranks per node)
    instance_type: str = "p5.48xlarge"


@dataclass(frozen=True, kw_only=True)
class Training:
    """Sequence length, batch, logging and checkpoint cadence."""

    seq_len: int
    micro_batch_size: int = 1
    log_every: int = 10
    checkpoint_every: int = 500
    keep_checkpoints: int = 3


@dataclass(frozen=True, kw_only=True)
class Preset:
    arch: Architecture
    launch: Launch
    training: Training
    source: str = ""  # where the architecture values come from


def _llama2(**arch) -> Architecture:
    return Architecture(
        family="llama", vocab_size=32000, max_position_embeddings=4096, rope_theta=10000.0, **arch
    )


def _llama3(factor: float, **arch) -> Architecture:
    scaling = {
        **LLAMA3_ROPE,
        "factor": factor,
        "original_max_position_embeddings": LLAMA3_ROPE_ORIGINAL_POSITIONS,
    }
    return Architecture(
        family="llama",
        vocab_size=128256,
        max_position_embeddings=131072,
        rope_theta=500000.0,
        rope_scaling=scaling,
        **arch,
    )


def _hub(repo: str) -> str:
    return f"https://huggingface.co/{repo}/blob/main/config.json"


PRESETS: dict[str, Preset] = {
    # CPU: 2 ranks x micro-batch 4 x 128 tokens = 1,024 tokens per step.
    "tiny": Preset(
        arch=Architecture(
            family="llama",
            hidden_size=64,
            num_layers=2,
            num_heads=4,
            num_kv_heads=2,
            intermediate_size=176,
            vocab_size=512,
            max_position_embeddings=512,
            rope_theta=10000.0,
        ),
        launch=Launch(nodes=2, gpus_per_node=0, instance_type="cpu"),
        training=Training(seq_len=128, micro_batch_size=4, log_every=1, checkpoint_every=20),
        source="CPU size of this repository",
    ),
    # CPU benchmark: one process, micro-batch 4 x 256 tokens = 1,024 tokens per step.
    "small": Preset(
        arch=Architecture(
            family="llama",
            hidden_size=512,
            num_layers=8,
            num_heads=8,
            num_kv_heads=4,
            intermediate_size=1408,
            vocab_size=8192,
            max_position_embeddings=2048,
            rope_theta=10000.0,
        ),
        launch=Launch(nodes=1, gpus_per_node=0, instance_type="cpu"),
        training=Training(seq_len=256, micro_batch_size=4, log_every=1, checkpoint_every=20),
        source="CPU size of this repository",
    ),
    # GPU presets: global batch = nodes x 8 GPUs x micro-batch x seq_len tokens per step, e.g. Llama 3.1
    # 8B on 2 nodes: 16 x 1 x 8192 = 131,072 tokens (raise it with --grad-accum).
    "llama2_7b": Preset(
        arch=_llama2(hidden_size=4096, num_layers=32, num_heads=32, num_kv_heads=32, intermediate_size=11008),
        launch=Launch(nodes=2),
        training=Training(seq_len=4096),
        source=_hub("meta-llama/Llama-2-7b-hf"),
    ),
    "llama2_13b": Preset(
        arch=_llama2(hidden_size=5120, num_layers=40, num_heads=40, num_kv_heads=40, intermediate_size=13824),
        launch=Launch(nodes=4),
        training=Training(seq_len=4096),
        source=_hub("meta-llama/Llama-2-13b-hf"),
    ),
    "llama2_70b": Preset(
        arch=_llama2(hidden_size=8192, num_layers=80, num_heads=64, num_kv_heads=8, intermediate_size=28672),
        launch=Launch(nodes=16),
        training=Training(seq_len=4096, checkpoint_every=250),
        source=_hub("meta-llama/Llama-2-70b-hf"),
    ),
    "llama3_1_8b": Preset(
        arch=_llama3(
            8.0, hidden_size=4096, num_layers=32, num_heads=32, num_kv_heads=8, intermediate_size=14336
        ),
        launch=Launch(nodes=2),
        training=Training(seq_len=8192),
        source=_hub("meta-llama/Llama-3.1-8B"),
    ),
    "llama3_1_70b": Preset(
        arch=_llama3(
            8.0, hidden_size=8192, num_layers=80, num_heads=64, num_kv_heads=8, intermediate_size=28672
        ),
        launch=Launch(nodes=16),
        training=Training(seq_len=8192, checkpoint_every=250),
        source=_hub("meta-llama/Llama-3.1-70B"),
    ),
    "llama3_2_1b": Preset(
        arch=_llama3(
            32.0,
            hidden_size=2048,
            num_layers=16,
            num_heads=32,
            num_kv_heads=8,
            intermediate_size=8192,
            tie_embeddings=True,
        ),
        launch=Launch(nodes=1),
        training=Training(seq_len=8192, micro_batch_size=2),
        source=_hub("meta-llama/Llama-3.2-1B"),
    ),
    "llama3_2_3b": Preset(
        arch=_llama3(
            32.0,
            hidden_size=3072,
            num_layers=28,
            num_heads=24,
            num_kv_heads=8,
            intermediate_size=8192,
            tie_embeddings=True,
        ),
        launch=Launch(nodes=1),
        training=Training(seq_len=8192),
        source=_hub("meta-llama/Llama-3.2-3B"),
    ),
    "mathstral_7b": Preset(
        arch=Architecture(
            family="mistral",
            hidden_size=4096,
            num_layers=32,
            num_heads=32,
            num_kv_heads=8,
            intermediate_size=14336,
            vocab_size=32768,
            max_position_embeddings=32768,
            rope_theta=1000000.0,
            sliding_window=None,  # full attention; transformers' MistralConfig defaults to a 4096 window
        ),
        launch=Launch(nodes=2),
        training=Training(seq_len=32768),
        source=_hub("mistralai/Mathstral-7B-v0.1"),
    ),
    "mixtral_8x7b": Preset(
        arch=Architecture(
            family="mixtral",
            hidden_size=4096,
            num_layers=32,
            num_heads=32,
            num_kv_heads=8,
            intermediate_size=14336,
            vocab_size=32000,
            max_position_embeddings=32768,
            rope_theta=1000000.0,
            sliding_window=None,
            num_experts=8,
            experts_per_token=2,
        ),
        launch=Launch(nodes=8),
        training=Training(seq_len=32768, checkpoint_every=250),
        source=_hub("mistralai/Mixtral-8x7B-v0.1"),
    ),
}


def checkpoint_gib(arch: Architecture) -> float:
    """Size of a checkpoint with AdamW state (parameters and two moments in fp32), GiB."""
    return arch.parameter_counts()["total"] * CHECKPOINT_BYTES_PER_PARAM / 2**30


def hsdp_replicas(arch: Architecture, nodes: int, ranks_per_node: int, device_gib: float) -> int:
    """Replica groups for HSDP: shard the training state over the fewest whole nodes (a divisor of
    ``nodes``) that hold it in 40% of each device's memory (the rest is activations and buffers),
    replicate across the rest. 1 means plain FSDP over every rank."""
    state_gib = arch.parameter_counts()["total"] * TRAINING_STATE_BYTES_PER_PARAM / 2**30
    for shard_nodes in range(1, nodes + 1):
        if nodes % shard_nodes == 0 and state_gib / (shard_nodes * ranks_per_node) <= 0.4 * device_gib:
            return nodes // shard_nodes
    return 1
