"""Typed config: presets (architecture and parallel layout), CLI overrides, validation before torch.

Nothing here imports torch or megatron: bad input ends in one ``error:`` line within a second.
"""

from __future__ import annotations

import argparse
import array
import dataclasses
import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path


class ConfigError(ValueError):
    """A config value that cannot work, with the fix in its message."""


@dataclass(frozen=True)
class ModelConfig:
    num_layers: int
    hidden_size: int
    num_attention_heads: int
    num_query_groups: int
    ffn_hidden_size: int
    seq_length: int
    vocab_size: int  # the tokenizer's; padded to a multiple of 128 x TP when the model is built
    # "rope" (the Llama models) needs CUDA in megatron-core 0.16.1; the CPU smoke uses "learned_absolute".
    position_embedding_type: str = "rope"
    rotary_base: int = 10000
    rope_scaling: bool = False  # Llama 3.1's "llama3" frequency scaling (factor 8)
    normalization: str = "RMSNorm"


@dataclass(frozen=True)
class ParallelConfig:
    tensor_parallel: int = 1
    pipeline_parallel: int = 1
    context_parallel: int = 1
    sequence_parallel: bool = False  # with TP > 1 on GPU: activations sharded along the sequence
    distributed_optimizer: bool = True  # ZeRO-1 over data parallel ranks (GPU path)


@dataclass(frozen=True)
class TrainConfig:
    preset: str
    model: ModelConfig
    parallel: ParallelConfig
    micro_batch_size: int = 1
    global_batch_size: int = 8
    max_steps: int = 100
    lr: float = 3e-4
    min_lr: float = 3e-5
    warmup_steps: int = 10
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    seed: int = 1234
    bf16: bool = True
    data_prefix: str = ""  # the .bin/.idx prefix written by src/prepare_data.py
    run_dir: str = "runs/local"
    log_every: int = 1
    save_every: int = 0  # 0: only at the end
    nodes: int = 1  # the layout the preset was sized for (README, sbatch examples); not enforced
    device: str = "auto"  # auto: cuda when a GPU is visible, else cpu
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def _llama(seq, hidden, layers, heads, kv, ffn, vocab, theta, rope_scaling=False) -> ModelConfig:
    return ModelConfig(
        num_layers=layers,
        hidden_size=hidden,
        num_attention_heads=heads,
        num_query_groups=kv,
        ffn_hidden_size=ffn,
        seq_length=seq,
        vocab_size=vocab,
        rotary_base=theta,
        rope_scaling=rope_scaling,
    )


# Sizes from the models' config.json; layouts for p5.48xlarge (8 GPUs a node), as Megatron/NeMo recipes
# lay them out: TP inside a node, PP across nodes, CP for the 8K sequences, the rest data parallel.
PRESETS: dict[str, TrainConfig] = {
    "tiny": TrainConfig(
        preset="tiny",
        model=ModelConfig(
            num_layers=2,
            hidden_size=64,
            num_attention_heads=4,
            num_query_groups=2,
            ffn_hidden_size=176,
            seq_length=64,
            vocab_size=512,
            position_embedding_type="learned_absolute",
        ),
        parallel=ParallelConfig(distributed_optimizer=False),
        micro_batch_size=4,
        global_batch_size=8,
        max_steps=30,
        lr=3e-3,
        min_lr=3e-4,
        warmup_steps=5,
        bf16=False,
        save_every=10,
        nodes=1,
    ),
    # global batch 1,024 x 4,096 = 4M tokens; DP 8 x micro 1 x 128 accumulation steps
    "llama2_7b": TrainConfig(
        preset="llama2_7b",
        model=_llama(4096, 4096, 32, 32, 32, 11008, 32000, 10000),
        parallel=ParallelConfig(tensor_parallel=1, pipeline_parallel=1),
        global_batch_size=1024,
        max_steps=250_000,
        nodes=1,
    ),
    # 32 GPUs: TP 8 (one node) x PP 4 (four nodes) x DP 1; 1,024 micro-batches of 4,096 per step
    "llama2_70b": TrainConfig(
        preset="llama2_70b",
        model=_llama(4096, 8192, 80, 64, 8, 28672, 32000, 10000),
        parallel=ParallelConfig(tensor_parallel=8, pipeline_parallel=4, sequence_parallel=True),
        global_batch_size=1024,
        max_steps=250_000,
        nodes=4,
    ),
    # 8 GPUs: TP 1 x CP 2 x DP 4; global batch 512 x 8,192 = 4M tokens
    "llama3_1_8b": TrainConfig(
        preset="llama3_1_8b",
        model=_llama(8192, 4096, 32, 32, 8, 14336, 128256, 500000, rope_scaling=True),
        parallel=ParallelConfig(tensor_parallel=1, pipeline_parallel=1, context_parallel=2),
        global_batch_size=512,
        max_steps=250_000,
        nodes=1,
    ),
    # 64 GPUs: TP 8 x PP 4 x CP 2 x DP 1; global batch 512 x 8,192
    "llama3_1_70b": TrainConfig(
        preset="llama3_1_70b",
        model=_llama(8192, 8192, 80, 64, 8, 28672, 128256, 500000, rope_scaling=True),
        parallel=ParallelConfig(
            tensor_parallel=8, pipeline_parallel=4, context_parallel=2, sequence_parallel=True
        ),
        global_batch_size=512,
        max_steps=250_000,
        nodes=8,
    ),
}

