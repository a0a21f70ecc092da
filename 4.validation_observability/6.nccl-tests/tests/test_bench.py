"""The collective benchmark for real: torchrun with 2 gloo ranks, every collective checked, bad input.

torchrun launches cost seconds, so one CLI run (module fixture) carries several assertions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from nccl_bench import formulas
from nccl_bench.bench import BenchError, config_from_args
from nccl_bench.nccl_output import parse

from testbed.ports import free_port

TOOL_DIR = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def torchrun(script: str, *args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    command = [str(BIN / "torchrun"), "--nproc-per-node", str(nproc), "--rdzv-backend", "c10d"]
    command += ["--rdzv-endpoint", f"127.0.0.1:{free_port()}", script, *args]
    return subprocess.run(command, cwd=TOOL_DIR, capture_output=True, text=True, timeout=300, check=False)


def bench_process(*args: str) -> subprocess.CompletedProcess:
    """One process, no torchrun (a world of one)."""
    return subprocess.run(
        [sys.executable, "collective_bench.py", *args],
        cwd=TOOL_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def two_rank_run(artifacts_root):
    out = artifacts_root / "collective-bench" / "all_reduce.json"
    result = torchrun(
        "collective_bench.py", "-b", "1K", "-e", "1M", "-f", "4", "-n", "3", "-w", "1", "--json-out", str(out)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, json.loads(out.read_text())


def test_table_is_nccl_tests_format_and_matches_the_json(two_rank_run):
    table, document = two_rank_run
    run = parse(table)  # the nccl-tests parser reads our output
    assert run.complete and run.wrong == 0 and run.out_of_bounds == 0
    assert (run.ranks, run.nodes) == (2, 1) and run.test is None
    assert [row.size_bytes for row in run.rows] == [1024, 4096, 16384, 65536, 262144, 1048576]
    assert document["facts"]["backend"] == "gloo" and document["facts"]["ranks"] == "2 on 1 node(s)"
    assert document["avg_busbw"] == pytest.approx(run.avg_busbw, rel=1e-4)  # the footer's average
    for printed, recorded in zip(run.rows, document["rows"], strict=True):
        assert printed.out_of_place.busbw is None  # torch's all_reduce is in place only
        measured = recorded["in_place"]
        assert printed.in_place.busbw == pytest.approx(measured["busbw"], abs=0.006)
        algbw = formulas.algbw_gbytes_per_s(recorded["size_bytes"], measured["time_us"])
        assert measured["algbw"] == pytest.approx(algbw)
        assert measured["busbw"] == pytest.approx(algbw * formulas.bus_factor("all_reduce", 2))
        assert measured["wrong"] == 0 and measured["time_us"] > 0
    assert "# Out of bounds values : 0 OK" in table and table.rstrip().endswith("# Verdict : OK")
    assert "no bandwidth threshold" in table and document["verdict"]["ok"] is True


def test_every_collective_is_correct_on_two_ranks(artifacts_root):
    out = artifacts_root / "collective-bench" / "ops.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = torchrun("tests/ops_driver.py", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.read_text())
    for op in formulas.OPS:
        rows = results[op]
        assert [row["size_bytes"] for row in rows] == [8, 64, 512, 4096, 32768], op
        for row in rows:
            group = row["in_place"] if op in ("all_reduce", "broadcast") else row["out_of_place"]
            assert group["wrong"] == 0, (op, row)
            factor = formulas.bus_factor(op, 2)
            assert group["busbw"] == pytest.approx(group["algbw"] * factor), op
    assert results["sabotaged_all_reduce_wrong"] == 200  # 100 elements on each rank, none reduced


def test_threshold_failure_exits_1_with_the_reason():
    result = bench_process(
        "--op",
        "all_gather",
        "-b",
        "64K",
        "-e",
        "256K",
        "-n",
        "2",
        "--min-busbw",
        "1e6",
        "--judge-min-bytes",
        "64K",
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "# Verdict : FAILED" in result.stdout
    assert "is below 1e+06 GB/s (--min-busbw)" in result.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--op", "allreduce"], "--op 'allreduce' is unknown; choose one of: all_reduce, all_gather"),
        (["-d", "int8"], "-d 'int8' is unknown; choose one of: float, half, bfloat16"),
        (["-b", "1M", "-e", "1K"], "sizes -b 1048576 -e 1024: need 1 <= -b <= -e"),
        (["-n", "0"], "-n/--iters=0 must be a positive integer"),
        (["--min-busbw", "0"], "--min-busbw=0.0 must be more than 0 (GB/s)"),
        (
            ["--instance-type", "p5.48xlarge", "-e", "64M"],
            "-e 67108864 stops below --judge-min-bytes 1073741824",
        ),
        (["--backend", "mpi"], "--backend 'mpi' is unknown; choose auto, nccl or gloo"),
    ],
)
def test_bad_input_names_the_flag(argv, message):
    with pytest.raises(BenchError) as caught:
        config_from_args(argv)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_bad_input_on_the_command_line_is_one_line_exit_2():
    result = bench_process("--op", "allreduce")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: --op 'allreduce' is unknown; choose one of: "
        "all_reduce, all_gather, reduce_scatter, alltoall, broadcast"
    )


@pytest.mark.gpu
def test_nccl_on_every_local_gpu(artifacts_root):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine; runs where one is")
    gpus = torch.cuda.device_count()
    out = artifacts_root / "collective-bench" / "gpu.json"
    result = torchrun("collective_bench.py", "-b", "8", "-e", "256M", "--json-out", str(out), nproc=gpus)
    assert result.returncode == 0, result.stderr[-3000:]
    document = json.loads(out.read_text())
    assert document["facts"]["backend"] == "nccl" and document["wrong"] == 0
    print(result.stdout)
