"""A real Prometheus (and node exporter) on loopback, scraping whatever the tests point it at.

``LocalPrometheus`` starts the Debian ``prometheus`` binary with its own config, TSDB and log in a
state folder, on 127.0.0.1 and a free port, with a 1 s scrape and rule-evaluation interval. Tests
add scrape jobs while it runs (``scraping(job, targets)`` rewrites the config and reloads it
through ``/-/reload``), load rule files, and read results back through the HTTP API
(``query``, ``wait_for``, ``targets``, ``rule_groups``), exactly as a user's Grafana or
``curl`` would. One instance is shared by a whole test session (the ``local_prometheus`` fixture
of the root ``conftest.py``); each test removes the jobs it added.

``LocalNodeExporter`` starts the Debian ``prometheus-node-exporter`` (upstream ``node_exporter``)
with only its textfile collector, the path a compute node uses to expose files such as the
training metrics that ``4.validation_observability/4.prometheus-grafana`` writes.

Nothing here is reference logic: the reference configs and exporters are run as they are.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from testbed.ports import free_port
from testbed.service import Service
from testbed.system import HOW_TO_INSTALL, find_programs, missing_message

REQUIRED_PROGRAMS: tuple[str, ...] = ("prometheus", "promtool")
NODE_EXPORTER_PROGRAMS: tuple[str, ...] = ("prometheus-node-exporter",)  # Debian's name
INTERVAL = "1s"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
POLL_S = 0.2
HTTP_TIMEOUT_S = 10.0
# The reason in a log line such as: level=error ... msg="Failed to apply configuration" err="..."
_ERROR_DETAIL = re.compile(r'level=error .*?err="((?:[^"\\]|\\.)*)"')


class PrometheusError(RuntimeError):
    """Prometheus did not start, rejected a config, or answered an API call with an error."""


class LocalPrometheus(Service):
    """A Prometheus server on 127.0.0.1; a context manager that starts and stops it."""

    error = PrometheusError
    stop_timeout_s = STOP_TIMEOUT_S

    def __init__(self, state_dir: Path | None = None, keep: bool = False) -> None:
        super().__init__(state_dir, keep, temp_prefix="localprom-")
        self.config_path = self.state_dir / "prometheus.yml"
        self.port = 0
        self._jobs: dict[str, dict[str, Any]] = {}
        self._rule_files: list[str] = []

    @property
    def url(self) -> str:
        """Base URL of the server, e.g. ``http://127.0.0.1:40123``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalPrometheus:
        """Write the config, start prometheus and wait until ``/-/ready`` answers."""
        program = _require(REQUIRED_PROGRAMS, "Prometheus")["prometheus"]
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self._write_config()
        argv = [
            program,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.state_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",  # POST /-/reload applies a rewritten config
        ]
        try:
            self._spawn("prometheus", argv, self.state_dir / "prometheus.log")
            self._wait_until(
                lambda: _answers(f"{self.url}/-/ready"), START_TIMEOUT_S, "prometheus was not ready"
            )
        except BaseException:
            self.stop()
            raise
        return self

    # -- configuration ---------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The configuration this server runs with (written to ``config_path``)."""
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": INTERVAL,
                "scrape_timeout": INTERVAL,
                "evaluation_interval": INTERVAL,
            },
            "scrape_configs": [{"job_name": "prometheus", "static_configs": [{"targets": [self._self()]}]}],
        }
        config["scrape_configs"] += list(self._jobs.values())
        if self._rule_files:
            config["rule_files"] = list(self._rule_files)
        return config

    def _self(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _write_config(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))

    def reload(self) -> None:
        """Write the config and make the server apply it; PrometheusError with its reason if rejected."""
        self._write_config()
        log = self.state_dir / "prometheus.log"
        logged = log.stat().st_size if log.exists() else 0
        status, body = _http("POST", f"{self.url}/-/reload")
        if status != 200:
            with log.open(errors="replace") as handle:
                handle.seek(logged)
                reasons = _ERROR_DETAIL.findall(handle.read())
            detail = "; ".join(dict.fromkeys(reasons)) or body.strip()
            raise PrometheusError(f"prometheus rejected {self.config_path}: {detail}")

    def add_job(self, job: str, targets: Sequence[str], metrics_path: str = "/metrics", **extra: Any) -> None:
        """Scrape ``targets`` (``host:port``) as ``job`` from now on; ``extra`` adds scrape_config keys."""
        config = {
            "job_name": job,
            "metrics_path": metrics_path,
            "static_configs": [{"targets": list(targets)}],
        }
        self.add_scrape_config({**config, **extra})

    def add_scrape_config(self, config: dict[str, Any]) -> None:
        """Add one ``scrape_configs`` entry as it is (e.g. a job of a reference prometheus.yml)."""
        job = config["job_name"]
        if job == "prometheus" or job in self._jobs:
            raise PrometheusError(f"scrape job {job!r} already exists; pick another job name")
        self._jobs[job] = dict(config)
        try:
            self.reload()
        except PrometheusError:
            del self._jobs[job]
            self.reload()
            raise

    def remove_job(self, job: str) -> None:
        """Stop scraping ``job`` (its series go stale)."""
        if self._jobs.pop(job, None) is not None:
            self.reload()

    @contextlib.contextmanager
    def scraping(self, job: str, targets: Sequence[str], **options: Any) -> Iterator[LocalPrometheus]:
        """``add_job`` for the duration of a ``with`` block, then ``remove_job``."""
        self.add_job(job, targets, **options)
        try:
            yield self
        finally:
            self.remove_job(job)

    @contextlib.contextmanager
    def scraping_configs(self, configs: Sequence[dict[str, Any]]) -> Iterator[LocalPrometheus]:
        """``add_scrape_config`` for each of ``configs`` during a ``with`` block, then remove them."""
        added = []
        try:
            for config in configs:
                self.add_scrape_config(config)
                added.append(config["job_name"])
            yield self
        finally:
            for job in added:
                self.remove_job(job)

    def set_rule_files(self, paths: Sequence[Path | str]) -> None:
        """Evaluate these rule files (alerting and recording rules) from now on; [] unloads them."""
        previous = self._rule_files
        self._rule_files = [str(Path(path).resolve()) for path in paths]
        try:
            self.reload()
        except PrometheusError:
            self._rule_files = previous
            self.reload()
            raise

    # -- HTTP API --------------------------------------------------------------------------

    def api(self, path: str, **params: str) -> Any:
        """GET ``/api/v1/<path>`` and return its ``data``; PrometheusError with the API's error."""
        query = urllib.parse.urlencode(params)
        status, body = _http("GET", f"{self.url}/api/v1/{path}" + (f"?{query}" if query else ""))
        try:
            answer = json.loads(body)
        except json.JSONDecodeError:
            raise PrometheusError(f"/api/v1/{path}: HTTP {status}, not JSON: {body[:200]}") from None
        if answer.get("status") != "success":
            raise PrometheusError(
                f"/api/v1/{path} {params}: {answer.get('errorType')}: {answer.get('error')}"
            )
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Evaluate an instant query now; the result vector as [{"metric": {...}, "value": [t, "v"]}]."""
        data = self.api("query", query=expr)
        if data["resultType"] != "vector":
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def wait_for(
        self,
        expr: str,
        timeout: float = 30.0,
        until: Callable[[list[dict[str, Any]]], bool] = bool,
    ) -> list[dict[str, Any]]:
        """Poll ``query(expr)`` until ``until(result)`` holds (default: any series); else PrometheusError."""
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = self.query(expr)
            if until(result):
                return result
            time.sleep(POLL_S)
        raise PrometheusError(f"{expr!r} did not reach the expected result in {timeout:g}s; last: {result}")

    def targets(self, job: str | None = None) -> list[dict[str, Any]]:
        """Active scrape targets (health, lastError, labels), optionally of one job."""
        active = self.api("targets", state="active")["activeTargets"]
        return [t for t in active if job is None or t["labels"].get("job") == job]

    def rule_groups(self) -> list[dict[str, Any]]:
        """Loaded rule groups with each rule's health and last error."""
        return self.api("rules")["groups"]


