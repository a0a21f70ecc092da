"""Each check on recorded outputs: its verdict and severity, and SKIP (never PASS) where it cannot apply."""

from __future__ import annotations

from pathlib import Path

import pytest
from gpu_healthcheck import checks
from gpu_healthcheck.commands import CommandResult
from gpu_healthcheck.instance_types import find_file, load
from healthcheck_fakes import FIXTURES, P5_GOOD, FakeTools

TYPES = load(find_file())


def run(
    outputs: dict, instance: str | None = "p5.48xlarge", ids: str = "all", pingpong=None, **options
) -> dict:
    tools = FakeTools(outputs, pingpong=pingpong)
    opts = checks.Options(instance=TYPES[instance] if instance else None, **options)
    ctx = checks.Context(opts, run=tools.run, run_pair=tools.run_pair)
    return {result.id: result for result in checks.run_checks(ctx, checks.select(ids, []))}


def test_healthy_p5_passes_what_it_can_and_skips_missing_tools():
    results = run(
        P5_GOOD | {"all_reduce_perf": "all_reduce_perf-1node-p5-good.txt"},
        pingpong="fi_pingpong-efa-client.txt",
    )
    status = {key: result.status for key, result in results.items()}
    assert status == {
        "GPU001": "PASS",
        "GPU002": "PASS",
        "GPU003": "PASS",
        "GPU004": "SKIP",  # no dcgmi recorded: not installed
        "GPU005": "PASS",
        "GPU006": "PASS",
        "EFA001": "PASS",
        "EFA002": "PASS",
    }
    assert results["GPU001"].detail == "8x NVIDIA H100 80GB HBM3, driver 570.172.08"
    assert results["GPU004"].detail.startswith("dcgmi not found; install DCGM")
    assert results["GPU006"].detail == "peak busbw 471.3 GB/s at 4294967296 B >= 350 GB/s"
    assert results["EFA001"].detail.startswith("32 EFA devices")
    assert "up to 3278 MB/s" in results["EFA002"].detail


def test_this_cpu_machine_skips_everything_with_reasons():
    results = run({}, instance=None)
    assert {r.status for r in results.values()} == {"SKIP"}
    assert results["GPU003"].detail.startswith("no NVIDIA GPU here: nvidia-smi not found")
    assert results["EFA001"].detail.startswith("instance type unknown: pass --instance-type")


@pytest.mark.parametrize(
    ("replace", "check", "severity", "detail"),
    [
        (
            {"nvidia-smi --query-gpu": "nvidia-smi-query-p5-missing-gpu.csv"},
            "GPU001",
            "isolate",
            "7 of 8 GPUs visible on p5.48xlarge",
        ),
        (
            {"nvidia-smi -q": "nvidia-smi-q-ecc-p5-bad.txt"},
            "GPU002",
            "isolate",
            "GPU 0000:86:00: row remapping failure; GPU 0000:a8:00: 2 uncorrectable ECC errors since boot; "
            "GPU 0000:a8:00: row remap pending",
        ),
        (
            {"dmesg": "dmesg-xid79.txt"},
            "GPU003",
            "isolate",
            "Xid 79 on 0000:86:00 x1 (GPU has fallen off the bus); Xid 45 on 0000:53:00 x1",
        ),
        (
            {"dmesg": "dmesg-xid13-app.txt"},
            "GPU003",
            "monitor",
            "Xid 13 on 0000:64:00 x2 (graphics engine exception (usually the application))",
        ),
        (
            {"dcgmi diag": "dcgmi-diag-r2-memory-fail.json"},
            "GPU004",
            "isolate",
            "level 1: GPU Memory fail on GPU 2: Error using CUDA API",
        ),
        (
            {"dcgmi diag": "dcgmi-diag-r2-pcie-warn.json"},
            "GPU004",
            "monitor",
            "PCIe warn on GPU 6: GPU 6's link is running at Gen 4 x8",
        ),
        (
            {"nvidia-smi topo": "nvidia-smi-topo-p5-nvlink-down.txt"},
            "GPU005",
            "reboot",
            "7 GPU pairs without NVLink (GPU0-GPU3 SYS",
        ),
        (
            {"nvidia-smi --query-gpu": "nvidia-smi-query-p5-missing-gpu.csv"},
            "GPU005",
            "monitor",
            "GPU 0000:75:00 PCIe x8 of x16",
        ),
        (
            {"all_reduce_perf": "all_reduce_perf-1node-p5-slow.txt"},
            "GPU006",
            "reboot",
            "peak busbw 251.6 GB/s at 4294967296 B below 350 GB/s (p5.48xlarge band 350-480 GB/s)",
        ),
        (
            {"fi_info": "fi_info-efa-p5-31.txt"},
            "EFA001",
            "isolate",
            "31 of 32 EFA devices visible on p5.48xlarge",
        ),
    ],
)
def test_recorded_faults_get_their_severity(replace, check, severity, detail):
    result = run(P5_GOOD | replace, ids=check)[check]
    assert result.severity == severity, result
    assert result.status == ("WARN" if severity == "monitor" else "FAIL")
    assert detail in result.detail