# CLI flag -> (section, field); the section is "" for TrainConfig's own fields.
_OVERRIDES: dict[str, tuple[str, str, type]] = {
    "max-steps": ("", "max_steps", int),
    "micro-batch-size": ("", "micro_batch_size", int),
    "global-batch-size": ("", "global_batch_size", int),
    "lr": ("", "lr", float),
    "min-lr": ("", "min_lr", float),
    "warmup-steps": ("", "warmup_steps", int),
    "weight-decay": ("", "weight_decay", float),
    "grad-clip": ("", "grad_clip", float),
    "seed": ("", "seed", int),
    "data-prefix": ("", "data_prefix", str),
    "run-dir": ("", "run_dir", str),
    "log-every": ("", "log_every", int),
    "save-every": ("", "save_every", int),
    "device": ("", "device", str),
    "tensor-parallel": ("parallel", "tensor_parallel", int),
    "pipeline-parallel": ("parallel", "pipeline_parallel", int),
    "context-parallel": ("parallel", "context_parallel", int),
    "num-layers": ("model", "num_layers", int),
    "seq-length": ("model", "seq_length", int),
    "position-embedding-type": ("model", "position_embedding_type", str),
}
_SWITCHES = {
    "bf16": ("", "bf16"),
    "sequence-parallel": ("parallel", "sequence_parallel"),
    "distributed-optimizer": ("parallel", "distributed_optimizer"),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="train.py",
        description="Pretrain a GPT/Llama model with megatron-core (TP, PP, CP, DP).",
        epilog=f"presets: {', '.join(PRESETS)}",
    )
    parser.add_argument("--preset", default="tiny", help="model and layout (default tiny)")
    for flag, (_, name, kind) in _OVERRIDES.items():
        parser.add_argument(f"--{flag}", dest=name, type=str, default=None, metavar=kind.__name__.upper())
    for flag, (_, name) in _SWITCHES.items():
        parser.add_argument(f"--{flag}", dest=name, action=argparse.BooleanOptionalAction, default=None)
    return parser.parse_args(argv)


def _convert(flag: str, raw: str, kind: type):
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"--{flag} {raw!r} is not a{'n' if kind is int else ''} {kind.__name__}") from None
    if kind is float and not math.isfinite(value):
        raise ConfigError(f"--{flag} {raw!r} must be a finite number")
    return value


