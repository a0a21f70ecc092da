"""The README's walkthroughs, run as written in a copy of the repository."""

from __future__ import annotations

import json
import re

import pytest
import requests
from promql_check import FOLDER

from testbed.prometheus import REQUIRED_PROGRAMS as PROMETHEUS_PROGRAMS
from testbed.slurm import REQUIRED_PROGRAMS, cluster_processes
from testbed.standins import run_on_cluster
from testbed.system import require_programs
from testbed.walkthrough import run_walkthrough

README = FOLDER / "README.md"


def test_readme_local_walkthrough(artifacts_root):
    require_programs("README walkthrough", "make", "promtool")
    result = run_walkthrough(README, "local", artifacts_root / "wt-prom-local", timeout=300)
    assert result.returncode == 0, result.output[-4000:]
    assert result.output.count("SUCCESS") == 3
    assert 'training_loss{run="cpu-ddp"} 0.48726364970207214' in result.output
    assert 'training_step{run="cpu-ddp"} 60.0' in result.output


@pytest.mark.slurm
def test_readme_slurm_walkthrough_writes_targets_and_leaves_nothing_running(artifacts_root):
    require_programs("local Slurm", *REQUIRED_PROGRAMS)
    result = run_walkthrough(README, "slurm", artifacts_root / "wt-prom-slurm", timeout=300)
    assert result.returncode == 0, result.output[-4000:]
    targets = result.workdir / "4.validation_observability/4.prometheus-grafana/prometheus/targets/node.json"
    assert [group["labels"]["instance"] for group in json.loads(targets.read_text())] == ["n1", "n2"]
    assert "slurm-targets: 2 of 2 nodes (0 with GPUs)" in result.output
    conf = result.workdir / ".testbed" / "slurm" / "slurm.conf"
    assert not conf.exists() and cluster_processes(conf) == []


@pytest.mark.slurm
def test_readme_head_node_walkthrough_writes_targets_of_gpu_nodes(gpu_slurm, artifacts_root, tmp_path):
    """Section 2 as written on the head node: `make targets` on a real local Slurm of 8 nodes x 8 GPUs
    (every node gets node and EFA exporter targets, the GPU nodes DCGM's), then `make grafana` with docker
    stood in for (the run recorded: the pinned image, the provisioning folders mounted read-only)."""
    image = re.search(r"^GRAFANA_IMAGE \?= (\S+)", (README.parent / "Makefile").read_text(), re.M)[1]
    run = run_on_cluster(
        README,
        "head-node",
        artifacts_root / "wt-prom-head-node",
        tmp_path / "bin",
        gpu_slurm,
        tools=("docker",),
        instance_type=None,
        images_present=[image],
    )
    targets = run.workdir / "4.validation_observability/4.prometheus-grafana/prometheus/targets"
    for job in ("node", "efa", "dcgm"):
        groups = json.loads((targets / f"{job}.json").read_text())
        assert [group["labels"]["instance"] for group in groups] == [f"n{i}" for i in range(1, 9)], job
    assert "slurm-targets: 8 of 8 nodes (8 with GPUs)" in run.output
    (grafana,) = run.images["runs"]
    folder = run.workdir / "4.validation_observability/4.prometheus-grafana/grafana"
    assert grafana["image"] == image and grafana["options"][:2] == ["--rm", "--network"]
    assert f"{folder}/provisioning:/etc/grafana/provisioning:ro" in grafana["options"]
    assert f"{folder}/dashboards:/var/lib/grafana/dashboards:ro" in grafana["options"]


@pytest.mark.slurm
def test_readme_serve_walkthrough_runs_prometheus_on_the_targets_of_the_gpu_nodes(gpu_slurm, artifacts_root):
    """`make prometheus` as written on the head node of a real local Slurm of 8 GPU nodes: it writes the
    targets from sinfo, then Prometheus serves in the foreground on its default port with prometheus.yml;
    the test reads its API (every node discovered per exporter, the alert rules loaded), then stops it
    as Ctrl-C does."""
    require_programs("README walkthrough", "make", *PROMETHEUS_PROGRAMS)
    api = "http://127.0.0.1:9090/api/v1"
    seen: dict[str, object] = {}

    def serving() -> bool:
        try:
            targets = requests.get(f"{api}/targets", timeout=2).json()["data"]["activeTargets"]
            rules = requests.get(f"{api}/rules", timeout=2).json()["data"]["groups"]
        except (requests.RequestException, ValueError, KeyError):
            return False
        seen["targets"], seen["rules"] = targets, rules
        return len(targets) >= 1 + 3 * 8 and bool(rules)

    result = run_walkthrough(
        README,
        "serve",
        artifacts_root / "wt-prom-serve",
        timeout=120,
        env={"SLURM_CONF": str(gpu_slurm.conf_path)},
        until=serving,
    )
    assert result.returncode == 0, result.output[-3000:]
    assert "slurm-targets: 8 of 8 nodes (8 with GPUs)" in result.output
    by_job: dict[str, list[str]] = {}
    for target in seen["targets"]:
        by_job.setdefault(target["labels"]["job"], []).append(target["labels"]["instance"])
    assert sorted(by_job["prometheus"]) == ["localhost:9090"]
    for job in ("node", "efa", "dcgm"):
        assert sorted(by_job[job]) == sorted(f"n{i}" for i in range(1, 9)), job
    assert {group["file"].rsplit("/", 1)[-1] for group in seen["rules"]} == {"alerts.yml"}
    storage = result.workdir / "4.validation_observability/4.prometheus-grafana/data"
    assert storage.is_dir()  # its TSDB, in the folder it was started from
    assert "Server is ready to receive web requests" in result.output
