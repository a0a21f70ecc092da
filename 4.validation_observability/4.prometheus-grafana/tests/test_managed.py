"""The managed option: CloudFormation for Amazon Managed Prometheus/Grafana and the collector configurations.

cfn-lint and checkov run over these templates in `nox -s lint` and `nox -s security`. Deploying them on
the AWS emulator is not done here (see the README); these tests check what the templates promise.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import amp_remote_write
import pytest
import stack_metrics
import yaml
from promql_check import FOLDER

from testbed import kube
from testbed.cfn import load_template
from testbed.ports import free_port
from testbed.system import require_programs

MANAGED = FOLDER / "managed"
WORKSPACE_TEMPLATE = MANAGED / "managed-prometheus-grafana.yaml"
COLLECTOR_TEMPLATE = MANAGED / "eks-collector.yaml"
RBAC = MANAGED / "eks-scraper-rbac.yaml"
EFA_DAEMONSET = FOLDER.parent / "3.efa-node-exporter" / "kubernetes" / "efa-exporter.yaml-template"
TOOL = Path(amp_remote_write.__file__)
# What the workspace's PrometheusEndpoint attribute looks like (AWS documentation's format).
ENDPOINT = (
    "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d/"
)


def test_no_account_region_or_zone_is_hard_coded():
    for path in (WORKSPACE_TEMPLATE, COLLECTOR_TEMPLATE):
        text = "\n".join(line for line in path.read_text().splitlines() if "AllowedPattern" not in line)
        assert not re.search(r"\b\d{12}\b", text), f"{path.name}: account id"
        assert not re.search(r"\b(us|eu|ap|sa|ca|me|af)-[a-z]+-\d[a-z]?\b", text), (
            f"{path.name}: region or zone"
        )


def test_outputs_are_exported_under_the_stack_name_and_chain_into_the_collector_stack():
    for path in (WORKSPACE_TEMPLATE, COLLECTOR_TEMPLATE):
        for key, output in load_template(path)["Outputs"].items():
            assert output["Export"]["Name"] == {"Fn::Sub": f"${{AWS::StackName}}-{key}"}, f"{path.name} {key}"
    scraper = load_template(COLLECTOR_TEMPLATE)["Resources"]["EksScraper"]["Properties"]
    imported = scraper["Destination"]["AmpConfiguration"]["WorkspaceArn"]["Fn::ImportValue"]["Fn::Sub"]
    assert imported == "${WorkspaceStackName}-WorkspaceArn"
    assert "WorkspaceArn" in load_template(WORKSPACE_TEMPLATE)["Outputs"]


def test_the_remote_write_url_output_is_what_the_collector_tool_takes():
    value = load_template(WORKSPACE_TEMPLATE)["Outputs"]["RemoteWriteUrl"]["Value"]["Fn::Sub"]
    url = value.replace("${Workspace.PrometheusEndpoint}", ENDPOINT)
    assert amp_remote_write.region_of(url) == "eu-west-1"


def test_grafana_may_only_query_the_workspace_and_the_head_node_only_write():
    resources = load_template(WORKSPACE_TEMPLATE)["Resources"]
    statements = resources["GrafanaRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    actions = [action for statement in statements for action in statement["Action"]]
    assert all(a in {"aps:QueryMetrics", "aps:GetSeries", "aps:GetLabels", "aps:GetMetricMetadata",
                     "aps:DescribeWorkspace"} for a in actions)  # fmt: skip
    assert all(s["Resource"] == {"Fn::GetAtt": ["Workspace", "Arn"]} for s in statements)
    write = resources["RemoteWritePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert write == [
        {"Effect": "Allow", "Action": "aps:RemoteWrite", "Resource": {"Fn::GetAtt": ["Workspace", "Arn"]}}
    ]
    workspace = resources["Workspace"]["Properties"]
    assert workspace["KmsKeyArn"] == {"Fn::GetAtt": ["EncryptionKey", "Arn"]}
    assert resources["EncryptionKey"]["Properties"]["EnableKeyRotation"] is True


def scraper_config() -> str:
    scraper = load_template(COLLECTOR_TEMPLATE)["Resources"]["EksScraper"]["Properties"]
    return scraper["ScrapeConfiguration"]["ConfigurationBlob"]["Fn::Base64"]


def with_static_pod(config: dict, address: str, meta: dict[str, str]) -> dict:
    """The collector's config with Kubernetes discovery replaced by one static "pod" carrying the
    ``__meta_kubernetes_*`` labels discovery would give it (Debian's Prometheus is built without
    Kubernetes discovery; the relabelling, which is what decides job, instance and port, runs as is)."""
    job = dict(config["scrape_configs"][0])
    assert job.pop("kubernetes_sd_configs") == [{"role": "pod"}]
    job["static_configs"] = [{"targets": [address], "labels": meta}]
    return {**config, "scrape_configs": [job]}


def efa_pod_meta(port: int) -> dict[str, str]:
    """Discovery labels of a pod of the EFA exporter DaemonSet (rendered from its template)."""
    pod = yaml.safe_load(kube.render_manifest(EFA_DAEMONSET, {"IMAGE": "x/efa:1", "NAMESPACE": "monitoring"}))
    metadata = pod["spec"]["template"]["metadata"]
    meta = {
        "__meta_kubernetes_namespace": "monitoring",
        "__meta_kubernetes_pod_node_name": "ip-10-1-2-3.ec2.internal",
    }
    for key, value in metadata["annotations"].items():
        meta["__meta_kubernetes_pod_annotation_" + re.sub(r"[^a-zA-Z0-9]", "_", key)] = value
    for key, value in metadata["labels"].items():
        meta["__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9]", "_", key)] = value
    meta["__meta_kubernetes_pod_annotation_prometheus_io_port"] = str(
        port
    )  # where this test's exporter listens
    return meta


def test_eks_collector_configuration_passes_promtool(tmp_path):
    promtool = require_programs("promtool", "promtool")["promtool"]
    decoded = base64.b64decode(base64.b64encode(scraper_config().encode())).decode()  # what the API receives
    path = tmp_path / "scraper.yml"
    path.write_text(yaml.safe_dump(with_static_pod(yaml.safe_load(decoded), "10.1.2.3", efa_pod_meta(9109))))
    result = subprocess.run(
        [promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.prometheus
def test_eks_collector_relabelling_scrapes_the_efa_pod_as_job_efa(local_prometheus, efa_sysfs_tree):
    proc = subprocess.Popen(
        [sys.executable, str(stack_metrics.EFA_EXPORTER), "--listen-address", "127.0.0.1", "--port", "0",
         "--sysfs-root", str(efa_sysfs_tree)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        port = int(proc.stdout.readline().split("http://")[1].split("/")[0].rsplit(":", 1)[1])
        config = with_static_pod(yaml.safe_load(scraper_config()), "127.0.0.1", efa_pod_meta(port))
        job = {**config["scrape_configs"][0], "scrape_interval": "1s", "scrape_timeout": "1s"}
        with local_prometheus.scraping_configs([job]):
            up = local_prometheus.wait_for(
                'up{job="efa", instance="ip-10-1-2-3.ec2.internal"} == 1', timeout=60
            )
            assert up[0]["metric"]["namespace"] == "monitoring"
            devices = local_prometheus.wait_for('efa_devices{job="efa", instance="ip-10-1-2-3.ec2.internal"}')
            assert float(devices[0]["value"][1]) == 2
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()


def test_eks_collector_finds_the_efa_daemonset_under_the_job_name_the_rules_use():
    config = yaml.safe_load(scraper_config())
    relabels = config["scrape_configs"][0]["relabel_configs"]
    sources = {label for rule in relabels for label in rule.get("source_labels", [])}
    pod = yaml.safe_load(kube.render_manifest(EFA_DAEMONSET, {"IMAGE": "x/efa:1", "NAMESPACE": "monitoring"}))
    annotations = pod["spec"]["template"]["metadata"]["annotations"]
    for key in ("prometheus.io/scrape", "prometheus.io/port", "prometheus.io/path", "prometheus.io/job"):
        meta = "__meta_kubernetes_pod_annotation_" + re.sub(r"[^a-zA-Z0-9]", "_", key)
        assert meta in sources, f"the collector ignores {key}"
    assert annotations["prometheus.io/job"] == "efa" and annotations["prometheus.io/scrape"] == "true"
    job_rule = next(
        r
        for r in relabels
        if r.get("source_labels") == ["__meta_kubernetes_pod_annotation_prometheus_io_job"]
    )
    assert job_rule["target_label"] == "job" and job_rule["regex"] == "(.+)"


def test_eks_rbac_manifest_validates_and_binds_the_access_entry_user():
    text = RBAC.read_text()
    assert kube.validate_manifest(text) == []
    binding = next(doc for doc in yaml.safe_load_all(text) if doc["kind"] == "ClusterRoleBinding")
    access = load_template(COLLECTOR_TEMPLATE)["Resources"]["EksScraperAccess"]["Properties"]
    assert binding["subjects"] == [
        {"kind": "User", "name": access["Username"], "apiGroup": "rbac.authorization.k8s.io"}
    ]


def run_tool(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def test_agent_config_keeps_the_scrape_jobs_and_adds_signed_remote_write(tmp_path):
    out = tmp_path / "agent.yml"
    result = run_tool("--remote-write-url", ENDPOINT + "api/v1/remote_write", "--out", out)
    assert result.returncode == 0, result.stderr
    agent, source = (
        yaml.safe_load(out.read_text()),
        yaml.safe_load((FOLDER / "prometheus/prometheus.yml").read_text()),
    )
    assert [j["job_name"] for j in agent["scrape_configs"]] == [
        j["job_name"] for j in source["scrape_configs"]
    ]
    assert "rule_files" not in agent  # agent mode evaluates no rules
    files = [
        f for job in agent["scrape_configs"] for sd in job.get("file_sd_configs", []) for f in sd["files"]
    ]
    assert files and all(
        Path(f).is_absolute() and f.startswith(str(FOLDER / "prometheus" / "targets")) for f in files
    )
    assert agent["remote_write"][0]["sigv4"] == {"region": "eu-west-1"}


def test_bad_remote_write_url_is_one_line_naming_the_stack_output(tmp_path):
    result = run_tool("--remote-write-url", "https://example.com/api/v1/write", "--out", tmp_path / "a.yml")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "RemoteWriteUrl output" in result.stderr and not (tmp_path / "a.yml").exists()
    make = subprocess.run(
        ["make", "-C", str(FOLDER), "agent-config", "REMOTE_WRITE_URL="],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert make.returncode != 0 and "REMOTE_WRITE_URL is not set" in make.stderr


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(f"{url}/-/ready", timeout=5) as response,  # noqa: S310 (loopback)
        ):
            if response.status == 200:
                return True
        time.sleep(0.2)
    return False


@pytest.mark.prometheus
def test_prometheus_agent_mode_starts_with_the_generated_configuration(tmp_path):
    prometheus = require_programs("Prometheus", "prometheus")["prometheus"]
    out = tmp_path / "agent.yml"
    assert run_tool("--remote-write-url", ENDPOINT + "api/v1/remote_write", "--out", out).returncode == 0
    port = free_port()
    # SigV4 signing needs credentials at start; placeholders suffice (nothing reaches AWS from here).
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "placeholder", "AWS_SECRET_ACCESS_KEY": "placeholder"}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    log = tmp_path / "agent.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [prometheus, "--enable-feature=agent", f"--config.file={out}",
             f"--storage.agent.path={tmp_path / 'wal'}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=sink, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        assert wait_ready(f"http://127.0.0.1:{port}", proc), log.read_text()[-3000:]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