def config_from_args(argv: list[str] | None = None) -> TrainConfig:
    """The preset with the command line's overrides, validated (world-size checks come later)."""
    args = parse_args(argv)
    if args.preset not in PRESETS:
        raise ConfigError(f"unknown preset {args.preset!r}; choose one of {', '.join(PRESETS)}")
    config = PRESETS[args.preset]
    changes: dict[str, dict] = {"": {}, "model": {}, "parallel": {}}
    for flag, (section, name, kind) in _OVERRIDES.items():
        raw = getattr(args, name)
        if raw is not None:
            changes[section][name] = _convert(flag, raw, kind)
    for section, name in _SWITCHES.values():
        if getattr(args, name) is not None:
            changes[section][name] = getattr(args, name)
    config = dataclasses.replace(
        config,
        model=dataclasses.replace(config.model, **changes["model"]),
        parallel=dataclasses.replace(config.parallel, **changes["parallel"]),
        **changes[""],
    )
    validate(config)
    return config


def validate(config: TrainConfig) -> None:
    """Checks that need no world size and no torch."""
    positive = {
        "--max-steps": config.max_steps,
        "--micro-batch-size": config.micro_batch_size,
        "--global-batch-size": config.global_batch_size,
        "--log-every": config.log_every,
        "--tensor-parallel": config.parallel.tensor_parallel,
        "--pipeline-parallel": config.parallel.pipeline_parallel,
        "--context-parallel": config.parallel.context_parallel,
        "--num-layers": config.model.num_layers,
        "--seq-length": config.model.seq_length,
    }
    for flag, value in positive.items():
        if value < 1:
            raise ConfigError(f"{flag} {value} must be at least 1")
    if config.save_every < 0 or config.warmup_steps < 0:
        raise ConfigError("--save-every and --warmup-steps must be 0 or more")
    if config.warmup_steps >= config.max_steps:
        raise ConfigError(
            f"--warmup-steps {config.warmup_steps} must be less than --max-steps {config.max_steps}"
        )
    if not 0 <= config.min_lr <= config.lr:
        raise ConfigError(f"--min-lr {config.min_lr} must be between 0 and --lr {config.lr}")
    if config.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"--device {config.device!r}: choose auto, cpu or cuda")
    _validate_layout(config)
    _validate_data(config)


def _validate_layout(config: TrainConfig) -> None:
    model, parallel = config.model, config.parallel
    if model.position_embedding_type not in ("rope", "learned_absolute"):
        raise ConfigError(
            f"--position-embedding-type {model.position_embedding_type!r}: choose rope or learned_absolute"
        )
    for name, value in (
        ("--num-attention-heads", model.num_attention_heads),
        ("kv heads", model.num_query_groups),
    ):
        if value % parallel.tensor_parallel:
            raise ConfigError(
                f"{name} ({value}) is not divisible by --tensor-parallel {parallel.tensor_parallel}; "
                "pick a TP that divides both the attention heads and the KV heads"
            )
    if model.num_layers % parallel.pipeline_parallel:
        raise ConfigError(
            f"--num-layers {model.num_layers} is not divisible by --pipeline-parallel "
            f"{parallel.pipeline_parallel}"
        )
    if model.seq_length % (2 * parallel.context_parallel) and parallel.context_parallel > 1:
        raise ConfigError(
            f"--seq-length {model.seq_length} must be divisible by 2 x --context-parallel "
            f"{parallel.context_parallel} (load-balanced causal chunks)"
        )


def _validate_data(config: TrainConfig) -> None:
    if not config.data_prefix:
        raise ConfigError(
            "--data-prefix is not set; write a dataset with src/prepare_data.py (make data) and pass its "
            "prefix, e.g. --data-prefix data/corpus_text_document"
        )
    for suffix in (".bin", ".idx", ".json"):
        path = Path(config.data_prefix + suffix)
        if not path.is_file():
            raise ConfigError(
                f"--data-prefix {config.data_prefix!r}: {path} does not exist; run src/prepare_data.py "
                f"--output-prefix {config.data_prefix} first"
            )


