"""The exporter's /metrics on fake sysfs trees: every counter present, nothing invented, errors counted."""

from __future__ import annotations

import io
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import efa_exporter
import pytest
from efa_sysfs import DEVICE_COUNTERS, OLD_DRIVER_ABSENT, PORT_COUNTERS
from prometheus_client.parser import text_string_to_metric_families

from testbed.system import require_programs

EXPORTER = Path(efa_exporter.__file__)
META = {"efa_devices", "efa_scrape_errors", "efa_scrape_duration_seconds", "efa_exporter_info"}
SERVE = [sys.executable, str(EXPORTER), "--listen-address", "127.0.0.1", "--port"]
EFA_DEVICES = ["rdmap16s27", "rdmap32s27", "rdmap144s27", "rdmap160s27"]


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """{(sample name, labels): value} of a text exposition."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(parsed: dict, name: str, **labels: str) -> float:
    return parsed[(name, frozenset(labels.items()))]


def names(parsed: dict) -> set[str]:
    return {name for name, _ in parsed}


def run_once(sysfs: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(EXPORTER), "--once", "--sysfs-root", str(sysfs)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_counter_of_every_efa_device_is_exported_with_device_and_port(p4d_sysfs):
    result = run_once(p4d_sysfs)
    assert result.returncode == 0, result.stderr
    parsed = samples(result.stdout)
    for device in ("rdmap16s27", "rdmap32s27"):
        for counter, expected in PORT_COUNTERS.items():
            if counter in {"lifespan", "rx_drops"}:
                continue
            assert value(parsed, f"efa_{counter}_total", device=device, port="1") == expected
        for counter, expected in DEVICE_COUNTERS.items():
            if counter != "lifespan":
                assert value(parsed, f"efa_device_{counter}_total", device=device) == expected
    assert value(parsed, "efa_rdma_read_bytes_total", device="rdmap144s27", port="1") == 9871503376384
    assert value(parsed, "efa_hw_counters_lifespan_seconds", device="rdmap16s27", port="1") == 0.01
    assert value(parsed, "efa_device_hw_counters_lifespan_seconds", device="rdmap16s27") == 0.01
    assert value(parsed, "efa_devices") == 4


def test_nothing_is_declared_that_the_tree_does_not_have(p4d_sysfs):
    parsed = samples(run_once(p4d_sysfs).stdout)
    devices_with = {}
    for name, labels in parsed:
        devices_with.setdefault(name, set()).add(dict(labels).get("device"))
    # The old driver's device has no RDMA-write or SRD files, so no series for it; others have them.
    for counter in OLD_DRIVER_ABSENT:
        assert devices_with[f"efa_{counter}_total"] == {"rdmap16s27", "rdmap32s27", "rdmap160s27"}
    assert "rdmap144s27" not in devices_with["efa_device_submitted_cmds_total"]
    # The non-EFA device is ignored entirely; its counter names never appear.
    assert "mlx5_0" not in set().union(*devices_with.values())
    assert not any("out_of_buffer" in name or "rx_write_requests" in name for name in names(parsed))
    # Every name is one of: a counter file of the tree, a port attribute, or the exporter's own.
    files = set(PORT_COUNTERS) | set(DEVICE_COUNTERS)
    expected = {f"efa_{c}_total" for c in files} | {f"efa_device_{c}_total" for c in files}
    expected |= {"efa_hw_counters_lifespan_seconds", "efa_device_hw_counters_lifespan_seconds"}
    expected |= {"efa_port_state_id", "efa_port_active", "efa_port_physical_state_id"}
    expected |= {"efa_port_rate_bytes_per_second"} | META
    assert names(parsed) <= expected


def test_a_node_without_rdma_devices_reports_only_the_exporters_own_metrics(tmp_path):
    (tmp_path / "class").mkdir()
    parsed = samples(run_once(tmp_path).stdout)
    assert names(parsed) == META
    assert value(parsed, "efa_devices") == 0 and value(parsed, "efa_scrape_errors") == 0


def test_garbage_and_unreadable_files_are_errors_not_values(p4d_sysfs):
    result = run_once(p4d_sysfs)
    parsed = samples(result.stdout)
    assert value(parsed, "efa_scrape_errors") == 2
    assert ("efa_rx_drops_total", frozenset({"device": "rdmap32s27", "port": "1"}.items())) not in parsed
    assert ("efa_tx_pkts_total", frozenset({"device": "rdmap160s27", "port": "1"}.items())) not in parsed
    assert value(parsed, "efa_rx_drops_total", device="rdmap16s27", port="1") == 0  # the others still count
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 2
    assert any("rdmap32s27/ports/1/hw_counters/rx_drops: not an integer: 'N/A'" in w for w in warnings)
    assert any("rdmap160s27/ports/1/hw_counters/tx_pkts" in w for w in warnings)


def test_non_utf8_and_negative_counters_are_errors_and_the_scrape_goes_on(make_sysfs):
    sysfs = make_sysfs(("rdmap0s6", {"rx_bytes": 100, "tx_bytes": -5, "rx_pkts": 7}))
    counters = sysfs / "class" / "infiniband" / "rdmap0s6" / "ports" / "1" / "hw_counters"
    (counters / "rx_pkts").write_bytes(b"\xff\xfe7\n")
    result = run_once(sysfs)
    assert result.returncode == 0, result.stderr
    parsed = samples(result.stdout)
    assert value(parsed, "efa_scrape_errors") == 2
    assert value(parsed, "efa_rx_bytes_total", device="rdmap0s6", port="1") == 100
    assert ("efa_tx_bytes_total", frozenset({"device": "rdmap0s6", "port": "1"}.items())) not in parsed
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert any("hw_counters/tx_bytes: negative counter -5" in w for w in warnings)
    assert any("hw_counters/rx_pkts: not UTF-8 text" in w for w in warnings)


def test_port_state_and_rate(p4d_sysfs):
    parsed = samples(run_once(p4d_sysfs).stdout)
    assert value(parsed, "efa_port_active", device="rdmap16s27", port="1") == 1
    assert value(parsed, "efa_port_active", device="rdmap160s27", port="1") == 0
    assert value(parsed, "efa_port_state_id", device="rdmap160s27", port="1") == 1
    assert value(parsed, "efa_port_physical_state_id", device="rdmap160s27", port="1") == 3
    assert value(parsed, "efa_port_rate_bytes_per_second", device="rdmap16s27", port="1") == 100e9 / 8
    # No rate file, no rate series (and no error: a missing attribute is not a broken one).
    assert (
        "efa_port_rate_bytes_per_second",
        frozenset({"device": "rdmap32s27", "port": "1"}.items()),
    ) not in (parsed)


def test_each_distinct_error_is_logged_once_across_scrapes(p4d_sysfs):
    log = io.StringIO()
    collector = efa_exporter.EfaCollector(p4d_sysfs, log=log)
    for _ in range(3):
        list(collector.collect())
    assert len(log.getvalue().splitlines()) == 2


def test_exposition_passes_promtool_lint(p4d_sysfs):
    promtool = require_programs("promtool", "promtool")["promtool"]
    text = run_once(p4d_sysfs).stdout
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60, check=False
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_missing_sysfs_root_is_one_line_naming_the_flag(tmp_path):
    result = run_once(tmp_path / "nope")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "--sysfs-root" in result.stderr and "nope" in result.stderr


def test_port_in_use_is_one_line_naming_the_flag(p4d_sysfs):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [*SERVE, str(port), "--sysfs-root", str(p4d_sysfs)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot listen on 127.0.0.1:") and "--port" in result.stderr


def start_exporter(sysfs: Path) -> tuple[subprocess.Popen, str]:
    """Run the exporter on a free port; return the process and its ``host:port``."""
    proc = subprocess.Popen(
        [*SERVE, "0", "--sysfs-root", str(sysfs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    assert "serving http://" in line, line + proc.stderr.read()
    return proc, line.split("http://")[1].split("/")[0]


def test_served_metrics_follow_sysfs_and_sigterm_exits_cleanly(p4d_sysfs):
    proc, target = start_exporter(p4d_sysfs)
    try:
        counter = p4d_sysfs / "class/infiniband/rdmap16s27/ports/1/hw_counters/rx_bytes"
        first = samples(urllib.request.urlopen(f"http://{target}/metrics", timeout=10).read().decode())
        counter.write_text("9873109999999\n")
        second = samples(urllib.request.urlopen(f"http://{target}/metrics", timeout=10).read().decode())
        assert value(first, "efa_rx_bytes_total", device="rdmap16s27", port="1") == 9873109961728
        assert value(second, "efa_rx_bytes_total", device="rdmap16s27", port="1") == 9873109999999
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.prometheus
def test_a_real_prometheus_scrapes_the_exporter(local_prometheus, p4d_sysfs):
    proc, target = start_exporter(p4d_sysfs)
    try:
        with local_prometheus.scraping("efa", [target]):
            up = local_prometheus.wait_for(f'up{{job="efa", instance="{target}"}} == 1', timeout=60)
            assert len(up) == 1
            mine = f'job="efa", instance="{target}"'  # series of earlier tests may linger for a scrape or two
            rx = local_prometheus.wait_for(f"efa_rx_bytes_total{{{mine}}}", timeout=30)
            assert {s["metric"]["device"] for s in rx} == set(EFA_DEVICES)
            errors = local_prometheus.query(f"efa_scrape_errors{{{mine}}}")
            assert [float(s["value"][1]) for s in errors] == [2.0]
            down = local_prometheus.query(f"efa_port_active{{{mine}}} == 0")
            assert [s["metric"]["device"] for s in down] == ["rdmap160s27"]
            # A counter written on the node shows up in Prometheus at the next scrape.
            counter = p4d_sysfs / "class/infiniband/rdmap16s27/hw_counters/cmds_err"
            counter.write_text("3\n")
            local_prometheus.wait_for(
                f'efa_device_cmds_err_total{{{mine}, device="rdmap16s27"}} == 3', timeout=30
            )
            assert local_prometheus.targets("efa")[0]["health"] == "up"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
