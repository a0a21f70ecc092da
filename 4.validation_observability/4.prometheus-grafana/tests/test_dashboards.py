"""Grafana dashboards: self-contained, valid PromQL, only metrics that exist, answered by real Prometheus."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import slurm_targets
import stack_metrics
import training_textfile
import yaml
from promql_check import (
    DASHBOARDS,
    FIXTURES,
    FOLDER,
    RULES,
    exposition_names,
    label_values_metrics,
    load_dashboard,
    metric_names,
    panels,
    promtool_check_expressions,
    queries,
    substitute_variables,
    variable_queries,
)
from stack_metrics import TRAINING_FIXTURES, efa_exposition, training_names, training_state

from testbed.prometheus import LocalNodeExporter
from testbed.system import require_programs

ROOT = FOLDER.parents[1]
ALL_QUERIES = [query for path in DASHBOARDS for query in queries(path)]


def test_there_are_dashboards_with_queries():
    assert {path.stem for path in DASHBOARDS} == {"cluster", "efa", "training"}
    assert len(ALL_QUERIES) > 40


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_is_self_contained(path):
    dashboard = load_dashboard(path)
    assert "__inputs" not in dashboard and not dashboard.get("gnetId"), (
        "nothing fetched or imported at deploy time"
    )
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert (
        variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    )
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for panel in panels(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, f"{panel['title']} is wider than the grid"
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}" and target["expr"].strip()
    text = path.read_text()
    assert "http://" not in text and "https://" not in text


def test_dashboard_uids_are_unique():
    uids = Counter(load_dashboard(path)["uid"] for path in DASHBOARDS)
    assert all(count == 1 for count in uids.values()), uids


def test_every_panel_query_is_valid_promql(tmp_path):
    promtool = require_programs("promtool", "promtool")["promtool"]
    expressions = {query.label: substitute_variables(query.expr) for query in ALL_QUERIES}
    assert not any("$" in expr for expr in expressions.values())
    result = promtool_check_expressions(promtool, expressions, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(expressions)} rules found" in result.stdout
    broken = promtool_check_expressions(promtool, {"broken": "sum(rate(efa_tx_bytes_total[5m])"}, tmp_path)
    assert broken.returncode != 0  # the check itself can fail


def test_metric_names_are_found_in_expressions():
    expr = (
        'sum by (instance) (rate(efa_tx_bytes_total{instance=~".*", device!="x"}[5m])) '
        "/ on (instance) group_left (gpu) DCGM_FI_DEV_GPU_UTIL offset 5m or vector(0) "
        '+ label_replace(up, "a", "b", "", "") and bool time() - training_step'
    )
    assert metric_names(expr) == {"efa_tx_bytes_total", "DCGM_FI_DEV_GPU_UTIL", "up", "training_step"}
    assert label_values_metrics('label_values(up{job="node"}, instance)') == {"up"}
    assert label_values_metrics("label_values(instance)") == set()


def test_every_metric_a_dashboard_uses_is_one_an_exporter_emits(known_metrics):
    unknown = {}
    for query in ALL_QUERIES:
        used = metric_names(substitute_variables(query.expr))
        assert used, f"{query.label}: no metric in {query.expr!r}"
        if used - known_metrics:
            unknown[query.label] = sorted(used - known_metrics)
    for path in DASHBOARDS:
        for variable_query in variable_queries(path):
            if label_values_metrics(variable_query) - known_metrics:
                unknown[f"{path.stem}: variable {variable_query}"] = sorted(
                    label_values_metrics(variable_query)
                )
    assert not unknown, f"queries of metrics no exporter emits: {unknown}"


def test_each_exporter_backs_at_least_one_panel(exporter_names):
    used = set().union(*(metric_names(substitute_variables(q.expr)) for q in ALL_QUERIES))
    for exporter, names in exporter_names.items():
        assert used & names, f"no panel shows anything from the {exporter}"


def test_grafana_provisioning_and_image_pin():
    provider = yaml.safe_load((FOLDER / "grafana/provisioning/dashboards/dashboards.yml").read_text())[
        "providers"
    ][0]
    makefile = (FOLDER / "Makefile").read_text()
    assert f"grafana/dashboards:{provider['options']['path']}:ro" in makefile
    assert "grafana/provisioning:/etc/grafana/provisioning:ro" in makefile
    datasource = yaml.safe_load((FOLDER / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasource["datasources"][0]["type"] == "prometheus"
    versions = yaml.safe_load((ROOT / "2.ami_and_containers" / "versions.yaml").read_text())
    assert f"GRAFANA_IMAGE ?= {versions['images']['grafana']}\n" in makefile


# -- a real Prometheus with the stack's scrape jobs, the EFA exporter and training metrics ----------------


def start_efa_exporter(sysfs: Path) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(stack_metrics.EFA_EXPORTER),
            "--listen-address",
            "127.0.0.1",
            "--port",
            "0",
            "--sysfs-root",
            str(sysfs),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = proc.stdout.readline()
    assert "serving http://" in line, line
    return proc, int(line.split("http://")[1].split("/")[0].rsplit(":", 1)[1])


def stack_jobs(targets_dir: Path) -> list[dict]:
    """The node and efa jobs of prometheus.yml as they are, their file_sd paths made absolute."""
    config = yaml.safe_load((FOLDER / "prometheus" / "prometheus.yml").read_text())
    jobs = [job for job in config["scrape_configs"] if job["job_name"] in {"node", "efa"}]
    for job in jobs:
        for sd in job["file_sd_configs"]:
            sd["files"] = [str(targets_dir / Path(name).name) for name in sd["files"]]
    return jobs


@pytest.fixture(scope="module")
def live_stack(local_prometheus, efa_sysfs_tree, tmp_path_factory):
    """Training metrics in a node exporter's textfile folder and an EFA exporter, scraped as `node-a`
    by the node and efa jobs of prometheus.yml through target files written by slurm_targets.py."""
    require_programs("node exporter", "prometheus-node-exporter")
    work = tmp_path_factory.mktemp("stack")
    textfiles, targets = work / "textfile", work / "targets"
    textfiles.mkdir()
    targets.mkdir()
    for run, fixture in TRAINING_FIXTURES.items():
        training_textfile.write(training_state(fixture), run, textfiles / f"training_{run}.prom")
    efa, efa_port = start_efa_exporter(efa_sysfs_tree)
    try:
        with LocalNodeExporter(textfiles, work / "node-exporter.log") as node_exporter:
            node = slurm_targets.Node("node-a", "127.0.0.1", "gpu:h100:8", "alloc")
            ports = {"node": node_exporter.port, "efa": efa_port, "dcgm": 1}
            for job, groups in slurm_targets.all_groups([node], ports, "localhost:1").items():
                (targets / f"{job}.json").write_text(json.dumps(groups))
            with local_prometheus.scraping_configs(stack_jobs(targets)):
                local_prometheus.set_rule_files([RULES])
                try:
                    yield local_prometheus
                finally:
                    local_prometheus.set_rule_files([])
    finally:
        efa.send_signal(signal.SIGTERM)
        efa.wait(timeout=30)
        efa.stdout.close()


@pytest.mark.prometheus
def test_stack_jobs_scrape_training_metrics_and_efa_counters(live_stack):
    up = live_stack.wait_for('up{instance="node-a"} == 1', timeout=60, until=lambda r: len(r) == 2)
    assert {series["metric"]["job"] for series in up} == {"node", "efa"}
    loss = live_stack.wait_for('training_loss{run="cpu-ddp"}', timeout=30)
    last = [json.loads(line) for line in (FIXTURES / "cpu-ddp-metrics.jsonl").read_text().splitlines()]
    assert float(loss[0]["value"][1]) == pytest.approx([r for r in last if "event" not in r][-1]["loss"])
    assert loss[0]["metric"]["instance"] == "node-a" and loss[0]["metric"]["job"] == "node"
    mfu = live_stack.query('training_mfu_ratio{run="fsdp"}')
    assert 0 < float(mfu[0]["value"][1]) < 1
    assert float(live_stack.query('efa_devices{instance="node-a"}')[0]["value"][1]) == 2


@pytest.mark.prometheus
def test_alert_rules_evaluate_cleanly_on_live_data(live_stack):
    def evaluated(groups: list) -> bool:
        rules = [rule for group in groups for rule in group["rules"]]
        return bool(rules) and all(rule.get("lastEvaluation", "").startswith("20") for rule in rules)

    live_stack.wait_for('up{instance="node-a"} == 1', timeout=60, until=lambda r: len(r) == 2)
    deadline = time.monotonic() + 30
    while not evaluated(groups := live_stack.rule_groups()) and time.monotonic() < deadline:
        time.sleep(0.2)
    rules = [rule for group in groups for rule in group["rules"]]
    assert {rule["name"] for rule in rules} == set(yaml_alert_names())
    assert all(rule["health"] == "ok" for rule in rules), [(r["name"], r.get("lastError")) for r in rules]
    # The DOWN port of the fake node is seen by the EfaPortDown rule (pending: it needs 2 minutes).
    pending = live_stack.wait_for('ALERTS{alertname="EfaPortDown", instance="node-a"}', timeout=30)
    assert [(a["metric"]["device"], a["metric"]["alertstate"]) for a in pending] == [
        ("rdmap32s27", "pending")
    ]


def yaml_alert_names() -> list[str]:
    return [rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


@pytest.mark.prometheus
def test_every_dashboard_query_runs_and_training_and_efa_panels_show_data(live_stack, efa_sysfs_tree):
    live_stack.wait_for(
        'rate(efa_tx_bytes_total{instance="node-a"}[1m])', timeout=60
    )  # two scrapes in the window
    live = exposition_names(efa_exposition(efa_sysfs_tree)) | {"up"} | training_names()
    empty = []
    for query in ALL_QUERIES:
        result = live_stack.query(substitute_variables(query.expr, rate_range="1m"))  # raises on an API error
        if metric_names(substitute_variables(query.expr)) <= live and not result:
            empty.append(query.label)
    assert not empty, f"panels without data although their metrics are scraped: {empty}"
    runs = live_stack.query("count by (run) (training_step)")
    assert {series["metric"]["run"] for series in runs} == {"cpu-ddp", "fsdp"}