def check_cpu(config: TrainConfig) -> None:
    """What megatron-core 0.16.1 cannot do without CUDA, each with the setting that works."""
    model, parallel = config.model, config.parallel
    fixes = [
        (
            model.position_embedding_type == "rope",
            "RoPE allocates on CUDA",
            "--position-embedding-type learned_absolute",
        ),
        (parallel.pipeline_parallel > 1, "the pipeline schedules allocate on CUDA", "--pipeline-parallel 1"),
        (
            parallel.context_parallel > 1,
            "context parallelism needs TE attention on CUDA",
            "--context-parallel 1",
        ),
        (parallel.sequence_parallel, "sequence parallelism is a GPU setting here", "--no-sequence-parallel"),
        (
            parallel.distributed_optimizer,
            "the distributed optimizer needs Megatron's DDP (CUDA)",
            "--no-distributed-optimizer",
        ),
        (config.bf16, "bf16 on this CPU is 6-10x slower than fp32", "--no-bf16"),
    ]
    for bad, why, fix in fixes:
        if bad:
            raise ConfigError(f"preset {config.preset!r} on CPU: {why}; pass {fix} (or run on GPUs)")


def check_world(config: TrainConfig, world_size: int) -> int:
    """The data-parallel size, after checking the layout fits ``world_size`` ranks."""
    parallel = config.parallel
    model_parallel = parallel.tensor_parallel * parallel.pipeline_parallel * parallel.context_parallel
    if world_size % model_parallel:
        raise ConfigError(
            f"TP {parallel.tensor_parallel} x PP {parallel.pipeline_parallel} x CP "
            f"{parallel.context_parallel} = {model_parallel} does not divide WORLD_SIZE {world_size}; "
            "change the node count or the layout"
        )
    data_parallel = world_size // model_parallel
    if config.global_batch_size % (config.micro_batch_size * data_parallel):
        raise ConfigError(
            f"--global-batch-size {config.global_batch_size} is not a multiple of --micro-batch-size "
            f"{config.micro_batch_size} x data parallel {data_parallel}; pick a multiple of "
            f"{config.micro_batch_size * data_parallel}"
        )
    return data_parallel


_IDX_HEADER = b"MMIDIDX\x00\x00"  # megatron-core's IndexedDataset index, version 1
_IDX_ITEM_BYTES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 8, 7: 4, 8: 2}  # its DType codes


def check_indexed_dataset(prefix: str) -> None:
    """The .idx/.bin pair as megatron-core reads it: the header, the counts and both file sizes agree (a
    truncated copy or another file fails here, before a run folder is made, not as a traceback later)."""
    idx, data = Path(prefix + ".idx"), Path(prefix + ".bin")
    fix = f"write it again with src/prepare_data.py --output-prefix {prefix}"
    try:
        with idx.open("rb") as stream:
            head = stream.read(34)
            if len(head) < 34 or not head.startswith(_IDX_HEADER):
                raise ConfigError(f"--data-prefix {prefix!r}: {idx} is not a megatron-core index; {fix}")
            version, code, sequences, documents = struct.unpack("<QBQQ", head[len(_IDX_HEADER) :])
            expected = len(head) + 12 * sequences + 8 * documents
            size = idx.stat().st_size
            if version != 1 or code not in _IDX_ITEM_BYTES or size not in (expected, expected + sequences):
                raise ConfigError(
                    f"--data-prefix {prefix!r}: {idx} is damaged or truncated ({size} bytes); {fix}"
                )
            lengths = array.array("i")
            lengths.frombytes(stream.read(4 * sequences))
        tokens_bytes = sum(lengths) * _IDX_ITEM_BYTES[code]
        if data.stat().st_size != tokens_bytes:
            raise ConfigError(
                f"--data-prefix {prefix!r}: {data} holds {data.stat().st_size} bytes, its index expects "
                f"{tokens_bytes}; {fix}"
            )
    except OSError as exc:
        raise ConfigError(f"--data-prefix {prefix!r}: cannot read {exc.filename}: {exc.strerror}") from None


def read_data_info(prefix: str) -> dict:
    """What src/prepare_data.py wrote next to the .bin/.idx: tokenizer, vocab size, end-of-document id."""
    path = Path(prefix + ".json")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return {"vocab_size": int(info["vocab_size"]), "eod": int(info["eod"]), **info}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"{path} is not a dataset description written by src/prepare_data.py ({exc})"
        ) from None
