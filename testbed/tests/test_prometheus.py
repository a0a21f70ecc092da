"""The local Prometheus behaves like Prometheus: jobs added and removed at run time, rules loaded,
bad configs and queries rejected with the reason, and nothing left behind when it stops."""

from __future__ import annotations

import pytest

from testbed.prometheus import (
    NODE_EXPORTER_PROGRAMS,
    REQUIRED_PROGRAMS,
    LocalNodeExporter,
    LocalPrometheus,
    PrometheusError,
)
from testbed.system import require_programs

pytestmark = pytest.mark.prometheus


@pytest.fixture
def node_exporter(tmp_path):
    require_programs("node exporter", *NODE_EXPORTER_PROGRAMS)
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    (textfiles / "demo.prom").write_text("# TYPE testbed_demo_value gauge\ntestbed_demo_value 42\n")
    with LocalNodeExporter(textfiles, tmp_path / "node-exporter.log") as exporter:
        yield exporter


def test_a_job_added_at_run_time_is_scraped_and_removed_again(local_prometheus, node_exporter):
    assert "testbed_demo_value 42" in node_exporter.metrics()
    with local_prometheus.scraping("testbed-demo", [node_exporter.target]):
        result = local_prometheus.wait_for('testbed_demo_value{job="testbed-demo"}', timeout=60)
        assert float(result[0]["value"][1]) == 42
        assert local_prometheus.targets("testbed-demo")[0]["health"] == "up"
    assert local_prometheus.targets("testbed-demo") == []
    assert "testbed-demo" not in str(local_prometheus.config())


def test_a_rejected_config_is_an_error_with_the_reason_and_changes_nothing(local_prometheus):
    with pytest.raises(PrometheusError, match="scrape timeout greater than scrape interval"):
        local_prometheus.add_job("testbed-bad", ["127.0.0.1:1"], scrape_interval="1s", scrape_timeout="5s")
    assert local_prometheus.targets("testbed-bad") == []
    local_prometheus.add_job("testbed-once", ["127.0.0.1:1"])
    try:
        with pytest.raises(PrometheusError, match="already exists"):
            local_prometheus.add_job("testbed-once", ["127.0.0.1:2"])
    finally:
        local_prometheus.remove_job("testbed-once")


def test_rule_files_load_and_a_broken_one_is_refused(local_prometheus, tmp_path):
    good = tmp_path / "good.yml"
    good.write_text(
        "groups:\n  - name: g\n    rules:\n      - record: testbed:up:sum\n        expr: sum(up)\n"
    )
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n  - name: g\n    rules:\n      - record: testbed:bad\n        expr: sum(up\n")
    local_prometheus.set_rule_files([good])
    try:
        local_prometheus.wait_for("testbed:up:sum", timeout=30)
        with pytest.raises(PrometheusError, match=r"broken\.yml"):
            local_prometheus.set_rule_files([broken])
        assert [group["file"] for group in local_prometheus.rule_groups()] == [str(good)]
    finally:
        local_prometheus.set_rule_files([])
    assert local_prometheus.rule_groups() == []


def test_a_bad_query_is_an_error_naming_the_problem(local_prometheus):
    with pytest.raises(PrometheusError, match="bad_data"):
        local_prometheus.query("sum(up")


def test_start_and_stop_leave_nothing_behind():
    prometheus = LocalPrometheus()
    with prometheus:
        assert prometheus.running() and prometheus.query("vector(1)")[0]["value"][1] == "1"
        state = prometheus.state_dir
        assert (state / "prometheus.yml").is_file()
    assert not prometheus.running() and not state.exists()


def test_missing_prometheus_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("sys.executable", str(tmp_path / "python"))  # no venv bin either
    with pytest.raises(PrometheusError, match=r"prometheus, promtool not found; run `sudo make system-deps`"):
        LocalPrometheus(state_dir=tmp_path / "state").start()
    assert REQUIRED_PROGRAMS == ("prometheus", "promtool")