def test_thresholds_and_missing_bands():
    slow = {"all_reduce_perf": "all_reduce_perf-1node-p5-slow.txt"}
    assert run(P5_GOOD | slow, ids="GPU006", min_busbw=200)["GPU006"].status == "PASS"
    no_band = run(P5_GOOD | slow, instance="p6-b200.48xlarge", ids="GPU006")["GPU006"]
    assert no_band.status == "PASS" and "no expected band" in no_band.detail
    absent = run(P5_GOOD, ids="GPU006")["GPU006"]
    assert absent.status == "SKIP" and "pass --nccl-tests-dir" in absent.detail


def test_tools_that_fail_or_print_garbage():
    broken = CommandResult(
        ("nvidia-smi",),
        True,
        9,
        "",
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
    )
    result = run({"nvidia-smi": broken}, ids="GPU001")["GPU001"]
    assert (result.severity, result.status) == ("reboot", "FAIL") and "couldn't communicate" in result.detail
    garbage = run(P5_GOOD | {"nvidia-smi topo": "dmesg-clean.txt"}, ids="GPU005")["GPU005"]
    assert garbage.status == "WARN" and garbage.detail.startswith("could not evaluate: nvidia-smi topo -m")
    no_driver = run({}, ids="GPU001,GPU002")
    assert (
        no_driver["GPU001"].severity == "isolate"
        and "nvidia-smi not found on p5.48xlarge" in no_driver["GPU001"].detail
    )
    assert (
        no_driver["GPU002"].status == "SKIP"
        and no_driver["GPU002"].detail == "nvidia-smi not found (see GPU001)"
    )


def test_kernel_log_file_and_unreadable_dmesg(tmp_path: Path):
    denied = CommandResult(
        ("dmesg",), True, 1, "", "dmesg: read kernel buffer failed: Operation not permitted"
    )
    skipped = run(P5_GOOD | {"dmesg": denied}, ids="GPU003")["GPU003"]
    assert (
        skipped.status == "SKIP"
        and "Operation not permitted" in skipped.detail
        and "--kernel-log" in skipped.detail
    )
    from_file = run(P5_GOOD | {"dmesg": denied}, ids="GPU003", kernel_log=FIXTURES / "dmesg-xid79.txt")[
        "GPU003"
    ]
    assert from_file.severity == "isolate"


def test_efa_on_instances_without_it_and_failed_loopback():
    g5 = run({}, instance="g4dn.metal", ids="EFA001,EFA002")
    assert g5["EFA001"].status == "FAIL"  # g4dn.metal has one EFA device; none visible
    loop = run(P5_GOOD, ids="EFA001,EFA002", pingpong="fi_pingpong: fi_getinfo(): No data available")[
        "EFA002"
    ]
    assert loop.severity == "reboot" and "EFA loopback failed" in loop.detail


