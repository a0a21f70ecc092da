"""The nccl-tests MPIJob: Makefile variables, per-instance values from instance-types.yaml, schema-valid."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from nccl_bench.instance_env import kubernetes_values
from nccl_bench.instance_types import find_file, load

from testbed import kube
from testbed.system import require_programs

TOOL_DIR = Path(__file__).resolve().parents[1]
TEMPLATE = TOOL_DIR / "kubernetes" / "nccl-tests.yaml-template"
MAKEFILE = TOOL_DIR / "Makefile"
IMAGE = "123456789012.dkr.ecr.us-west-2.amazonaws.com/nccl-tests:2.17.9"
INSTANCE_TYPES = load(find_file())


def envsubst_variables() -> set[str]:
    lists = re.findall(r"envsubst\s+'([^']*)'[^\n]*nccl-tests\.yaml-template", MAKEFILE.read_text())
    assert len(lists) == 1
    return set(re.findall(r"\$\$?\{([A-Z_][A-Z0-9_]*)\}", lists[0]))


def makefile_defaults() -> dict[str, str]:
    assignment = r"^([A-Z_][A-Z0-9_]*)[ \t]*\?=[ \t]*([^#\n]*?)[ \t]*$"
    found = dict(re.findall(assignment, MAKEFILE.read_text(), re.MULTILINE))
    return {name: found[name] for name in envsubst_variables() if found.get(name)}


def values(instance: str = "p5.48xlarge", **overrides: str) -> dict[str, str]:
    return {**makefile_defaults(), **kubernetes_values(INSTANCE_TYPES[instance]), "IMAGE": IMAGE, **overrides}


def test_template_uses_exactly_the_makefile_variables():
    assert kube.template_variables(TEMPLATE.read_text()) == envsubst_variables()
    per_instance = {"GPU_PER_NODE", "EFA_PER_NODE", "DEVICE_RDMA"}
    assert set(makefile_defaults()) == envsubst_variables() - per_instance - {"IMAGE"}


@pytest.mark.parametrize("instance", ["p5.48xlarge", "p4de.24xlarge", "p5en.48xlarge", "g5.48xlarge"])
def test_renders_and_validates_for_each_instance_type(instance):
    text = kube.render_manifest(TEMPLATE, values(instance, NUM_NODES="4"))
    assert kube.validate_manifest(text) == []
    job = yaml.safe_load(text)
    facts = INSTANCE_TYPES[instance]
    worker = job["spec"]["mpiReplicaSpecs"]["Worker"]
    limits = worker["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == facts.gpus and limits["vpc.amazonaws.com/efa"] == facts.efa_devices
    assert worker["replicas"] == 4 and job["spec"]["slotsPerWorker"] == facts.gpus
    launcher = job["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item["value"] for item in launcher["env"]}
    assert env["FI_EFA_USE_DEVICE_RDMA"] == ("1" if facts.device_rdma else "0")  # never 1 on g5
    assert env["NCCL_SOCKET_IFNAME"] == "^lo"
    command = launcher["args"][0]
    assert f"-np $(( 4 * {facts.gpus} ))" in command
    assert "/opt/nccl-tests/all_reduce_perf -b 8 -e 16G -f 2 -g 1 -c 1 -n 100" in command
    assert all(f"-x {name}" in command for name in env)  # every variable reaches the ranks


def test_a_missing_value_is_named():
    with pytest.raises(kube.MissingVariableError) as caught:
        kube.render_manifest(TEMPLATE, {k: v for k, v in values().items() if k != "IMAGE"})
    assert caught.value.missing == ["IMAGE"]


def test_make_k8s_writes_the_same_manifest(tmp_path):
    """`make k8s IMAGE=... INSTANCE_TYPE=...` in a copy of the folder, instance values from the YAML."""
    require_programs("make k8s", "make", "envsubst")
    copy = tmp_path / "6.nccl-tests"
    shutil.copytree(TOOL_DIR, copy, ignore=shutil.ignore_patterns("tests", "__pycache__", "results"))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "INSTANCE_TYPES_FILE": str(find_file())}
    make = ["make", "-C", str(copy), "k8s", f"PYTHON={sys.executable}", f"IMAGE={IMAGE}"]
    result = subprocess.run(
        [*make, "INSTANCE_TYPE=g5.48xlarge", "TEST=all_gather"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rendered = (copy / "kubernetes" / "nccl-tests.yaml").read_text()
    assert rendered == kube.render_manifest(TEMPLATE, values("g5.48xlarge", TEST="all_gather"))
    for args, missing in (
        ([], "INSTANCE_TYPE is not set"),
        (["INSTANCE_TYPE=p9.huge"], "unknown instance type 'p9.huge'"),
    ):
        bad = subprocess.run([*make, *args], env=env, capture_output=True, text=True, check=False)
        assert bad.returncode != 0 and missing in bad.stderr
