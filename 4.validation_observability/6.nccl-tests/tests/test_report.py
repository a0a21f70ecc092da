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
            "error: --min-busbw=-3.0 must be > 0 (GB/s)",
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