def test_selection():
    assert [c.id for c in checks.select("fast", [])] == ["GPU001", "GPU002", "GPU003", "GPU005", "EFA001"]
    assert [c.id for c in checks.select("gpu001,EFA002", ["EFA002"])] == ["GPU001"]
    with pytest.raises(ValueError, match="unknown check GPU999; known: GPU001, GPU002"):
        checks.select("GPU999", [])


# -- GPU006 on every nccl-tests format: a corrupt verdict only on what it read for sure ---------------

GOOD_RUN = (FIXTURES / "all_reduce_perf-1node-p5-good.txt").read_text()
ARGV = ("all_reduce_perf", "-b", "1G", "-e", "4G", "-f", "2", "-g", "8", "-c", "1", "-n", "20")
COMMAND = "`all_reduce_perf -b 1G -e 4G -f 2 -g 8 -c 1 -n 20`"


def nccl(stdout: str, code: int = 0) -> dict:
    return P5_GOOD | {"all_reduce_perf": CommandResult(ARGV, True, code, stdout, "")}


def test_old_error_column_is_rounding_not_corruption():
    """nccl-tests < 2.13 printed error 2e-07 on a healthy node: PASS, where a count would isolate it."""
    result = run(
        P5_GOOD | {"all_reduce_perf": "all_reduce_perf-1node-p5-v2.11-error-column.txt"}, ids="GPU006"
    )
    assert result["GPU006"].status == "PASS", result["GPU006"]
    assert result["GPU006"].detail == "peak busbw 471.3 GB/s at 4294967296 B >= 350 GB/s"


@pytest.mark.parametrize(
    ("stdout", "reason"),
    [
        (
            GOOD_RUN.replace("#       size         count", "#      bytes             N"),
            "table header '# bytes N type redop root time",
        ),
        ("\n".join(line for line in GOOD_RUN.splitlines() if not line[:1].isspace()), "no result rows"),
        ((FIXTURES / "all_reduce_perf-1node-p5-unchecked.txt").read_text(), "#wrong is N/A in every row"),
        (GOOD_RUN.split("# Out of bounds")[0], "no '# Avg bus bandwidth' footer"),
        (
            GOOD_RUN.replace("  4295.6  249.96  437.43       0", "  4295.6  249.96"),
            "1 table line(s) do not fit the column header, first: '1073741824",
        ),
        (
            "\n".join(line for line in GOOD_RUN.splitlines() if line[:1] == " "),
            "3 table rows but no column header",
        ),
    ],
)
def test_output_it_cannot_read_is_warn_never_pass_never_drain(stdout, reason):
    result = run(nccl(stdout), ids="GPU006")["GPU006"]
    assert (result.status, result.severity) == ("WARN", "monitor"), result
    assert result.detail.startswith(f"could not evaluate the output of {COMMAND}: ")
    assert reason in result.detail and "\n" not in result.detail


def test_corruption_read_for_sure_isolates():
    wrong = run(nccl(GOOD_RUN.replace("471.30       0", "471.30       3")), ids="GPU006")["GPU006"]
    assert (wrong.severity, wrong.detail) == ("isolate", "3 wrong elements in all_reduce results")
    old = (FIXTURES / "all_reduce_perf-1node-p5-v2.11-error-column.txt").read_text()
    corrupt = old.replace("470.36  4e-07", "470.36  2e-02").replace("values : 0 OK", "values : 1 FAILED")
    result = run(nccl(corrupt, code=1), ids="GPU006")["GPU006"]
    assert result.severity == "isolate"
    assert result.detail == "1 result(s) above nccl-tests' error tolerance in all_reduce results"
    crashed = run(nccl("# nThread 1 nGpus 8\n", code=3), ids="GPU006")["GPU006"]
    assert crashed.severity == "reboot" and "did not finish" in crashed.detail  # the exit status says so
