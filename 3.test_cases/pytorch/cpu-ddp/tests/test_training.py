"""Training for real, as users run it: torchrun with 2 gloo ranks, kills, resumes and bad input.

Each torchrun launch costs seconds of imports, so several assertions share one run
(the module-scoped ``reference_run``), which is also the uninterrupted baseline for the kill test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.ports import free_port

TEST_CASE_DIR = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DIGITS_ARGS = ["--preset", "digits", "--checkpoint-every", "100", "--keep-checkpoints", "2"]


def torchrun(run_dir: Path, *args: str, max_restarts: int = 0) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node 2`` on ddp.py with an explicit c10d endpoint (gloo restarts need it)."""
    command = [
        str(BIN / "torchrun"),
        "--nproc-per-node",
        "2",
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"127.0.0.1:{free_port()}",
        "--max-restarts",
        str(max_restarts),
        "ddp.py",
        "--run-dir",
        str(run_dir),
        *args,
    ]
    return subprocess.run(
        command, cwd=TEST_CASE_DIR, capture_output=True, text=True, timeout=300, check=False
    )


def python_ddp(*args: str) -> subprocess.CompletedProcess:
    """One process, no torchrun: how a user tries the script first."""
    return subprocess.run(
        [sys.executable, "ddp.py", *args],
        cwd=TEST_CASE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def step_losses(run_dir: Path) -> dict[int, float]:
    """Loss per step; a step trained twice (after a resume) keeps its last value."""
    return {r["step"]: r["loss"] for r in records(run_dir) if "loss" in r and "event" not in r}


@pytest.fixture(scope="module")
def reference_run(artifacts_root) -> Path:
    """``make local`` as the README shows it: the digits preset on 2 ranks, the uninterrupted baseline."""
    run_dir = artifacts_root / "cpu-ddp-reference"
    args = " ".join([*DIGITS_ARGS[2:], "--record-samples", "--min-accuracy", "0.9"])
    command = [
        "make",
        "local",
        f"VENV={BIN.parent}",
        f"RUN_DIR={run_dir}",
        "PRESET=digits",
        f"RDZV_PORT={free_port()}",
        f"ARGS={args}",
    ]
    result = subprocess.run(
        command, cwd=TEST_CASE_DIR, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "held-out accuracy" in result.stdout
    return run_dir


def test_two_ranks_train_to_held_out_accuracy(reference_run):
    result = json.loads((reference_run / "result.json").read_text())
    assert result["world_size"] == 2
    assert result["accuracy"] >= 0.9
    losses = step_losses(reference_run)
    assert sorted(losses) == list(range(1, 401))
    first, last = [losses[s] for s in range(1, 21)], [losses[s] for s in range(381, 401)]
    assert sum(last) / 20 < 0.3 * (sum(first) / 20)
    step = records(reference_run)[0]
    assert {"step", "epoch", "loss", "lr", "samples_per_s", "step_time_s", "mem_gib"} <= step.keys()
    assert 0 < step["mem_gib"] < 8
    config = json.loads((reference_run / "config.json").read_text())
    assert config["preset"] == "digits" and config["checkpoint_every"] == 100


def test_ranks_see_disjoint_samples(reference_run):
    seen = {}
    for rank in (0, 1):
        lines = (reference_run / "samples" / f"rank{rank}.jsonl").read_text().splitlines()
        seen[rank] = {json.loads(line)["step"]: set(json.loads(line)["indices"]) for line in lines}
    assert seen[0].keys() == seen[1].keys() == set(range(1, 401))
    for step in seen[0]:
        assert len(seen[0][step]) == 32 and not seen[0][step] & seen[1][step], step
    # Within one epoch the ranks cover disjoint halves of the data: no sample twice.
    steps_per_epoch = 21  # 1348 train samples / 2 ranks // 32
    epoch0 = [seen[r][s] for r in (0, 1) for s in range(1, steps_per_epoch + 1)]
    assert len(set().union(*epoch0)) == sum(len(batch) for batch in epoch0)


def test_checkpoints_are_complete_and_pruned(reference_run):
    folders = sorted(p.name for p in (reference_run / "checkpoints").iterdir())
    assert folders == ["step-00000300", "step-00000400"]
    for name in folders:
        folder = reference_run / "checkpoints" / name
        assert json.loads((folder / "COMPLETE").read_text())["world_size"] == 2
        assert {"state.pt", "rng-rank0.pt", "rng-rank1.pt"} <= {p.name for p in folder.iterdir()}
    ranks = [json.loads((reference_run / "ranks" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1] and ranks[0]["run_id"] == ranks[1]["run_id"]


def test_killed_rank_restarts_and_ends_like_uninterrupted_run(reference_run, run_dir):
    result = torchrun(run_dir, *DIGITS_ARGS, "--fault-kill-at-step", "1:250", max_restarts=1)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "fault injection: SIGKILL rank 1 at step 250" in result.stdout
    resumes = [r for r in records(run_dir) if r.get("event") == "resume"]
    assert [r["step"] for r in resumes] == [200]
    assert json.loads((run_dir / "result.json").read_text()) == json.loads(
        (reference_run / "result.json").read_text()
    )
    # The resumed trajectory is the uninterrupted one, bit for bit.
    assert step_losses(run_dir) == step_losses(reference_run)
    rank1 = json.loads((run_dir / "ranks" / "rank1.json").read_text())
    assert rank1["restart_count"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "nope"], "error: unknown preset 'nope'; choose one of: tiny, digits, wide"),
        (["--batch-size", "0"], "error: --batch-size=0 must be a positive integer"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(args, message, run_dir):
    result = python_ddp(*args, "--run-dir", str(run_dir / "run"))
    assert result.returncode == 2
    assert result.stderr.strip() == message
    assert not (run_dir / "run").exists()


def test_unwritable_checkpoint_folder_fails_every_rank(run_dir):
    blocker = run_dir / "a-file"
    blocker.write_text("not a folder")
    result = torchrun(run_dir / "run", "--preset", "tiny", "--checkpoint-dir", str(blocker / "checkpoints"))
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    # Every rank stops with the same line (torchrun may end the second before it prints); none hangs.
    assert 1 <= len(errors) <= 2 and len(set(errors)) == 1, result.stderr[-2000:]
    assert f"folder {blocker / 'checkpoints'} is not writable" in errors[0]
    assert "pass a writable --run-dir / --checkpoint-dir" in errors[0]


def test_corrupt_and_incomplete_checkpoints_are_skipped(run_dir):
    first = python_ddp("--preset", "tiny", "--run-dir", str(run_dir))
    assert first.returncode == 0, first.stderr[-2000:]
    original = step_losses(run_dir)
    checkpoints = run_dir / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == [
        "step-00000020",
        "step-00000040",
        "step-00000060",
    ]
    state = checkpoints / "step-00000060" / "state.pt"
    state.write_bytes(state.read_bytes()[:1000])  # truncated, marker still present
    (checkpoints / "step-00000070").mkdir()  # a save that died before its marker

    second = python_ddp("--preset", "tiny", "--run-dir", str(run_dir))
    assert second.returncode == 0, second.stderr[-2000:]
    warnings = [line for line in second.stderr.splitlines() if line.startswith("warning:")]
    assert any("skipping incomplete checkpoint" in w and "step-00000070" in w for w in warnings)
    assert any("skipping corrupt checkpoint" in w and "step-00000060" in w for w in warnings)
    assert f"resumed from {checkpoints / 'step-00000040'} at step 40" in second.stdout
    assert step_losses(run_dir) == original  # steps 41..60 retrained identically

    explicit = python_ddp(
        "--preset", "tiny", "--run-dir", str(run_dir), "--resume", str(checkpoints / "step-00000070")
    )
    assert explicit.returncode == 2
    assert (
        explicit.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: --resume {checkpoints / 'step-00000070'} is not")
    )


def test_single_process_run_without_torchrun_writes_only_its_run_dir(run_dir):
    """`python ddp.py` without torchrun works (world size 1) and leaves no stray files in the folder."""
    before = sorted(TEST_CASE_DIR.rglob("*"))  # a developer's own runs/ may exist: compare, don't assume
    result = python_ddp("--preset", "tiny", "--max-steps", "5", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((run_dir / "result.json").read_text())["world_size"] == 1
    after = [p for p in sorted(TEST_CASE_DIR.rglob("*")) if "__pycache__" not in p.parts]
    assert after == [p for p in before if "__pycache__" not in p.parts]
