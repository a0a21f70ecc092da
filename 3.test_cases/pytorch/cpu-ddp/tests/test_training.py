"""Training for real, as users run it: torchrun with 2 gloo ranks, kills, resumes, metrics and bad input.

Each launch costs seconds of imports, so several assertions share one run: the module-scoped
``reference_run`` (2 ranks, ``digits``, every step logged) is also the uninterrupted baseline of the
kill test, and ``tiny_run`` (one process, ``tiny``) the baseline of the log-step and checkpoint tests.
"""

from __future__ import annotations

import errno
import json
import resource
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from cpu_ddp.atomic_checkpoint import save_failure
from cpu_ddp.model import build_model, flops_per_sample

from testbed.ports import free_port

TEST_CASE_DIR = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DIGITS_ARGS = ["--preset", "digits", "--checkpoint-every", "100", "--keep-checkpoints", "2"]
STEP_KEYS = {"step", "loss", "samples_per_s", "tflops", "mfu_pct", "mem_gib", "step_time_s", "lr", "epoch"}


def torchrun(run_dir: Path, *args: str, max_restarts: int = 0) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node 2 src/train.py`` with an explicit c10d endpoint (gloo restarts need it)."""
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
        "src/train.py",
        "--run-dir",
        str(run_dir),
        *args,
    ]
    return subprocess.run(
        command, cwd=TEST_CASE_DIR, capture_output=True, text=True, timeout=300, check=False
    )


def python_train(*args: str) -> subprocess.CompletedProcess:
    """One process, no torchrun: how a user tries the script first."""
    return subprocess.run(
        [sys.executable, "src/train.py", *args],
        cwd=TEST_CASE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def events(run_dir: Path, name: str) -> list[dict]:
    return [r for r in records(run_dir) if r.get("event") == name]


def step_losses(run_dir: Path) -> dict[int, float]:
    """Loss per logged step; a step trained twice (after a resume) keeps its last value."""
    return {r["step"]: r["loss"] for r in records(run_dir) if "event" not in r}


@pytest.fixture(scope="module")
def reference_run(artifacts_root) -> tuple[Path, str]:
    """``make local`` as the README shows it: digits on 2 ranks, the uninterrupted baseline.

    Returns the run folder and the run's stdout."""
    run_dir = artifacts_root / "cpu-ddp-reference"
    args = " ".join([*DIGITS_ARGS[2:], "--record-samples", "--min-accuracy", "0.9", "--log-every", "1"])
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
    return run_dir, result.stdout


