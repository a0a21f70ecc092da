"""The nccl-tests parser on recorded outputs: srun and Open MPI prefixes, every table format, JSON, bad runs.

Where each recorded output comes from (nccl-tests tag and file, or the public thread it reproduces):
tests/fixtures/SOURCES.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from nccl_bench.nccl_output import (
    NcclOutputError,
    error_out_of_bounds,
    parse,
    parse_json,
    parse_layout,
    parse_row,
    strip_prefix,
    with_json,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def load_text(name: str) -> str:
    return (FIXTURES / name).read_text()


def load(name: str):
    return parse(load_text(name))


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


OLD_SENDRECV = "#  size  count  type  time  algbw  busbw  error  time  algbw  busbw  error"


def test_rows_without_redop_and_with_na_in_place():
    row = parse_row(
        "  1048576  262144  uint8  996.7  1.05  1.05  0e+00  N/A  N/A  N/A  N/A", parse_layout(OLD_SENDRECV)
    )
    assert row is not None and row.redop == "" and row.root == -1 and row.dtype == "uint8"
    assert row.out_of_place.busbw == 1.05 and row.out_of_place.error == 0.0
    assert row.in_place.busbw is None and row.in_place.error is None and row.busbw == 1.05
    layout = parse_layout(OLD_SENDRECV)
    assert parse_row("# Out of bounds values : 0 OK", layout) is None
    assert parse_row("srun: error: n2: task 1: Exited with exit code 3", layout) is None
    assert parse_row("  1048576  262144  uint8  996.7  1.05  1.05  0e+00", layout) is None  # cut short


def test_several_tables_in_one_log_are_refused():
    text = (FIXTURES / "p5-1node-all_reduce-good.log").read_text()
    with pytest.raises(NcclOutputError, match=r"2 result tables in one log.*built without MPI=1"):
        parse(text + text)


# -- every format, read by its header ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "columns", "rows", "checked", "peak"),
    [
        # nccl-tests v2.11.0: all_reduce without a root column, `error` floats (0e+00 .. 2e-06)
        (
            "v2.11-all_reduce-2node-error-column.log",
            ["size", "count", "type", "redop", "time", "algbw", "busbw", "error"],
            11,
            22,
            (113.46, 1073741824),
        ),
        # v2.11.0 sendrecv: neither redop nor root
        ("v2.11-sendrecv-uint8-error-column.log", ["size", "count", "type", "time"], 4, 8, (5.82, 150994944)),
        # v2.17.9 alltoall: "none -1", in-place #wrong N/A
        (
            "v2.17.9-alltoall-inplace-na.log",
            ["size", "count", "type", "redop", "root"],
            6,
            6,
            (296.73, 1 << 30),
        ),
        # v2.17.9 -C 1 -S 1: cputime columns, trailing timestamp
        (
            "v2.17.9-all_reduce-cputime-timestamps.log",
            ["size", "count", "type", "redop", "root", "cputime"],
            3,
            6,
            (471.3, 1 << 32),
        ),
        # v2.19.6 -I 1: four per-iteration columns after each #wrong
        (
            "v2.19.6-all_reduce-per-iteration.log",
            ["size", "count", "type", "redop", "root", "time"],
            3,
            6,
            (470.91, 1 << 32),
        ),
        # v2.17.9, srun --label, today's table (the repository's pin)
        (
            "p5-2node-all_reduce-good.log",
            ["size", "count", "type", "redop", "root", "time"],
            32,
            64,
            (488.47, 1 << 34),
        ),
    ],
)
def test_every_table_format_is_read_by_its_header(name, columns, rows, checked, peak):
    run = load(name)
    assert run.columns[: len(columns)] == columns
    assert len(run.rows) == rows and run.checked == checked and run.unread == 0
    assert run.complete and run.peak_busbw() == peak


def test_old_error_column_is_a_float_compared_with_nccl_tests_tolerance():
    run = load("v2.11-all_reduce-2node-error-column.log")
    assert run.error_column and run.ranks == 16
    errors = {m.error for m in run.measurements()}
    assert errors == {0.0, 5e-07, 1e-06, 2e-06}  # rounding noise, far below 1e-5 * 15
    assert run.wrong == 0 and run.undecided == 0 and run.out_of_bounds == 0
    first = run.rows[0]
    assert (first.redop, first.root, first.out_of_place.time_us) == ("sum", -1, 96.5)


def test_old_error_above_tolerance_is_one_out_of_bounds_result():
    run = load("v2.11-sendrecv-uint8-error-column.log")
    bad = [row for row in run.rows if row.wrong]
    assert [(row.size_bytes, row.in_place.error, row.in_place.wrong) for row in bad] == [
        (113246208, 300.0, 1)
    ]
    assert run.wrong == run.out_of_bounds == 1  # the footer counts what the rows say


@pytest.mark.parametrize(
    ("error", "dtype", "ranks", "verdict"),
    [
        (0.0, "float", 16, False),
        (2e-06, "float", 16, False),  # limit 1.5e-4
        (2e-05, "float", 2, True),  # 1.5e-5 .. 2.5e-5 > limit 1e-5
        (1e-05, "float", 2, None),  # 0.5e-5 .. 1.5e-5 straddles the limit: undecided
        (9e-06, "float", 2, False),  # at most 9.5e-6
        (4e-06, "float", 2, False),
        (5e-03, "half", 2, False),
        (1e-02, "bfloat16", 2, None),
        (1e-12, "double", 8, False),
        (1e-11, "double", 8, None),  # 0.5e-11 .. 1.5e-11 straddles 7e-12
        (3e02, "uint8", 2, True),  # integers are exact
        (1e-07, "float", 1, True),  # one rank: nothing may differ
        (1e-06, "float", 0, None),  # rank count unknown
        (0.0, "float", 0, False),
        (1e-06, "fp8_e4m3", 8, None),  # a type nccl-tests < 2.13 did not have
    ],
)
def test_error_tolerance(error, dtype, ranks, verdict):
    assert error_out_of_bounds(error, dtype, ranks) is verdict


def test_undecided_errors_are_counted_not_passed():
    text = (
        "#  Rank  0 Pid 1 on h device  0 [0x53] NVIDIA H100\n"
        "#  Rank  1 Pid 1 on h device  1 [0x64] NVIDIA H100\n"
        "#  size  count  type  redop  time  algbw  busbw  error  time  algbw  busbw  error\n"
        "  1024  256  float  sum  10.0  0.10  0.10  1e-05  10.0  0.10  0.10  0e+00\n"
    )
    run = parse(text)
    assert run.undecided == 1 and run.checked == 1 and run.wrong == 0
    assert run.rows[0].out_of_place.wrong is None


def test_wrong_count_in_g_notation_and_na_is_not_a_number():
    run = load("v2.17.9-alltoall-inplace-na.log")
    assert all(row.in_place.wrong is None and row.out_of_place.wrong == 0 for row in run.rows)
    assert run.rows[0].redop == "none" and run.rows[0].root == -1
    layout = parse_layout(
        "#  size  count  type  redop  root  time  algbw  busbw  #wrong  time  algbw  busbw  #wrong"
    )
    row = parse_row("  8  2  float  sum  -1  12.9  0.00  0.00  1.04858e+06  12.8  0.00  0.00  N/A", layout)
    assert row.out_of_place.wrong == 1048580 and row.in_place.wrong is None and row.wrong == 1048580
    assert parse_row("  8  2  float  sum  -1  12.9  0.00  0.00  -1  12.8  0.00  0.00  0", layout) is None


def test_timestamps_and_per_iteration_columns():
    stamped = load("v2.17.9-all_reduce-cputime-timestamps.log")
    assert [row.timestamp for row in stamped.rows][-1] == "2025-06-02 14:03:19"
    assert stamped.rows[0].out_of_place.time_us == 4287.0
    per_iter = load("v2.19.6-all_reduce-per-iteration.log")
    last = per_iter.rows[-1]
    assert (last.out_of_place.busbw, last.in_place.busbw, last.in_place.time_us) == (470.91, 469.5, 16008.9)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "#    bytes        N    type      op     time  algbw  busbw      res     time  algbw  busbw  res",
            "nccl-tests 1.x printed 'bytes N type' and time in ms",
        ),
        ("#  size  count  type  redop  root  time  algbw  busbw  time  algbw  busbw", "per group"),
        ("#  size  count  type  flavour  time  algbw  busbw  #wrong", "column 'flavour' before 'time'"),
        ("#  size  count  type  redop  root", "0 time groups"),
        ("#  size  count  type  root  redop  time  algbw  busbw  #wrong", "repeats or swaps redop/root"),
    ],
)
def test_headers_not_understood_are_refused(header, message):
    with pytest.raises(NcclOutputError, match=message):
        parse(f"{header}\n  8  2  float  sum  -1  1.0  0.0  0.0  0\n")


def test_rows_without_a_header_or_that_do_not_fit_it():
    rows = "\n".join(load_text("p5-1node-all_reduce-good.log").splitlines()[15:20])
    with pytest.raises(NcclOutputError, match="5 table rows but no column header line"):
        parse(rows)
    text = load_text("p5-1node-all_reduce-good.log").replace(
        "  4294967296    1073741824     float     sum      -1  15983.4",
        "  4294967296    1073741824     float     sum  15983.4",
    )
    run = parse(text)
    assert run.unread == 1 and run.first_unread.startswith(
        "4294967296    1073741824     float     sum  15983.4"
    )
    assert len(run.rows) == 13


def test_last_error_line_of_new_versions_is_an_error():
    run = parse(load_text("p5-1node-all_reduce-good.log") + "# error: NET/OFI Request completed with error\n")
    assert run.errors == ["# error: NET/OFI Request completed with error"]


# -- JSON (-J) ----------------------------------------------------------------------------------------


def test_json_of_v2_17_9():
    text = load_text("v2.17.9-all_reduce-2node.json")
    run = parse_json(text)
    assert parse(text) == run  # detected by its first character
    assert (run.source, run.test, run.nccl_version, run.tests_version) == (
        "json",
        "all_reduce_perf",
        "2.29.3",
        None,
    )
    assert (run.ranks, run.nodes) == (16, 2) and run.devices[9].bus_id == "0000:64:00"
    last = run.rows[-1]
    assert (last.size_bytes, last.dtype, last.redop, last.root) == (17179869184, "float", "sum", -1)
    assert last.out_of_place.busbw == 488.47 and last.in_place.wrong == 0
    assert run.complete and run.out_of_bounds == 0 and run.avg_busbw == 464.78249 and run.checked == 10


def test_log_names_its_json_and_with_json_keeps_the_nccl_lines():
    log = load("v2.17.9-all_reduce-2node-json.log")
    assert log.json_path == "/fsx/results/nccl-tests-4242/all_reduce.json"
    merged = with_json(log, load("v2.17.9-all_reduce-2node.json"), "all_reduce.json")
    assert merged.network == "Libfabric" and merged.tests_version == "2.17.9"
    assert merged.rows[0].in_place.busbw == pytest.approx(430.367, abs=1e-3)  # unrounded
    assert log.rows[0].in_place.busbw == 430.37
    assert merged.source.startswith("JSON all_reduce.json")


def _json_with(**changes) -> str:
    import json  # noqa: PLC0415 - only these tests edit JSON

    data = json.loads(load_text("v2.17.9-all_reduce-2node.json"))
    for path, value in changes.items():
        target = data
        *parents, key = path.split("__")
        for parent in parents:
            target = target[int(parent)] if parent.isdigit() else target[parent]
        target[key] = value
    return json.dumps(data)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (lambda: load_text("v2.17.9-all_reduce-2node.json")[:2000], "not valid JSON .*judge its text log"),
        (lambda: _json_with(version=2), "JSON version 2; this parser reads version 1"),
        (lambda: '{"version": 1}', "JSON without 'results'"),
        (lambda: _json_with(results__0__size="1G"), r"results\[0\]\.size is '1G', not an integer"),
        (lambda: _json_with(results__1__root="x"), r"results\[1\]\.root is 'x', not an integer"),
        (lambda: _json_with(results__2__in_place=[1]), r"results\[2\]\.in_place is \[1\], not an object"),
        (
            lambda: _json_with(results__0__out_of_place__nwrong=-1),
            r"out_of_place\.nwrong is -1\.0, not a count",
        ),
        (
            lambda: _json_with(config__devices__3__rank=True),
            r"config\.devices\[3\]\.rank is True, not an integer",
        ),
    ],
)
def test_json_that_nccl_tests_did_not_write_is_refused(text, message):
    with pytest.raises(NcclOutputError, match=message):
        parse_json(text())


def test_json_nan_and_null_are_unknown_not_zero():
    run = parse_json(_json_with(results__0__in_place__bus_bw="nan", results__0__out_of_place__nwrong=None))
    assert run.rows[0].in_place.busbw is None and run.rows[0].out_of_place.wrong is None
    assert run.checked == 9


@pytest.mark.parametrize("footer", ["-nan", "nan", "inf", "-inf"])
def test_a_nan_or_inf_average_footer_is_read_not_a_crash(footer):
    text = load_text("p5-2node-all_reduce-good.log").replace(
        "# Avg bus bandwidth    : 121.1484", f"# Avg bus bandwidth    : {footer}"
    )
    run = parse(text)
    assert str(run.avg_busbw) == str(float(footer)) and len(run.rows) == len(
        load("p5-2node-all_reduce-good.log").rows
    )
