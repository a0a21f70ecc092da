"""The CPU peak probe and the MFU a human reads: a slow probe gets a second opinion, and an MFU no machine
reaches is flagged instead of printed as if it were true (in process, no torchrun)."""

from __future__ import annotations

import pytest
from fsdp import metrics


def test_probe_takes_a_third_sweep_when_two_disagree(monkeypatch):
    sweeps = iter([0.40e12, 0.20e12, 0.42e12])  # the second sweep ran while something else used the cores
    calls = []
    monkeypatch.setattr(metrics, "_sweep", lambda min_time_s: calls.append(min_time_s) or next(sweeps))
    assert metrics.measure_cpu_peak_tflops() == pytest.approx(0.42)
    assert len(calls) == 3 and calls[2] > calls[0]  # the third sweep runs longer


def test_probe_stops_at_two_sweeps_that_agree(monkeypatch):
    sweeps = iter([0.40e12, 0.39e12])
    monkeypatch.setattr(metrics, "_sweep", lambda min_time_s: next(sweeps))
    assert metrics.measure_cpu_peak_tflops() == pytest.approx(0.40)


def test_real_probe_measures_a_rate():
    peak = metrics.measure_cpu_peak_tflops(min_time_s=0.01)
    assert 1e-4 < peak < 100  # TFLOP/s of a CPU's fp32 GEMM, whatever the machine


@pytest.mark.parametrize(
    ("mfu", "text"),
    [
        (48.9, "48.9%"),
        (99.8, "99.8% (implausible: above 90% of the peak; the peak probe ran slow)"),
        (None, "n/a"),
        (float("nan"), "n/a"),
    ],
)
def test_mfu_text_flags_implausible_values(mfu, text):
    assert metrics.mfu_text(mfu) == text


def test_metrics_go_to_the_file_and_one_human_line_to_stdout(tmp_path, capsys):
    log = metrics.MetricsLogger(tmp_path, enabled=True)
    record = {"step": 1, "loss": 2.5, "lr": 1e-3, "tokens_per_s": 900.0, "tflops": 0.1, "mfu_pct": 95.0}
    log.step({**record, "mem_gib": 0.5, "step_time_s": 1.1})
    log.close()
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("step     1 | loss 2.5000") and "implausible" in out[0]
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 1