@pytest.fixture(scope="module")
def tiny_run(artifacts_root) -> Path:
    """``python src/train.py --preset tiny``: one process, every step logged, checkpoints at 20, 40, 60."""
    run_dir = artifacts_root / "cpu-ddp-tiny"
    result = python_train("--preset", "tiny", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr[-2000:]
    return run_dir


def test_two_ranks_train_to_held_out_accuracy(reference_run):
    run_dir, _ = reference_run
    result = json.loads((run_dir / "result.json").read_text())
    assert result["world_size"] == 2
    assert result["accuracy"] >= 0.9
    losses = step_losses(run_dir)
    assert sorted(losses) == list(range(1, 401))
    first, last = [losses[s] for s in range(1, 21)], [losses[s] for s in range(381, 401)]
    assert sum(last) / 20 < 0.3 * (sum(first) / 20)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["preset"] == "digits" and config["checkpoint_every"] == 100


def test_flops_per_sample_is_six_times_all_parameters():
    model = build_model(64, (128, 64), 10, seed=0)
    parameters = (64 * 128 + 128) + (128 * 64 + 64) + (64 * 10 + 10)
    assert flops_per_sample(model) == 6 * parameters == 6 * 17226


def test_metrics_carry_the_contract_keys_and_an_mfu(reference_run):
    run_dir, stdout = reference_run
    [start] = events(run_dir, "start")
    assert start["world_size"] == 2 and start["params"] == 17226
    assert start["flops_per_sample"] == 6 * start["params"]
    assert start["peak_tflops"] > 0 and start["peak_source"].startswith("measured fp32 GEMM")
    steps = [r for r in records(run_dir) if "event" not in r]
    for record in steps:
        assert set(record) == STEP_KEYS, record
        assert record["samples_per_s"] > 0 and record["step_time_s"] > 0
        assert 0 < record["mem_gib"] < 8
        assert record["tflops"] == pytest.approx(record["samples_per_s"] * start["flops_per_sample"] / 1e12)
        assert 0 < record["mfu_pct"] == pytest.approx(100 * record["tflops"] / start["peak_tflops"])
    # Per device: each of the 2 ranks trains its 32 samples per step.
    assert steps[-1]["samples_per_s"] == pytest.approx(32 / steps[-1]["step_time_s"])
    assert [r["step"] for r in events(run_dir, "checkpoint")] == [100, 200, 300, 400]
    [summary] = events(run_dir, "summary")
    assert summary == json.loads((run_dir / "result.json").read_text())
    assert summary["mfu_pct"] > 0 and summary["samples_per_s"] > 0
    assert summary["final_loss"] == steps[-1]["loss"]
    [evaluation] = events(run_dir, "eval")
    assert evaluation["accuracy"] == summary["accuracy"] and evaluation["test_samples"] == 449
    # stdout carries human lines only; the numbers are in metrics.jsonl.
    assert not [line for line in stdout.splitlines() if line.lstrip().startswith("{")]
    assert "step   400 | loss " in stdout and "MFU " in stdout


def test_ranks_see_disjoint_samples(reference_run):
    run_dir, _ = reference_run
    seen = {}
    for rank in (0, 1):
        lines = (run_dir / "samples" / f"rank{rank}.jsonl").read_text().splitlines()
        seen[rank] = {json.loads(line)["step"]: set(json.loads(line)["indices"]) for line in lines}
    assert seen[0].keys() == seen[1].keys() == set(range(1, 401))
    for step in seen[0]:
        assert len(seen[0][step]) == 32 and not seen[0][step] & seen[1][step], step
    # Within one epoch the ranks cover disjoint halves of the data: no sample twice.
    steps_per_epoch = 21  # 1348 train samples / 2 ranks // 32
    epoch0 = [seen[r][s] for r in (0, 1) for s in range(1, steps_per_epoch + 1)]
    assert len(set().union(*epoch0)) == sum(len(batch) for batch in epoch0)


def test_checkpoints_are_complete_and_pruned(reference_run):
    run_dir, _ = reference_run
    folders = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert folders == ["step-00000300", "step-00000400"]
    for name in folders:
        folder = run_dir / "checkpoints" / name
        marker = json.loads((folder / "COMPLETE").read_text())
        assert marker["world_size"] == 2
        # The manifest lists every file, its size and CRC-32; only rank 0 writes the (identical) DDP state.
        assert marker["files"] == {
            p.name: {"size": p.stat().st_size, "crc32": f"{zlib.crc32(p.read_bytes()):08x}"}
            for p in folder.iterdir()
            if p.name != "COMPLETE"
        }
        assert set(marker["files"]) == {"state.pt", "rng-rank0.pt", "rng-rank1.pt"}
    ranks = [json.loads((run_dir / "ranks" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1] and ranks[0]["run_id"] == ranks[1]["run_id"]


def test_killed_rank_restarts_and_ends_like_uninterrupted_run(reference_run, run_dir):
    """Also the 2-rank log-step check: default --log-every 10 against the reference's --log-every 1."""
    reference, _ = reference_run
    result = torchrun(run_dir, *DIGITS_ARGS, "--fault-kill-at-step", "1:250", max_restarts=1)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "fault injection: SIGKILL rank 1 at step 250" in result.stdout
    assert [r["step"] for r in events(run_dir, "resume")] == [200]
    # Records only on log steps, in both attempts; each one's loss (the mean over both ranks) is the
    # reference's at that step: the resumed trajectory is the uninterrupted one, bit for bit.
    assert all(r["step"] % 10 == 0 for r in records(run_dir) if "event" not in r)
    losses = step_losses(run_dir)
    assert sorted(losses) == list(range(10, 401, 10))
    assert losses == {step: loss for step, loss in step_losses(reference).items() if step in losses}
    outcome = ("step", "world_size", "final_loss", "accuracy", "test_samples")
    expected = json.loads((reference / "result.json").read_text())
    assert {k: json.loads((run_dir / "result.json").read_text())[k] for k in outcome} == {
        k: expected[k] for k in outcome
    }
    rank1 = json.loads((run_dir / "ranks" / "rank1.json").read_text())
    assert rank1["restart_count"] == 1


def test_log_every_records_log_steps_and_the_last(tiny_run, run_dir):
    result = python_train("--preset", "tiny", "--log-every", "7", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr[-2000:]
    losses = step_losses(run_dir)
    assert sorted(losses) == [7, 14, 21, 28, 35, 42, 49, 56, 60]  # 60: the final step, always logged
    every_step = step_losses(tiny_run)
    assert sorted(every_step) == list(range(1, 61))
    assert losses == {step: every_step[step] for step in losses}
    human = [line for line in result.stdout.splitlines() if line.startswith("step ")]
    assert [int(line.split()[1]) for line in human] == sorted(losses)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "nope"], "error: unknown preset 'nope'; choose one of: tiny, digits, wide"),
        (["--batch-size", "0"], "error: --batch-size=0 must be a positive integer"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(args, message, run_dir):
    result = python_train(*args, "--run-dir", str(run_dir / "run"))
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


def test_interrupted_save_and_manifest_mismatch_are_skipped(tiny_run, run_dir):
    """Killed inside the step-60 save (after the rename, before the marker), then step 40's state is
    truncated: resume skips both, each with a warning, and continues from step 20 on the same losses."""
    killed = python_train("--preset", "tiny", "--run-dir", str(run_dir), "--fault-kill-in-checkpoint", "60")
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert "fault injection: SIGKILL rank 0 inside the step 60 checkpoint" in killed.stdout
    checkpoints = run_dir / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == [
        "step-00000020",
        "step-00000040",
        "step-00000060",
    ]
    assert not (checkpoints / "step-00000060" / "COMPLETE").exists()
    state = checkpoints / "step-00000040" / "state.pt"
    size = state.stat().st_size
    state.write_bytes(state.read_bytes()[:1000])  # truncated; its marker is still there

    resumed = python_train("--preset", "tiny", "--run-dir", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    warnings = [line for line in resumed.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: skipping checkpoint {checkpoints / 'step-00000060'}: no COMPLETE marker: the save was "
        "interrupted",
        f"warning: skipping checkpoint {checkpoints / 'step-00000040'}: state.pt has 1000 bytes, the "
        f"manifest says {size}",
    ]
    assert f"resumed from {checkpoints / 'step-00000020'} at step 20" in resumed.stdout
    assert step_losses(run_dir) == step_losses(tiny_run)  # steps 21..60 retrained identically

    # The resumed run wrote step 40 again; a checkpoint named explicitly must check out too.
    state.write_bytes(state.read_bytes()[:1000])
    explicit = python_train(
        "--preset", "tiny", "--run-dir", str(run_dir), "--resume", str(checkpoints / "step-00000040")
    )
    assert explicit.returncode == 2
    assert (
        explicit.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: --resume {checkpoints / 'step-00000040'} is not a complete, readable checkpoint")
    )


def test_single_process_run_without_torchrun_writes_only_its_run_dir(run_dir):
    """`python src/train.py` without torchrun works (world size 1) and leaves no stray files in the folder."""
    before = sorted(TEST_CASE_DIR.rglob("*"))  # a developer's own runs/ may exist: compare, don't assume
    result = python_train("--preset", "tiny", "--max-steps", "5", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((run_dir / "result.json").read_text())["world_size"] == 1
    after = [p for p in sorted(TEST_CASE_DIR.rglob("*")) if "__pycache__" not in p.parts]
    assert after == [p for p in before if "__pycache__" not in p.parts]


def test_a_flipped_byte_is_caught_by_the_checksum_and_resume_falls_back(tiny_run, run_dir):
    """Same size, one byte different: the manifest's CRC-32 catches what a size check cannot."""
    shutil.copytree(tiny_run / "checkpoints", run_dir / "checkpoints")
    state = run_dir / "checkpoints" / "step-00000060" / "state.pt"
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 0x01
    state.write_bytes(bytes(data))
    resumed = python_train("--preset", "tiny", "--run-dir", str(run_dir), "--max-steps", "60")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    warnings = [line for line in resumed.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and warnings[0].startswith(
        f"warning: skipping checkpoint {state.parent}: state.pt has CRC-32 "
    ), resumed.stderr
    assert warnings[0].endswith("(a damaged file)")
    assert f"resumed from {run_dir / 'checkpoints' / 'step-00000040'} at step 40" in resumed.stdout
    assert step_losses(run_dir) == {s: v for s, v in step_losses(tiny_run).items() if s > 40}


def test_a_save_that_cannot_be_written_is_one_line_and_the_previous_checkpoint_stays(tiny_run, run_dir):
    """A file-size limit below the checkpoint's size makes the step-80 save fail as a full disk would."""
    shutil.copytree(tiny_run / "checkpoints", run_dir / "checkpoints")
    shutil.copy(tiny_run / "metrics.jsonl", run_dir / "metrics.jsonl")
    limit = (run_dir / "checkpoints" / "step-00000060" / "state.pt").stat().st_size - 1
    result = subprocess.run(
        [sys.executable, "src/train.py", "--preset", "tiny", "--run-dir", str(run_dir), "--max-steps", "80"],
        cwd=TEST_CASE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)),
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    checkpoints = run_dir / "checkpoints"
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("error: ") and lines[0].endswith(
        f"writing checkpoint step-00000080 to {checkpoints}; step-00000060 is intact"
    )
    assert sorted(p.name for p in checkpoints.iterdir()) == [
        "step-00000020",
        "step-00000040",
        "step-00000060",
    ]
    resumed = python_train("--preset", "tiny", "--run-dir", str(run_dir), "--max-steps", "60")
    assert resumed.returncode == 0 and "resumed from" in resumed.stdout, resumed.stderr[-2000:]


@pytest.mark.parametrize(
    ("exc", "what"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "no space left on device"),
        (RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 4480 vs 4374"), "no space"),
        (OSError(errno.EROFS, "Read-only file system"), "read-only file system"),
    ],
)
def test_save_failures_are_named_plainly(exc, what, tmp_path):
    assert save_failure(exc, tmp_path / "step-00000040").startswith(what)


def test_a_bad_flag_under_torchrun_is_reported_once(run_dir):
    """Both ranks parse the same flags; rank 0 alone prints the line (torchrun then reports the exit)."""
    result = torchrun(run_dir, "--preset", "tiny", "--lr", "nan")
    assert result.returncode != 0
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        "error: --lr='nan' must be a finite number"
    ]


def test_make_local_checks_the_flags_before_starting_ranks(run_dir):
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "local",
            f"VENV={BIN.parent}",
            f"RUN_DIR={run_dir}",
            "ARGS=--lr nan",
        ],
        cwd=TEST_CASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == "error: --lr='nan' must be a finite number"
    assert "torchrun" not in result.stdout + result.stderr and not (run_dir / "config.json").exists()


def test_a_missing_file_of_a_complete_checkpoint_falls_back(tiny_run, run_dir):
    shutil.copytree(tiny_run / "checkpoints", run_dir / "checkpoints")
    newest = run_dir / "checkpoints" / "step-00000060"
    (newest / "rng-rank0.pt").unlink()  # a copy that lost a file; the marker is still there
    resumed = python_train("--preset", "tiny", "--run-dir", str(run_dir), "--max-steps", "60")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"warning: skipping checkpoint {newest}: rng-rank0.pt is missing" in resumed.stderr
    assert f"resumed from {run_dir / 'checkpoints' / 'step-00000040'} at step 40" in resumed.stdout
