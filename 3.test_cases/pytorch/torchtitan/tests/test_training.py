"""torchtitan's real train loop (torchtitan.train) on its debug model: on CPU with 2 gloo ranks through the
shims of tests/titan_cpu.py, and on GPUs (``gpu``) the Llama 3.1 8B with torchtitan's own MFU. Both run in
the torchtitan nox session (framework-marked)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from titan_paths import FOLDER, run_python

pytestmark = pytest.mark.framework
TORCHRUN = str(Path(sys.executable).parent / "torchrun")
SHIMS = Path(__file__).resolve().parent / "titan_cpu.py"


def torchrun(entry: list[str], run_dir: Path, nproc: int, *args: str) -> subprocess.CompletedProcess:
    """torchrun of ``entry`` with the aws_llama3 presets importable, in ``run_dir`` (where assets/ is)."""
    command = [TORCHRUN, "--nproc-per-node", str(nproc)]
    command += ["--standalone", "--local-ranks-filter", "0", *entry]
    command += ["--module", "aws_llama3", *args, "--dump_folder", str(run_dir / "out")]
    env = {**os.environ, "PYTHONPATH": str(FOLDER / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, cwd=run_dir, env=env, capture_output=True, text=True, check=False)


def make_assets(run_dir: Path) -> None:
    result = run_python(str(FOLDER / "src" / "make_tiny_assets.py"), cwd=run_dir)
    assert result.returncode == 0, result.stderr


def metrics(run_dir: Path) -> list[dict]:
    result = run_python(str(FOLDER / "src" / "metrics_jsonl.py"), str(run_dir / "out"))
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in (run_dir / "out" / "metrics.jsonl").read_text().splitlines()]


def test_every_shim_is_still_needed():
    """A shim whose reason is gone fails here, by name: delete it from tests/titan_cpu.py. (The probes
    only look: the shims themselves are applied in the smoke's ranks, never in this process.)"""
    import titan_cpu  # noqa: PLC0415

    needed = {name: probe() for name, (_, probe) in titan_cpu.SHIMS.items()}
    assert len(needed) == 4
    assert all(needed.values()), f"no longer needed, remove from tests/titan_cpu.py: {needed}"


@pytest.mark.slow
def test_debug_model_trains_on_two_gloo_ranks_and_checkpoints(tmp_path):
    make_assets(tmp_path)
    steps = ["--training.steps", "4", "--training.seq_len", "256", "--training.local_batch_size", "2"]
    result = torchrun([str(SHIMS)], tmp_path, 2, "--config", "tiny", *steps, "--checkpoint.interval", "4")
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    records = metrics(tmp_path)
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    losses = [r["loss"] for r in records]
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0], losses
    assert {"tokens_per_s", "tflops", "step_time_s", "mem_gib"} <= set(records[-1])
    checkpoint = tmp_path / "out" / "checkpoint" / "step-4"
    shards = sorted(p.name for p in checkpoint.iterdir())
    assert shards == [".metadata", "__0_0.distcp", "__1_0.distcp"], shards  # one shard per rank (FSDP)


@pytest.mark.gpu
@pytest.mark.slow
def test_llama3_8b_steps_report_mfu_on_gpus(tmp_path):
    """Llama 3.1 8B (the llama3_8b_fsdp preset) for 10 steps, FSDP over every local GPU, with shortened
    sequences and the tiny tokenizer (no Hub access needed); torchtitan's own MFU from its TensorBoard."""
    import torch  # noqa: PLC0415

    if torch.cuda.device_count() < 2:
        # fp32 master weights, gradients and Adam state of 8 B parameters: ~128 GB before activations.
        pytest.skip("needs 2 or more CUDA GPUs (the 8B's sharded state); runs on a GPU machine")
    make_assets(tmp_path)
    overrides = ["--hf_assets_path", "assets/tiny", "--dataloader.dataset", "c4_test"]
    overrides += ["--dataloader.dataset_path", "assets/tiny/c4_test", "--training.steps", "10"]
    overrides += ["--training.seq_len", "2048", "--metrics.log_freq", "1", "--checkpoint.no-enable"]
    result = torchrun(
        ["-m", "torchtitan.train"],
        tmp_path,
        torch.cuda.device_count(),
        "--config",
        "llama3_8b_fsdp",
        *overrides,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    records = metrics(tmp_path)
    assert len(records) == 10 and all(math.isfinite(r["loss"]) for r in records)
    steady = records[-1]
    assert 1 < steady["mfu_pct"] < 100, steady
    print(f"llama3_8b_fsdp on {torch.cuda.get_device_name()}: {json.dumps(steady)}")
