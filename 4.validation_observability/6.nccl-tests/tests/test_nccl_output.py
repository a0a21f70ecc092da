"""The nccl-tests parser on recorded outputs: srun and Open MPI prefixes, old and new formats, bad runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from nccl_bench.nccl_output import NcclOutputError, parse, parse_row, strip_prefix

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def load(name: str):
    return parse((FIXTURES / name).read_text())


def test_two_node_srun_log_with_rank_prefixes():
    run = load("p5-2node-all_reduce-good.log")
    assert (run.test, run.tests_version, run.nccl_version) == ("all_reduce_perf", "2.17.9", "2.29.3")
    assert run.network == "Libfabric"
    assert (run.ranks, run.nodes) == (16, 2)
    assert {d.host for d in run.devices} == {"ip-10-1-0-12", "ip-10-1-0-75"}
    assert run.devices[9].bus_id == "0000:64:00" and run.devices[9].name == "NVIDIA H100 80GB HBM3"
    assert [row.size_bytes for row in run.rows] == [8 << i for i in range(32)]  # 8 B .. 16 GiB
    last = run.rows[-1]
    assert (last.count, last.dtype, last.redop, last.root) == (4294967296, "float", "sum", -1)
    assert last.out_of_place.busbw == 488.47 and last.in_place.busbw == 487.49
    assert last.busbw == 488.47 and run.wrong == 0
    assert run.complete and run.out_of_bounds == 0 and run.avg_busbw == 121.1484
    assert run.peak_busbw(1 << 30) == (488.47, 17179869184)
    assert run.errors == []


def test_open_mpi_tags_and_wrong_results():
    run = load("p5-1node-all_reduce-wrong.log")
    assert (run.ranks, run.nodes) == (8, 1)
    wrong = {row.size_bytes: (row.out_of_place.wrong, row.in_place.wrong) for row in run.rows if row.wrong}
    assert wrong == {1 << 29: (0, 3), 1 << 30: (12, 0), 1 << 33: (1024, 1024)}
    assert run.wrong == run.out_of_bounds == 2063


def test_old_format_without_version_line_or_group():
    run = load("p5-1node-all_reduce-good.log")
    assert run.tests_version is None and run.test is None
    assert (run.ranks, run.nodes) == (8, 1) and run.devices[0].host == "p5-st-1"
    assert run.complete and len(run.rows) == 14


def test_truncated_run_keeps_its_rows_and_errors():
    run = load("p5-2node-all_reduce-truncated.log")
    assert not run.complete and run.avg_busbw is None
    assert len(run.rows) == 27 and run.rows[-1].size_bytes == 536870912
    assert len(run.errors) == 3
    assert "NCCL WARN NET/OFI Request" in run.errors[0]
    assert "Test NCCL failure" in run.errors[1]


def test_socket_fallback_is_visible():
    assert load("p5-2node-all_reduce-socket.log").network == "Socket"


def test_validation_off_reads_na_as_unknown():
    run = load("p4de-2node-all_gather-good.log")
    assert run.test == "all_gather_perf" and run.rows[0].redop == "none"
    assert run.rows[0].out_of_place.wrong is None and run.wrong == 0


@pytest.mark.parametrize(
    ("line", "stripped"),
    [
        ("0: # Avg bus bandwidth    : 1.5", "# Avg bus bandwidth    : 1.5"),
        ("12:    1024   256  float", "   1024   256  float"),
        ("[1,0]<stdout>:#  Rank  0 Group", "#  Rank  0 Group"),
        ("[1,3]<stderr>:host: Test NCCL failure", "host: Test NCCL failure"),
        ("        1024           256     float", "        1024           256     float"),
        ("ip-10-0-0-1:77:77 [0] NCCL INFO x", "ip-10-0-0-1:77:77 [0] NCCL INFO x"),
    ],
)
def test_rank_prefixes(line, stripped):
    assert strip_prefix(line) == stripped


def test_rows_without_redop_and_with_na_in_place():
    row = parse_row("  1048576  16384  float  -1  996.7  1.05  0.99  N/A  N/A  N/A  N/A  N/A")
    assert row is not None and row.redop == "" and row.root == -1
    assert row.out_of_place.busbw == 0.99 and row.in_place.busbw is None and row.busbw == 0.99
    assert parse_row("# Out of bounds values : 0 OK") is None
    assert parse_row("srun: error: n2: task 1: Exited with exit code 3") is None


def test_several_tables_in_one_log_are_refused():
    text = (FIXTURES / "p5-1node-all_reduce-good.log").read_text()
    with pytest.raises(NcclOutputError, match=r"2 result tables in one log.*built without MPI=1"):
        parse(text + text)