class LocalNodeExporter(Service):
    """The Prometheus node exporter with only its textfile collector, on 127.0.0.1 and a free port."""

    error = PrometheusError
    stop_timeout_s = STOP_TIMEOUT_S

    def __init__(self, textfile_dir: Path, log_path: Path) -> None:
        self.textfile_dir = Path(textfile_dir)
        self.log_path = Path(log_path)
        super().__init__(self.log_path.parent)  # the caller's folder: never removed
        self.port = 0

    @property
    def target(self) -> str:
        """``host:port`` for a scrape config."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> LocalNodeExporter:
        """Start the exporter and wait until ``/metrics`` answers."""
        program = _require(NODE_EXPORTER_PROGRAMS, "node exporter")["prometheus-node-exporter"]
        self.port = free_port()
        argv = [
            program,
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--collector.disable-defaults",
            "--collector.textfile",
            f"--collector.textfile.directory={self.textfile_dir}",
        ]
        try:
            self._spawn("node-exporter", argv, self.log_path)
            self._wait_until(
                lambda: _answers(f"http://{self.target}/metrics"),
                START_TIMEOUT_S,
                "node exporter did not answer",
            )
        except BaseException:
            self.stop()
            raise
        return self

    def metrics(self) -> str:
        """The exporter's ``/metrics`` text."""
        return _http("GET", f"http://{self.target}/metrics")[1]


def _require(programs: Sequence[str], component: str) -> dict[str, str]:
    found = find_programs(*programs)
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise PrometheusError(missing_message(component, missing, HOW_TO_INSTALL))
    return {name: str(path) for name, path in found.items()}


def _answers(url: str) -> bool:
    """Whether GET ``url`` answers 200 (False while nothing listens)."""
    try:
        return _http("GET", url)[0] == 200
    except OSError:
        return False


def _http(method: str, url: str) -> tuple[int, str]:
    """(status, body) of one request to a loopback URL; HTTP errors are returned, not raised."""
    request = urllib.request.Request(url, method=method)  # noqa: S310 (http to loopback only)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310 (loopback)
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
