"""What the dashboard and rule tests need: the queries of a Grafana dashboard, the metric names a
PromQL expression uses, the names an exporter's text output emits, and promtool's verdict."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

FOLDER = Path(__file__).resolve().parents[1]
DASHBOARDS = sorted((FOLDER / "grafana" / "dashboards").glob("*.json"))
RULES = FOLDER / "prometheus" / "rules" / "alerts.yml"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Grafana's built-in interval variables become a fixed range; every other variable a match-all regex.
BUILTIN_RANGES = ("__rate_interval", "__interval", "__range")
_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]")
_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan", "atan2",
}  # fmt: skip
_IDENTIFIER = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])")
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_LABEL_VALUES = re.compile(r"label_values\(\s*([a-zA-Z_:][\w:]*)")
# Series Prometheus itself writes (for rules and scrapes), not any exporter.
PROMETHEUS_OWN = {"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds", "scrape_samples_scraped"}


@dataclass(frozen=True)
class Query:
    """One panel target of one dashboard."""

    dashboard: str
    panel: str
    ref: str
    expr: str

    @property
    def label(self) -> str:
        return f"{self.dashboard}: {self.panel} ({self.ref})"


def load_dashboard(path: Path) -> dict:
    return json.loads(path.read_text())


def panels(dashboard: dict) -> list[dict]:
    """Every panel, including those nested in collapsed rows."""
    found = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def queries(path: Path) -> list[Query]:
    """The PromQL of every panel target, in order."""
    dashboard = load_dashboard(path)
    return [
        Query(path.stem, panel["title"], target["refId"], target["expr"])
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


def variable_queries(path: Path) -> list[str]:
    """The queries of the dashboard's query variables (Grafana's ``label_values(...)``)."""
    found = []
    for variable in load_dashboard(path)["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            found.append(query["query"] if isinstance(query, dict) else query)
    return found


def substitute_variables(expr: str, rate_range: str = "5m") -> str:
    """Replace Grafana variables so the expression is plain PromQL."""

    def value(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        return rate_range if name in BUILTIN_RANGES else ".*"

    return _VARIABLE.sub(value, expr)


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, keywords and label names excluded)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    names: set[str] = set()
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = _LABEL_LIST.sub(" ", text)  # by (...), on (...), group_left (...)
    text = re.sub(r"\boffset\s+-?\w+", " ", text)
    for match in _IDENTIFIER.finditer(text):
        word, after = match.group(1), text[match.end() :].lstrip()
        if word not in _KEYWORDS and not after.startswith("("):
            names.add(word)
    return names


def label_values_metrics(query: str) -> set[str]:
    """The metric of Grafana's ``label_values(metric{...}, label)`` (none for label_values(label))."""
    match = _LABEL_VALUES.search(query)
    if not match or query[match.end() :].lstrip().startswith(")"):
        return set()
    return {match.group(1)}


def exposition_names(text: str) -> set[str]:
    """Sample names in a text exposition (counters with their ``_total``)."""
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def rule_expressions(path: Path = RULES) -> dict[str, str]:
    """{alert or record name: expr} of a rule file."""
    groups = yaml.safe_load(path.read_text())["groups"]
    return {rule.get("alert") or rule["record"]: rule["expr"] for group in groups for rule in group["rules"]}


def promtool_check_expressions(
    promtool: str, expressions: dict[str, str], folder: Path
) -> subprocess.CompletedProcess:
    """Run ``promtool check rules`` on a rule file with one recording rule per expression."""
    rules = [{"record": f"check:{index}", "expr": expr} for index, expr in enumerate(expressions.values())]
    path = folder / "expressions.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "expressions", "rules": rules}]}, sort_keys=False))
    return subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=120, check=False
    )
