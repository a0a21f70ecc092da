"""nccl_report.py as users run it on recorded logs: verdicts, exit codes, CSV, JSON and the plot."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

TOOL_DIR = Path(__file__).resolve().parents[1]
FIXTURES = TOOL_DIR / "tests" / "fixtures"


def report(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "nccl_report.py", *args],
        cwd=TOOL_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


def fixture(name: str) -> str:
    return str(FIXTURES / name)


@pytest.mark.parametrize(
    ("log", "code", "reasons"),
    [
        ("p5-2node-all_reduce-good.log", 0, []),
        ("p5-1node-all_reduce-good.log", 0, []),
        (
            "p5-2node-all_reduce-degraded.log",
            1,
            ["peak busbw 193.60 GB/s at 17179869184 B is below 440 GB/s"],
        ),
        ("p5-2node-all_reduce-socket.log", 1, ["NCCL used TCP sockets (NET/Socket), not EFA", "below 440"]),
        ("p5-1node-all_reduce-wrong.log", 1, ["2063 wrong elements"]),
        (
            "p5-2node-all_reduce-truncated.log",
            1,
            ["truncated: no '# Avg bus bandwidth' footer after 27 rows", "NCCL WARN"],
        ),
    ],
)
def test_verdicts_against_the_p5_bands(log, code, reasons):
    result = report(fixture(log), "--instance-type", "p5.48xlarge")
    assert result.returncode == code, result.stdout + result.stderr
    footer = result.stdout[result.stdout.index("# Verdict") :]
    assert footer.startswith("# Verdict : OK" if code == 0 else "# Verdict : FAILED")
    for reason in reasons:
        assert reason in footer
    nodes = 2 if "2node" in log else 1
    band = "440-490" if nodes == 2 else "350-480"
    if "truncated" not in log:
        low = band.split("-", maxsplit=1)[0]
        assert f"threshold  : {low} GB/s (band {band} GB/s of p5.48xlarge, {nodes} node(s))" in result.stdout


def test_without_threshold_only_integrity_counts():
    ok = report(fixture("p5-2node-all_reduce-degraded.log"))
    assert ok.returncode == 0 and "no bandwidth threshold" in ok.stdout
    wrong = report(fixture("p5-1node-all_reduce-wrong.log"))
    assert wrong.returncode == 1


def test_flag_and_environment_thresholds_win_over_the_band():
    strict = report(
        fixture("p5-2node-all_reduce-good.log"), "--instance-type", "p5.48xlarge", "--min-busbw", "500"
    )
    assert strict.returncode == 1 and "below 500 GB/s (--min-busbw)" in strict.stdout
    from_env = report(fixture("p5-2node-all_reduce-degraded.log"), env={"MIN_BUSBW": "150"})
    assert from_env.returncode == 0, from_env.stdout
    lowered = report(fixture("p5-2node-all_reduce-truncated.log"), "--judge-min-bytes", "256M")
    assert "Peak busbw : 389.24 GB/s at 536870912 B" in lowered.stdout


def test_all_gather_is_not_judged_by_the_all_reduce_band():
    result = report(fixture("p4de-2node-all_gather-good.log"), "--instance-type", "p4de.24xlarge")
    assert result.returncode == 0
    assert (
        "the p4de.24xlarge band is for all_reduce; pass --min-busbw to judge all_gather_perf" in result.stdout
    )
    judged = report(fixture("p4de-2node-all_gather-good.log"), "--min-busbw", "90")
    assert judged.returncode == 1 and "peak busbw 84.50 GB/s" in judged.stdout


def test_json_csv_and_plot(tmp_path):
    logs = [fixture("p5-2node-all_reduce-good.log"), fixture("p5-2node-all_reduce-degraded.log")]
    out_csv, out_png = tmp_path / "rows.csv", tmp_path / "plots" / "busbw.png"
    result = report(
        *logs, "--instance-type", "p5.48xlarge", "--json", "--csv", str(out_csv), "--plot", str(out_png)
    )
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert [run["verdict"]["ok"] for run in document["runs"]] == [True, False]
    good = document["runs"][0]
    assert good["nodes"] == 2 and good["ranks"] == 16 and len(good["rows"]) == 32
    assert good["verdict"]["peak_busbw_gbytes_per_s"] == 488.47
    with out_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 64 and rows[-1]["oop_busbw_gbytes_per_s"] == "193.6"
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out_png.stat().st_size > 10_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["missing.log"],
            "error: cannot read missing.log: No such file or directory; pass an nccl-tests output file",
        ),
        (
            [fixture("p5-2node-all_reduce-good.log"), "--instance-type", "p9.huge"],
            "error: unknown instance type 'p9.huge'; known: ",
        ),
        (
            [fixture("p5-2node-all_reduce-good.log"), "--min-busbw", "-3"],
            "error: --min-busbw=-3.0 must be more than 0 (GB/s)",
        ),
        (
            [fixture("p5-2node-all_reduce-good.log"), "--judge-min-bytes", "lots"],
            "error: size 'lots' is not a number",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = report(*args)
    assert result.returncode == 2, result.stdout
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1


# -- every nccl-tests format (tests/fixtures/SOURCES.md) --------------------------------------------


@pytest.mark.parametrize(
    ("log", "args", "code", "expected"),
    [
        # nccl-tests < 2.13: error 1e-06/2e-06 is rounding, far below 1e-5 x 15 ranks: not corrupt
        ("v2.11-all_reduce-2node-error-column.log", ["--min-busbw", "100"], 0, ["# Verdict : OK"]),
        (
            "v2.11-sendrecv-uint8-error-column.log",
            [],
            1,
            ["1 result(s) with an error above nccl-tests' tolerance: results are corrupt"],
        ),
        ("v2.17.9-alltoall-inplace-na.log", ["--min-busbw", "250"], 0, ["# Verdict : OK"]),
        (
            "v2.17.9-all_reduce-cputime-timestamps.log",
            ["--instance-type", "p5.48xlarge"],
            0,
            ["Peak busbw : 471.30"],
        ),
        ("v2.19.6-all_reduce-per-iteration.log", ["--min-busbw", "480"], 1, ["peak busbw 470.91 GB/s"]),
        ("p4de-2node-all_gather-good.log", [], 0, ["results not checked (#wrong N/A: nccl-tests -c 0)"]),
    ],
)
def test_every_format_gets_a_verdict(log, args, code, expected):
    result = report(fixture(log), *args)
    assert result.returncode == code, result.stdout + result.stderr
    for text in expected:
        assert text in result.stdout


def test_a_log_takes_its_numbers_from_the_json_it_names(tmp_path):
    (tmp_path / "all_reduce.log").write_text((FIXTURES / "v2.17.9-all_reduce-2node-json.log").read_text())
    (tmp_path / "all_reduce.json").write_text((FIXTURES / "v2.17.9-all_reduce-2node.json").read_text())
    result = report(str(tmp_path / "all_reduce.log"), "--instance-type", "p5.48xlarge", "--json")
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)["runs"][0]
    assert (
        run["source"] == "JSON all_reduce.json (with the log's NCCL lines)" and run["network"] == "Libfabric"
    )
    assert run["rows"][0]["in_place"]["busbw"] == 430.366231  # the JSON's digits, not the table's 430.37
    alone = report(fixture("v2.17.9-all_reduce-2node.json"), "--instance-type", "p5.48xlarge")
    assert alone.returncode == 0 and "read from  : json" in alone.stdout
    assert "transport unknown: run with NCCL_DEBUG=INFO" in alone.stdout  # the JSON has no NCCL lines
    without = report(fixture("v2.17.9-all_reduce-2node-json.log"), "--instance-type", "p5.48xlarge")
    assert without.returncode == 0 and "read from  : text" in without.stdout  # no JSON beside it


def test_old_error_values_land_in_the_csv(tmp_path):
    out = tmp_path / "rows.csv"
    assert report(fixture("v2.11-sendrecv-uint8-error-column.log"), "--csv", str(out)).returncode == 1
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["ip_error"], row["ip_wrong"]) for row in rows] == [
        ("0.0", "0"),
        ("0.0", "0"),
        ("300.0", "1"),
        ("0.0", "0"),
    ]
    assert rows[0]["redop"] == "" and rows[0]["root"] == "-1"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"cut.json": None}, "{dir}/cut.json: not valid JSON ("),
        ({"v1.log": "#   bytes  N  type  op  time  algbw  busbw  res\n"}, "{dir}/v1.log: table header"),
    ],
)
def test_unreadable_formats_are_bad_input(tmp_path, files, message):
    cut = (FIXTURES / "v2.17.9-all_reduce-2node.json").read_text()[:3000]
    for name, source in files.items():
        text = cut if source is None else source
        (tmp_path / name).write_text((FIXTURES / text).read_text() if text.endswith(".log") else text)
    result = report(str(tmp_path / next(iter(files))))
    assert result.returncode == 2, result.stdout
    assert result.stderr.startswith(f"error: {message.format(dir=tmp_path)}"), result.stderr
    assert result.stderr.count("\n") == 1
    assert "JSON" not in message or result.stderr.endswith("judge its text log instead\n")


def test_a_json_cut_short_leaves_the_log_to_be_judged(tmp_path):
    """The run died while writing its -J file: the log's own table decides, and says why."""
    log = (FIXTURES / "v2.17.9-all_reduce-2node-json.log").read_text()
    (tmp_path / "all_reduce.log").write_text(log.split("0:   8589934592")[0])  # died after 3 sizes
    (tmp_path / "all_reduce.json").write_text((FIXTURES / "v2.17.9-all_reduce-2node.json").read_text()[:3000])
    result = report(str(tmp_path / "all_reduce.log"), "--instance-type", "p5.48xlarge")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "read from  : text (all_reduce.json not read: not valid JSON (" in result.stdout
    assert "truncated: no '# Avg bus bandwidth' footer after 3 rows" in result.stdout
