"""prometheus.yml and the alert rules: promtool accepts them, the rule unit tests pass and can fail."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import slurm_targets
import yaml
from promql_check import FOLDER, RULES, metric_names, rule_expressions

from testbed.system import require_programs

PROMETHEUS_DIR = FOLDER / "prometheus"
RULE_TESTS = PROMETHEUS_DIR / "alerts_test.yml"
# The `for:` of NodeDown (EfaPortDown has the same `for:` but another summary).
NODE_DOWN_FOR = (
    "        for: {minutes}m\n        labels:\n          severity: critical\n"
    '        annotations:\n          summary: "{{{{ $labels.job }}}}'
)


@pytest.fixture
def promtool() -> str:
    return require_programs("promtool", "promtool")["promtool"]


def run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def copy_with_targets(tmp_path: Path) -> Path:
    """The prometheus/ folder with target files as slurm_targets.py writes them for two nodes."""
    copy = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS_DIR, copy)
    nodes = slurm_targets.parse_sinfo(
        "gpu-st-p5-1|10.1.34.17|gpu:h100:8|alloc\ngpu-st-p5-2|10.1.34.18|gpu:h100:8|idle\n"
    )
    for job, groups in slurm_targets.all_groups(nodes, slurm_targets.DEFAULT_PORTS, "localhost:8080").items():
        (copy / "targets" / f"{job}.json").write_text(json.dumps(groups))
    return copy


def test_config_with_generated_targets_passes_promtool_without_warnings(promtool, tmp_path):
    copy = copy_with_targets(tmp_path)
    result = run([promtool, "check", "config", str(copy / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout + result.stderr


def test_config_scrapes_every_exporter_through_file_discovery():
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"prometheus", "node", "dcgm", "efa", "slurm"}
    for job in ("node", "dcgm", "efa", "slurm"):
        assert jobs[job]["file_sd_configs"] == [{"files": [f"targets/{job}.json"]}]
    assert set(jobs) - {"prometheus"} == set(slurm_targets.all_groups([], slurm_targets.DEFAULT_PORTS, "x:1"))


def test_rules_pass_promtool(promtool):
    result = run([promtool, "check", "rules", str(RULES)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rule_expressions())} rules found" in result.stdout


def test_rule_unit_tests_pass(promtool):
    result = run([promtool, "test", "rules", str(RULE_TESTS)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("original", "broken"),
    [
        (NODE_DOWN_FOR.format(minutes=2), NODE_DOWN_FOR.format(minutes=10)),
        ("          ) > 0\n", "          ) > 10\n"),
        (
            "0.7 * quantile_over_time(0.5, training_tokens_per_second",
            "0.4 * quantile_over_time(0.5, training_tokens_per_second",
        ),
        ("max_over_time(DCGM_FI_DEV_XID_ERRORS[5m])", "max_over_time(DCGM_FI_DEV_XID_ERRORS[15m])"),
    ],
    ids=["NodeDown-slower", "EfaErrorsRising-threshold", "ThroughputDrop-threshold", "GpuXid-window"],
)
def test_rule_unit_tests_catch_a_changed_rule(promtool, tmp_path, original, broken):
    copy = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS_DIR, copy)
    rules = copy / "rules" / "alerts.yml"
    assert rules.read_text().count(original) == 1
    rules.write_text(rules.read_text().replace(original, broken))
    result = run([promtool, "test", "rules", str(copy / "alerts_test.yml")])
    assert result.returncode != 0, "the unit tests did not notice the change"


def test_every_alert_is_tested_firing_and_quiet():
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    for alert in rule_expressions():
        mine = [case for case in cases if case["alertname"] == alert]
        assert any(case["exp_alerts"] for case in mine), f"{alert}: no test where it fires"
        assert any(not case["exp_alerts"] for case in mine), f"{alert}: no test where it stays quiet"


def test_rules_use_only_metrics_the_exporters_emit(known_metrics):
    for alert, expr in rule_expressions().items():
        used = metric_names(expr)
        assert used, f"{alert}: no metric found in {expr!r}"
        assert used <= known_metrics, f"{alert} uses {sorted(used - known_metrics)}, which no exporter emits"


def test_make_check_runs_the_promtool_checks(promtool):
    require_programs("make", "make")
    result = run(["make", "-C", str(FOLDER), "check", f"PROMTOOL={promtool}"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(re.findall(r"SUCCESS", result.stdout)) == 3
