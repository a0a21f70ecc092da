"""Training on CPU over gloo, in three 2-rank torchrun worlds: TP=1 x DP=2, TP=2 x DP=1, and TP=2's
step-6 dist_checkpointing checkpoint resumed at TP=1 x DP=2.

- TP=2 gives TP=1's loss at the first step (CPU initialisation draws the same full weights) and stays
  within 1e-4 of it (the sharded matmuls and reductions differ only in summation order);
- the loss goes down;
- the resumed, resharded run repeats the uninterrupted runs' losses for steps 7-12 (within 1e-5: a lost
  optimizer state or schedule step shows at once) and writes the run folder records.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.framework,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Transformer Engine and Apex are not installed:UserWarning"),
]

FOLDER = Path(__file__).resolve().parents[1]
TORCHRUN = Path(sys.executable).parent / "torchrun"
STEPS = ["--max-steps", "12", "--save-every", "6", "--warmup-steps", "2"]
METRICS_KEYS = {"step", "loss", "tokens_per_s", "tflops", "mfu_pct", "mem_gib", "step_time_s"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def data_prefix(tmp_path_factory) -> str:
    from prepare_data import main as prepare  # noqa: PLC0415
    from sample_data import main as sample  # noqa: PLC0415

    folder = tmp_path_factory.mktemp("data")
    assert sample(["--output", str(folder)]) == 0
    args = ["--input", str(folder / "sample.jsonl"), "--tokenizer", str(folder / "tokenizer")]
    assert prepare([*args, "--output-prefix", str(folder / "corpus"), "--workers", "2", "--no-progress"]) == 0
    return str(folder / "corpus")


def launch(run_dir: Path, data_prefix: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    command = [
        str(TORCHRUN), "--nproc-per-node", "2", "--rdzv-backend", "c10d",
        "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "src/train.py", "--preset", "tiny",
        "--data-prefix", data_prefix, "--run-dir", str(run_dir), *STEPS, *args,
    ]  # fmt: skip
    return subprocess.Popen(
        command, cwd=FOLDER, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(process: subprocess.Popen, run_dir: Path) -> list[dict]:
    output, _ = process.communicate(timeout=240)
    assert process.returncode == 0, output[-4000:]
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def train(run_dir: Path, data_prefix: str, *args: str) -> list[dict]:
    return finish(launch(run_dir, data_prefix, *args), run_dir)


def losses(records: list[dict]) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in records if "event" not in r}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, data_prefix) -> tuple[Path, Path]:
    """TP=1 x DP=2 and TP=2, launched together: each world spends most of its time importing."""
    root = tmp_path_factory.mktemp("runs")
    dp, tp = launch(root / "dp2", data_prefix), launch(root / "tp2", data_prefix, "--tensor-parallel", "2")
    finish(dp, root / "dp2")
    finish(tp, root / "tp2")
    return root / "dp2", root / "tp2"


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_tensor_parallel_matches_data_parallel_and_loss_goes_down(two_runs):
    dp_dir, tp_dir = two_runs
    dp, tp = losses(read_metrics(dp_dir)), losses(read_metrics(tp_dir))
    assert sorted(dp) == sorted(tp) == list(range(1, 13))
    assert tp[1] == dp[1]
    assert max(abs(tp[s] - dp[s]) for s in dp) < 1e-4
    assert dp[12] < dp[1] - 0.3
    ranks = [json.loads(p.read_text()) for p in sorted((tp_dir / "ranks").glob("rank*.json"))]
    assert [(r["tp_rank"], r["dp_rank"]) for r in ranks] == [(0, 0), (1, 0)]


def test_a_tp2_checkpoint_resumes_at_tp1_on_the_same_trajectory(two_runs, data_prefix, tmp_path):
    """dist_checkpointing reshards on load: TP=2's step-6 checkpoint (model and AdamW moments) continues
    at TP=1 x DP=2 with the losses both uninterrupted runs had."""
    dp_dir, tp_dir = two_runs
    resumed_dir = tmp_path / "resumed"
    shutil.copytree(tp_dir, resumed_dir)
    shutil.rmtree(resumed_dir / "checkpoints" / "step-00000012")
    (resumed_dir / "metrics.jsonl").unlink()
    records = train(resumed_dir, data_prefix)  # no --tensor-parallel: TP=1 x DP=2
    assert next(r for r in records if r.get("event") == "resume")["step"] == 6
    after = losses(records)
    assert sorted(after) == list(range(7, 13))
    for uninterrupted in (losses(read_metrics(tp_dir)), losses(read_metrics(dp_dir))):
        assert max(abs(after[s] - uninterrupted[s]) for s in after) < 1e-5
    assert all(r.keys() >= METRICS_KEYS for r in records if "event" not in r)
    result = json.loads((resumed_dir / "result.json").read_text())
    assert result["step"] == 12 and result["layout"]["tensor_parallel"] == 1
    marker = json.loads((resumed_dir / "checkpoints" / "step-00000012" / "COMPLETE").read_text())
    assert marker["step"] == 12 and ".metadata" in marker["files"]
