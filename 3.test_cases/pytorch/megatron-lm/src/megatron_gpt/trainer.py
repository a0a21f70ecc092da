"""The training loop around megatron-core: process groups, run folder, metrics, checkpoints, resume.

Run folder (``--run-dir``): ``config.json``, ``metrics.jsonl`` (one record per log step plus ``event``
records), ``result.json``, ``ranks/rank<R>.json`` and ``checkpoints/step-<N>/`` (a dist_checkpointing
folder, renamed into place when every rank has written, then a ``COMPLETE`` marker listing its files).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import time
from pathlib import Path

import torch
import torch.distributed as dist
from megatron.core import dist_checkpointing, parallel_state

from megatron_gpt.config import (
    ConfigError,
    TrainConfig,
    check_cpu,
    check_indexed_dataset,
    check_world,
    read_data_info,
)
from megatron_gpt.cpu_compat import checkpointing_on_cpu
from megatron_gpt.data import build_train_dataset, micro_batches
from megatron_gpt.engine import CpuEngine, GpuEngine
from megatron_gpt.flops import cpu_gemm_peak_tflops, flops_per_token, gpu_peak_tflops
from megatron_gpt.model import build_model, transformer_engine_available

USER_ERRORS = (ConfigError,)
MARKER = "COMPLETE"


def setup_distributed(config: TrainConfig) -> bool:
    """Join the process group (torchrun's env, or a world of one) and build Megatron's parallel groups.
    Returns whether this run is on GPUs."""
    on_gpu = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
    if not on_gpu:
        check_cpu(config)
    elif config.parallel.context_parallel > 1 and not transformer_engine_available():
        raise ConfigError(
            f"--context-parallel {config.parallel.context_parallel} needs Transformer Engine's attention; "
            "run in the image (megatron-lm.Dockerfile) or pass --context-parallel 1"
        )
    if "RANK" not in os.environ:  # `python src/train.py`: a world of one, on a free local port
        os.environ.update(RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
    world = int(os.environ["WORLD_SIZE"])
    check_world(config, world)
    if on_gpu:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if on_gpu else "gloo")
    parallel_state.initialize_model_parallel(
        tensor_model_parallel_size=config.parallel.tensor_parallel,
        pipeline_model_parallel_size=config.parallel.pipeline_parallel,
        context_parallel_size=config.parallel.context_parallel,
        create_gloo_process_groups=on_gpu,  # gloo side groups for the distributed optimizer
    )
    if on_gpu:
        from megatron.core.tensor_parallel import model_parallel_cuda_manual_seed  # noqa: PLC0415

        model_parallel_cuda_manual_seed(config.seed)
    # With use_cpu_initialization every rank draws the full weight and keeps its slice: one seed
    # everywhere makes TP=2's weights exactly TP=1's.
    torch.manual_seed(config.seed)
    return on_gpu


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def prepare_run_dir(config: TrainConfig, info: dict) -> Path:
    """The run folder, and config.json written atomically by rank 0 (the resolved config)."""
    run_dir = Path(config.run_dir)
    if dist.get_rank() == 0:
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        (run_dir / "ranks").mkdir(exist_ok=True)
        resolved = {**config.to_json(), "data": info, "world_size": dist.get_world_size()}
        write_json(run_dir / "config.json", resolved)
    dist.barrier()
    where = {
        "rank": dist.get_rank(),
        "node": os.environ.get("SLURMD_NODENAME", socket.gethostname()),
        "run_id": os.environ.get("TORCHELASTIC_RUN_ID", ""),
        "restart": int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")),
        "tp_rank": parallel_state.get_tensor_model_parallel_rank(),
        "pp_rank": parallel_state.get_pipeline_model_parallel_rank(),
        "dp_rank": parallel_state.get_data_parallel_rank(),
    }
    write_json(run_dir / "ranks" / f"rank{dist.get_rank()}.json", where)
    return run_dir


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint whose marker lists files that are all there at their sizes."""
    for folder in sorted((run_dir / "checkpoints").glob("step-*"), reverse=True):
        marker = folder / MARKER
        try:
            manifest = json.loads(marker.read_text())
            if all((folder / name).stat().st_size == size for name, size in manifest["files"].items()):
                return folder
        except (OSError, ValueError, KeyError):
            pass
        if dist.get_rank() == 0:
            print(f"warning: skipping {folder}: no valid {MARKER} marker (interrupted save?)", flush=True)
    return None


class Trainer:
    def __init__(self, config: TrainConfig):
        self.config = config
        self.info = read_data_info(config.data_prefix)
        check_indexed_dataset(config.data_prefix)
        self.on_gpu = setup_distributed(config)
        self.run_dir = prepare_run_dir(config, self.info)
        self.dp_group = parallel_state.get_data_parallel_group(with_context_parallel=True)
        self.dp_rank = parallel_state.get_data_parallel_rank()
        self.dp_size = parallel_state.get_data_parallel_world_size()
        model = build_model(config, self.info["vocab_size"], self.on_gpu)
        self.engine = GpuEngine(model, config) if self.on_gpu else CpuEngine(model, config)
        self.dataset = build_train_dataset(config, self.info, self.run_dir / "data-cache")
        self.step = 0
        self.flops_per_token = flops_per_token(config.model, self.info["vocab_size"])
        self.peak_tflops = gpu_peak_tflops() if self.on_gpu else cpu_gemm_peak_tflops()
        self.metrics = (self.run_dir / "metrics.jsonl").open("a") if dist.get_rank() == 0 else None

    def log(self, record: dict, line: str | None = None) -> None:
        if self.metrics is None:
            return
        self.metrics.write(json.dumps(record) + "\n")
        self.metrics.flush()
        if line:
            print(line, flush=True)

    def restore(self) -> None:
        folder = latest_checkpoint(self.run_dir)
        if folder is None:
            self.log({"event": "start", "step": 0, "world_size": dist.get_world_size()})
            return
        with checkpointing_on_cpu():
            state = dist_checkpointing.load(self.engine.sharded_state_dict(is_loading=True), str(folder))
        self.engine.load_state_dict(state)
        self.step = int(state["step"])
        self.log({"event": "resume", "step": self.step, "from": folder.name}, f"resumed from {folder}")

    def save(self) -> None:
        """dist_checkpointing into a temporary folder, renamed when every rank is done, then marked."""
        final = self.run_dir / "checkpoints" / f"step-{self.step:08d}"
        tmp = final.with_name(f".{final.name}.tmp")
        if dist.get_rank() == 0:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(final, ignore_errors=True)
            tmp.mkdir(parents=True)
        dist.barrier()
        state = self.engine.sharded_state_dict()
        state["step"] = self.step
        state["config"] = self.config.to_json()
        with checkpointing_on_cpu():
            dist_checkpointing.save(state, str(tmp))
        dist.barrier()
        if dist.get_rank() == 0:
            tmp.rename(final)
            files = {
                str(p.relative_to(final)): p.stat().st_size for p in sorted(final.rglob("*")) if p.is_file()
            }
            write_json(final / MARKER, {"step": self.step, "files": files})
            self.log({"event": "checkpoint", "step": self.step, "path": str(final)})
        dist.barrier()

    def train_step(self) -> tuple[float, float]:
        batches = micro_batches(self.dataset, self.config, self.step, self.dp_rank, self.dp_size)
        loss, grad_norm = self.engine.train_step(batches)
        self.step += 1
        return loss, grad_norm

    def run(self) -> dict:
        self.restore()
        config = self.config
        tokens_per_step = config.global_batch_size * config.model.seq_length
        window_start, window_steps = time.perf_counter(), 0
        while self.step < config.max_steps:
            loss, grad_norm = self.train_step()
            window_steps += 1
            if self.step % config.log_every == 0 or self.step == config.max_steps:
                self._log_step(
                    loss, grad_norm, tokens_per_step, window_steps, time.perf_counter() - window_start
                )
                window_start, window_steps = time.perf_counter(), 0
            if config.save_every and self.step % config.save_every == 0 and self.step < config.max_steps:
                self.save()
                window_start, window_steps = time.perf_counter(), 0  # the save is not a step's time
        self.save()
        return self.summary()

    def _log_step(self, loss, grad_norm, tokens_per_step, steps, seconds) -> None:
        """Cross-rank reduction only here: the loss averaged over data-parallel (and CP) ranks."""
        loss = loss.detach().clone().reshape(1).float()
        dist.all_reduce(loss, group=self.dp_group)
        loss = float(loss) / dist.get_world_size(self.dp_group)
        step_time = seconds / steps
        tokens_per_s = tokens_per_step / step_time / dist.get_world_size()  # per device
        tflops = tokens_per_s * self.flops_per_token / 1e12
        mem = torch.cuda.max_memory_allocated() / 2**30 if self.on_gpu else _rss_gib()
        record = {
            "step": self.step,
            "loss": round(loss, 6),
            "tokens_per_s": round(tokens_per_s, 1),
            "tflops": round(tflops, 4),
            "mfu_pct": round(100 * tflops / self.peak_tflops, 2),
            "mem_gib": round(mem, 3),
            "step_time_s": round(step_time, 4),
            "lr": self.engine.optimizer.param_groups[0]["lr"],
            "grad_norm": round(grad_norm, 4),
        }
        self.last = record
        self.log(
            record,
            f"step {self.step:>6} | loss {loss:.4f} | {tokens_per_s:,.0f} tokens/s/device | "
            f"{tflops:.3f} TFLOP/s | MFU {record['mfu_pct']:.1f}% | {step_time:.3f} s/step",
        )

    def summary(self) -> dict:
        result = {
            "event": "summary",
            "step": self.step,
            "loss": getattr(self, "last", {}).get("loss"),
            "world_size": dist.get_world_size(),
            "layout": dataclasses.asdict(self.config.parallel),
            "device": "cuda" if self.on_gpu else "cpu",
            "peak_tflops": self.peak_tflops,
        }
        if dist.get_rank() == 0:
            write_json(self.run_dir / "result.json", result)
        self.log(result, f"summary: step {self.step} loss {result['loss']} (run folder {self.run_dir})")
        return result


def _rss_gib() -> float:
    import resource  # noqa: PLC0415 - POSIX only

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def train(config: TrainConfig) -> dict:
    trainer = Trainer(config)
    try:
        return trainer.run()
    finally:
        if trainer.metrics is not None:
            trainer.metrics.close()
        dist.barrier()
        parallel_state.destroy_model_parallel()
        dist.destroy_process_group()
