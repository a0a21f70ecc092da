"""Training options that must not change the numbers (activation checkpointing), and the GPU path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

FOLDER = Path(__file__).resolve().parents[1]
SHORT = ["--preset", "tiny", "--max-steps", "5", "--checkpoint-every", "5", "--val-every", "0"]


def losses(run_dir: Path) -> list[float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r["loss"] for r in map(json.loads, lines) if "loss" in r]


def train(run_dir: Path, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "src/train.py", "--run-dir", str(run_dir), *SHORT, *args],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_activation_checkpointing_recomputes_the_same_numbers(run_dir):
    train(run_dir / "plain")
    train(run_dir / "checkpointed", "--activation-checkpointing")
    assert losses(run_dir / "checkpointed") == losses(run_dir / "plain")


@pytest.mark.gpu
@pytest.mark.slow
def test_bf16_nccl_run_on_gpus_reports_mfu_against_the_data_sheet(run_dir):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device; runs on a GPU machine")
    gpus = torch.cuda.device_count()
    command = [
        str(Path(sys.executable).parent / "torchrun"),
        "--nproc-per-node",
        str(gpus),
        "src/train.py",
        "--preset",
        "llama3_2_1b",
        "--num-layers",
        "4",
        "--seq-len",
        "2048",
        "--max-steps",
        "20",
        "--checkpoint-every",
        "20",
        "--val-every",
        "0",
        "--compile",
        "--run-dir",
        str(run_dir),
    ]
    result = subprocess.run(command, cwd=FOLDER, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    start = next(r for r in records if r.get("event") == "start")
    assert "dense bf16 data sheet" in start["peak_source"]
    summary = json.loads((run_dir / "result.json").read_text())
    assert 0 < summary["mfu_pct"] < 100


def test_cpu_offload_without_a_gpu_is_a_clear_error(run_dir):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: offload is valid here")
    result = subprocess.run(
        [sys.executable, "src/train.py", "--run-dir", str(run_dir), *SHORT, "--cpu-offload"],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: --cpu-offload moves sharded parameters from GPU to host memory and "
        "needs a GPU; drop --cpu-offload on CPU"
    )
