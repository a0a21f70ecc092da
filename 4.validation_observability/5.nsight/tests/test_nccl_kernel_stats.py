"""NCCL kernel statistics and message sizes from nsys SQLite and CSV exports built by the tests."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import nccl_kernel_stats
import pytest
from nsys_exports import (
    ALL_REDUCE,
    ELEMENTWISE,
    GEMM,
    NVTX_RANGES,
    RANK0_KERNELS,
    RANK1_KERNELS,
    write_csv,
    write_sqlite,
)
from PIL import Image

TOOL = Path(nccl_kernel_stats.__file__)


@pytest.fixture
def two_ranks(tmp_path) -> list[Path]:
    return [
        write_sqlite(tmp_path / "rank0.sqlite", RANK0_KERNELS, NVTX_RANGES),
        write_sqlite(tmp_path / "rank1.sqlite", RANK1_KERNELS, NVTX_RANGES),
    ]


def run_tool(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def table_rows(output: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split()[1:] for line in output.splitlines() if line.startswith("  ")}


def test_sqlite_exports_give_per_collective_statistics_and_an_ok_footer(two_ranks):
    result = run_tool(*two_ranks)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"# nccl_kernel_stats {nccl_kernel_stats.__version__}" and lines[-1] == "# OK"
    rows = table_rows(result.stdout)
    # calls, total (ms), mean (us), median (us), max (us), share of all kernel time (%)
    assert rows["AllReduce"] == ["6", "0.880", "146.7", "100.0", "400.0", "15.44"]
    assert rows["AllGather"] == ["4", "0.240", "60.0", "60.0", "70.0", "4.21"]
    assert rows["ReduceScatter"] == ["2", "0.180", "90.0", "90.0", "90.0", "3.16"]
    assert [line.split()[0] for line in lines if line.startswith("  ")][:3] == [
        "AllReduce",
        "AllGather",
        "ReduceScatter",
    ]
    assert rows["rank0"] == ["0.510", "18.82"] and rows["rank1"] == ["0.790", "26.42"]  # the slow rank shows
    assert "# NCCL share of GPU kernel time: 22.81%" in lines


def test_message_sizes_come_from_nccl_nvtx_payloads(two_ranks):
    result = run_tool(*two_ranks)
    assert "# message sizes AllReduce: <=4K: 2, <=256M: 4" in result.stdout
    assert "# message sizes AllGather: <=32M: 4" in result.stdout
    assert "# message sizes ReduceScatter: <=64M: 2" in result.stdout
    assert "CommInitRank" not in result.stdout  # a range without a size is not a message


def test_json_output_carries_the_same_numbers(two_ranks):
    result = run_tool(*two_ranks, "--json")
    assert result.returncode == 0
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["version"] == nccl_kernel_stats.__version__
    all_reduce = report["collectives"][0]
    assert (all_reduce["collective"], all_reduce["calls"], all_reduce["median_us"]) == ("AllReduce", 6, 100.0)
    assert report["message_sizes"]["AllReduce"] == {"4096": 2, "268435456": 4}
    assert report["nccl_share_pct"] == pytest.approx(100 * 1_300_000 / 5_700_000)


def test_csv_exports_give_totals_without_medians_or_sizes(tmp_path):
    csv_file = write_csv(tmp_path / "rank0_cuda_gpu_kern_sum.csv", RANK0_KERNELS)
    result = run_tool(csv_file)
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    assert rows["AllReduce"] == ["3", "0.300", "100.0", "-", "120.0", "11.07"]
    assert rows["AllGather"] == ["2", "0.120", "60.0", "-", "70.0", "4.43"]
    assert "message sizes" not in result.stdout


@pytest.mark.parametrize(
    ("name", "collective"),
    [
        ("ncclDevKernel_AllReduce_Sum_bf16_RING_LL", "AllReduce"),
        ("ncclDevKernel_SendRecv", "SendRecv"),
        ("ncclKernel_AllReduce_RING_LL_Sum_float", "AllReduce"),  # NCCL before 2.19
        ("void ncclDevKernel_Broadcast_RING_LL(ncclDevKernelArgsStorage<4096ul>)", "Broadcast"),
        ("ncclDevKernel_Generic", "Generic"),
        (GEMM, None),
        (ELEMENTWISE, None),
        ("my_ncclKernel_lookalike", None),
    ],
)
def test_nccl_kernels_are_recognised_by_name(name, collective):
    assert nccl_kernel_stats.collective_of(name) == collective


def test_a_profile_without_nccl_kernels_fails(tmp_path):
    export = write_sqlite(tmp_path / "single-gpu.sqlite", [(GEMM, 1_000_000), (ELEMENTWISE, 5_000)], [])
    result = run_tool(export)
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1].startswith("# FAILED: no NCCL kernels found")


def test_nccl_share_threshold(two_ranks):
    over = run_tool(*two_ranks, "--max-nccl-share", "20")
    assert over.returncode == 1 and "# FAILED: NCCL share 22.81% > --max-nccl-share 20%" in over.stdout
    assert run_tool(*two_ranks, "--max-nccl-share", "25").returncode == 0


def test_bad_inputs_are_one_line_naming_the_file_and_the_fix(tmp_path):
    garbage = tmp_path / "report.sqlite"
    garbage.write_bytes(b"not sqlite at all" * 100)
    empty = tmp_path / "cpu-only.sqlite"  # an export of a profile without --trace=cuda
    with contextlib.closing(sqlite3.connect(empty)) as db:
        db.execute("CREATE TABLE StringIds (id INTEGER NOT NULL PRIMARY KEY, value TEXT NOT NULL)")
    wrong_csv = tmp_path / "osrt.csv"
    wrong_csv.write_text("Time (%),Total Time (ns),Num Calls,Name\n12.0,100,3,pthread_mutex_lock\n")
    cases = {
        tmp_path / "missing.sqlite": "does not exist",
        garbage: "not an SQLite export",
        empty: "no CUPTI_ACTIVITY_KIND_KERNEL table; profile with --trace=cuda",
        wrong_csv: "not a cuda_gpu_kern_sum CSV",
    }
    for path, message in cases.items():
        result = run_tool(path)
        assert result.returncode == 2, (path, result.stdout)
        assert result.stderr.count("\n") == 1 and str(path) in result.stderr and message in result.stderr


def test_plot_is_a_png_with_both_panels(two_ranks, tmp_path):
    png = tmp_path / "nccl.png"
    result = run_tool(*two_ranks, "--plot", png)
    assert result.returncode == 0, result.stderr
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size == (1200, 450)
        assert len(set(image.convert("RGB").getdata())) > 20  # bars and text, not a blank canvas
    csv_png = tmp_path / "csv.png"
    csv_file = write_csv(tmp_path / "k.csv", [(ALL_REDUCE, 100), (GEMM, 900)])
    assert run_tool(csv_file, "--plot", csv_png).returncode == 0 and csv_png.stat().st_size > 10_000
