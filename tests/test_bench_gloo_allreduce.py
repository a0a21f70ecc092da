"""`make bench`'s gloo all-reduce table is written with its rows (numbers are recorded, never asserted)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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
