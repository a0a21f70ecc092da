"""`make bench`: the gloo all-reduce table is written with its rows, and repeated measurements are judged
(spread, efficiency on the same cores) before anyone trusts them. Numbers are recorded, never asserted."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# run.py imports its sibling stats.py (the script's folder is on the path when it runs): register it by
# name instead of putting benchmarks/ on sys.path, where benchmarks/fsdp.py would shadow the fsdp package.
_stats_spec = importlib.util.spec_from_file_location("stats", ROOT / "benchmarks" / "stats.py")
sys.modules["stats"] = importlib.util.module_from_spec(_stats_spec)
_stats_spec.loader.exec_module(sys.modules["stats"])
_spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
bench_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_run)


def test_gloo_allreduce_table_records_every_size(tmp_path):
    path = bench_run.gloo_allreduce_table(tmp_path, max_bytes="64K")
    result = json.loads(path.read_text())
    assert path.name.startswith("gloo-allreduce-") and result["machine"]["cores"] >= 1
    assert [row["size_bytes"] for row in result["rows"]] == [8 << i for i in range(14)]  # 8 B .. 64 KiB
    assert all(row["time_us"] > 0 and row["busbw"] == row["algbw"] for row in result["rows"])  # 2 ranks: x1
    assert result["wrong_elements"] == 0


def fake_throughput(rates: dict[int, list[float]]):
    """cpu_ddp_throughput replaced by recorded medians, one per call, per rank count."""
    calls = {nproc: iter(values) for nproc, values in rates.items()}
    return lambda nproc, steps: {"nproc": nproc, "steps": steps, "samples_per_s_median": next(calls[nproc])}


def test_quiet_runs_give_a_valid_same_cores_efficiency(monkeypatch):
    monkeypatch.setattr(
        bench_run, "cpu_ddp_throughput", fake_throughput({1: [1000, 1010, 990], 2: [580, 590, 575]})
    )
    result = bench_run.cpu_ddp_scaling(steps=50, rounds=3)
    assert result["valid"] and result["problems"] == []
    assert result["scaling_efficiency_same_cores"]["median"] == pytest.approx(0.58, abs=0.01)


def test_a_disturbed_one_rank_run_is_invalid_not_just_odd(monkeypatch):
    # Recorded: the 1-rank run shared the machine (157 samples/s) and "efficiency" came out at 8.9.
    monkeypatch.setattr(
        bench_run, "cpu_ddp_throughput", fake_throughput({1: [157, 1000, 990], 2: [2797, 590, 575]})
    )
    result = bench_run.cpu_ddp_scaling(steps=50, rounds=3)
    assert not result["valid"]
    assert any(p.startswith("1 rank: spread") for p in result["problems"])
    assert any("efficiency up to 17.82 > 1" in p for p in result["problems"])
