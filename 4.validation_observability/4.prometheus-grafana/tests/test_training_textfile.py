"""Training step records (metrics.jsonl) become node-exporter textfile gauges with sane names and units."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import training_textfile
from prometheus_client.parser import text_string_to_metric_families
from promql_check import FIXTURES

from testbed.system import require_programs

TOOL = Path(training_textfile.__file__)
CPU_DDP = FIXTURES / "cpu-ddp-metrics.jsonl"  # recorded from a real cpu-ddp `make local PRESET=tiny` run
FSDP = (
    FIXTURES / "fsdp-metrics.jsonl"
)  # recorded from a real FSDP `train.py --preset tiny --max-steps 30` run


def gauges(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def run_tool(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def last_step(path: Path) -> dict:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in records if "event" not in r][-1]


@pytest.mark.parametrize(
    ("field", "name", "scale"),
    [
        ("loss", "training_loss", 1),
        ("lr", "training_lr", 1),
        ("step", "training_step", 1),
        ("samples_per_s", "training_samples_per_second", 1),
        ("tokens_per_s", "training_tokens_per_second", 1),
        ("step_time_s", "training_step_time_seconds", 1),
        ("data_wait_ms", "training_data_wait_seconds", 1e-3),
        ("mem_gib", "training_mem_bytes", 2**30),
        ("mfu_pct", "training_mfu_ratio", 0.01),
        ("tflops", "training_tflops", 1),
        ("Grad-Norm", "training_grad_norm", 1),
        ("test_samples", "training_test_samples", 1),
    ],
)
def test_field_names_become_prometheus_names_in_base_units(field, name, scale):
    assert training_textfile.metric_name(field) == (name, scale)


def test_cpu_ddp_run_exports_its_newest_step_and_events(tmp_path):
    result = run_tool(CPU_DDP.parent, "--textfile-dir", tmp_path, "--run", "cpu-ddp")
    assert result.returncode != 0  # the fixtures folder holds no metrics.jsonl: a run folder is needed
    result = run_tool(CPU_DDP, "--textfile-dir", tmp_path, "--run", "cpu-ddp")
    assert result.returncode == 0, result.stderr
    values = gauges((tmp_path / "training_cpu-ddp.prom").read_text())
    run = frozenset({"run": "cpu-ddp"}.items())
    step = last_step(CPU_DDP)
    assert values[("training_step", run)] == step["step"] == 60
    assert values[("training_loss", run)] == step["loss"]
    assert values[("training_samples_per_second", run)] == step["samples_per_s"]
    assert values[("training_mem_bytes", run)] == pytest.approx(step["mem_gib"] * 2**30)
    assert values[("training_checkpoint_step", run)] == 60
    assert values[("training_eval_accuracy", run)] == pytest.approx(0.9042316258351893)
    assert (
        values[("training_events_total", frozenset({"run": "cpu-ddp", "event": "checkpoint"}.items()))] == 3
    )
    assert values[("training_metrics_malformed_lines", run)] == 0
    assert values[("training_last_update_timestamp_seconds", run)] == pytest.approx(CPU_DDP.stat().st_mtime)


def test_fsdp_records_export_tokens_tflops_and_mfu(tmp_path):
    run_dir = tmp_path / "fsdp-tiny"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text(FSDP.read_text())
    result = run_tool(run_dir, "--textfile-dir", tmp_path)
    assert result.returncode == 0, result.stderr
    values = gauges((tmp_path / "training_fsdp-tiny.prom").read_text())  # run label = the folder name
    run = frozenset({"run": "fsdp-tiny"}.items())
    step = last_step(FSDP)
    assert values[("training_tokens_per_second", run)] == step["tokens_per_s"]
    assert values[("training_tflops", run)] == step["tflops"]
    assert values[("training_mfu_ratio", run)] == pytest.approx(step["mfu_pct"] / 100)
    assert ("training_samples_per_second", run) not in values  # nothing declared that the run lacks
    assert values[("training_grad_norm", run)] == step["grad_norm"]
    assert values[("training_val_loss", run)] == pytest.approx(
        3.6834723949432373
    )  # not training_val_val_loss
    assert values[("training_start_peak_tflops", run)] == pytest.approx(0.2179080312477911)
    assert values[("training_run_mfu_ratio", run)] == pytest.approx(0.15660518295327519)
    assert (
        values[("training_events_total", frozenset({"run": "fsdp-tiny", "event": "checkpoint"}.items()))] == 2
    )


def test_output_passes_promtool_lint(tmp_path):
    promtool = require_programs("promtool", "promtool")["promtool"]
    for fixture in (CPU_DDP, FSDP):
        assert run_tool(fixture, "--textfile-dir", tmp_path, "--run", fixture.stem).returncode == 0
        text = (tmp_path / f"training_{fixture.stem}.prom").read_text()
        lint = subprocess.run(
            [promtool, "check", "metrics"],
            input=text,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr


def test_partial_last_line_waits_malformed_lines_count_and_nan_survives(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 2.5}\nnot json\n[1, 2]\n{"step": 2, "loss": NaN}\n{"step": 3, "lo')
    follower = training_textfile.MetricsFollower(path)
    assert follower.poll()
    assert follower.state.step["step"] == 2 and math.isnan(follower.state.step["loss"])
    assert follower.state.malformed == 2
    with path.open("a") as out:
        out.write('ss": 1.5, "note": "text is skipped", "ok": true}\n')
    assert follower.poll()
    assert follower.state.step == {"step": 3, "loss": 1.5}  # strings and booleans are not metrics
    values = gauges(training_textfile.render(follower.state, "r"))
    assert values[("training_loss", frozenset({"run": "r"}.items()))] == 1.5


def test_a_replaced_shorter_file_is_read_from_the_start(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": 1.0 / s}) + "\n" for s in range(1, 50)))
    follower = training_textfile.MetricsFollower(path)
    follower.poll()
    path.write_text('{"step": 1, "loss": 9.0}\n')  # a new run in the same folder
    assert follower.poll()
    assert follower.state.step == {"step": 1, "loss": 9.0}


def test_step_and_event_fields_never_produce_duplicate_families(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 4, "eval_loss": 1.0}\n{"event": "eval", "step": 4, "loss": 2.0}\n')
    follower = training_textfile.MetricsFollower(path)
    follower.poll()
    values = gauges(training_textfile.render(follower.state, "r"))  # the parser rejects duplicates
    assert values[("training_eval_loss", frozenset({"run": "r"}.items()))] == 1.0


def test_bad_input_is_one_line_with_the_fix(tmp_path):
    missing = run_tool(tmp_path / "no-run", "--textfile-dir", tmp_path)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "metrics.jsonl does not exist" in missing.stderr and "--follow" in missing.stderr
    no_dir = run_tool(CPU_DDP, "--textfile-dir", tmp_path / "nope")
    assert no_dir.returncode == 2 and "--textfile-dir" in no_dir.stderr and "create it" in no_dir.stderr
    interval = run_tool(CPU_DDP, "--textfile-dir", tmp_path, "--follow", "--interval", "0")
    assert interval.returncode == 2 and "--interval" in interval.stderr


def wait_for_text(path: Path, needle: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and needle in (text := path.read_text()):
            return text
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} not in {path} after {timeout}s")


def test_follow_tracks_a_growing_run_and_removes_its_file_on_sigterm(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(TOOL),
            str(run_dir),
            "--textfile-dir",
            str(textfiles),
            "--follow",
            "--interval",
            "0.1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out = textfiles / "training_run.prom"
    try:
        assert "following" in proc.stdout.readline()
        time.sleep(0.3)
        assert not out.exists()  # training has not started: nothing published yet
        with (run_dir / "metrics.jsonl").open("a") as metrics:
            metrics.write('{"step": 1, "loss": 3.0, "samples_per_s": 100.0}\n')
            metrics.flush()
            wait_for_text(out, 'training_step{run="run"} 1.0')
            metrics.write('{"step": 2, "loss": 2.0, "samples_per_s": 110.0}\n')
            metrics.flush()
            assert 'training_loss{run="run"} 2.0' in wait_for_text(out, 'training_step{run="run"} 2.0')
        assert not list(textfiles.glob("*.tmp")) and [p.name for p in textfiles.iterdir()] == [out.name]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        proc.stdout.close()
        proc.stderr.close()
    assert not out.exists()
