"""kubernetes/pretrain.yaml-template: renders with the Makefile's variables, validates against the
Kubernetes and PyTorchJob (training operator v1.9.2) schemas, asks for the Trainium node's Neuron devices
and EFA interfaces as instance-types.yaml lists them, and `make k8s` writes the same file."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from testbed import kube
from testbed.system import require_programs

FOLDER = Path(__file__).resolve().parents[1]
ROOT = FOLDER.parents[2]
TEMPLATE = FOLDER / "kubernetes" / "pretrain.yaml-template"
MAKEFILE = FOLDER / "Makefile"
IMAGE = "123456789012.dkr.ecr.us-west-2.amazonaws.com/neuronx-distributed:0.1.0"
FACTS = yaml.safe_load((ROOT / "1.architectures" / "instance-types.yaml").read_text())


def envsubst_variables() -> set[str]:
    lists = re.findall(r"envsubst\s+'([^']*)'", MAKEFILE.read_text())
    assert len(lists) == 1
    return set(re.findall(r"\$\$?\{([A-Z_][A-Z0-9_]*)\}", lists[0]))


def makefile_defaults() -> dict[str, str]:
    found = dict(
        re.findall(r"^([A-Z_][A-Z0-9_]*)[ \t]*\?=[ \t]*(.*?)[ \t]*$", MAKEFILE.read_text(), re.MULTILINE)
    )
    values = {name: found[name] for name in envsubst_variables() if found.get(name)}
    return {name: value.replace("$(PRESET)", found["PRESET"]) for name, value in values.items()}


def rendered(**overrides: str) -> dict:
    return yaml.safe_load(
        kube.render_manifest(TEMPLATE, {**makefile_defaults(), "IMAGE": IMAGE, **overrides})
    )


def container(job: dict) -> dict:
    return job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]


def test_template_uses_exactly_the_makefile_variables():
    assert kube.template_variables(TEMPLATE.read_text()) == envsubst_variables()
    assert set(makefile_defaults()) == envsubst_variables() - {"IMAGE"}


@pytest.mark.parametrize("step", ["compile", "train"])
def test_renders_and_validates(step):
    text = kube.render_manifest(TEMPLATE, {**makefile_defaults(), "IMAGE": IMAGE, "STEP": step})
    assert kube.validate_manifest(text) == []
    job = yaml.safe_load(text)
    assert job["metadata"]["name"] == f"nxd-llama-{step}"
    command = container(job)["command"]
    assert (
        command[:3] == ["python3", "src/nxd_args.py", "run"] and command[command.index("--step") + 1] == step
    )
    assert (FOLDER / command[1]).is_file() and container(job)["workingDir"] == "/workspace/nxd-llama"


@pytest.mark.parametrize("instance", ["trn1.32xlarge", "trn1n.32xlarge", "trn2.48xlarge"])
def test_devices_come_from_instance_types(instance):
    facts = FACTS["instance_types"][instance]
    job = rendered(
        INSTANCE_TYPE=instance,
        NEURON_DEVICES=str(facts["accelerator"]["count"]),
        EFA_DEVICES=str(facts["efa"]["devices"]),
        NUM_NODES="3",
    )
    assert kube.validate_documents([job]) == []
    resources = container(job)["resources"]
    assert (
        resources["limits"]
        == resources["requests"]
        == {
            facts["kubernetes_resource"]: str(facts["accelerator"]["count"]),
            "vpc.amazonaws.com/efa": str(facts["efa"]["devices"]),
        }
    )
    pod = job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]
    assert pod["nodeSelector"] == {"node.kubernetes.io/instance-type": instance}
    assert job["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 3


def test_makefile_defaults_are_a_trn1_node():
    facts = FACTS["instance_types"]["trn1.32xlarge"]
    defaults = makefile_defaults()
    assert defaults["INSTANCE_TYPE"] == "trn1.32xlarge"
    assert int(defaults["NEURON_DEVICES"]) == facts["accelerator"]["count"]
    assert int(defaults["EFA_DEVICES"]) == facts["efa"]["devices"]
    assert int(defaults["NPROC_PER_NODE"]) == facts["accelerator"]["neuron_cores"]


def test_efa_environment_is_instance_types_and_storage_is_fsx_claim():
    job = rendered()
    env = {e["name"]: e["value"] for e in container(job)["env"]}
    table = FACTS["efa_nccl_environment"]
    assert env["FI_PROVIDER"] == table["efa"]["FI_PROVIDER"]
    assert env["FI_EFA_USE_DEVICE_RDMA"] == table["device_rdma"]["FI_EFA_USE_DEVICE_RDMA"]
    assert all(
        FACTS["instance_types"][t]["efa"]["device_rdma"]
        for t in ("trn1.32xlarge", "trn1n.32xlarge", "trn2.48xlarge")
    )
    assert env["NEURON_CC_FLAGS"].endswith("--cache_dir=/fsx/neuron_compile_cache")
    pod = job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]
    claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in pod["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container(job)["volumeMounts"]}
    assert mounts[next(n for n, c in claims.items() if c == "fsx-claim")] == "/fsx"


def test_make_k8s_writes_the_same_manifest(tmp_path):
    require_programs("make k8s", "make", "envsubst")
    for name in ("Makefile", "neuronx-distributed.Dockerfile"):
        shutil.copy(FOLDER / name, tmp_path / name)
    shutil.copytree(FOLDER / "kubernetes", tmp_path / "kubernetes")
    shutil.copytree(FOLDER / "configs", tmp_path / "configs")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    done = subprocess.run(
        ["make", "-C", str(tmp_path), "k8s", f"IMAGE={IMAGE}", "STEP=compile"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    expected = kube.render_manifest(TEMPLATE, {**makefile_defaults(), "IMAGE": IMAGE, "STEP": "compile"})
    assert (tmp_path / "build" / "pretrain.yaml").read_text() == expected
    missing = subprocess.run(
        ["make", "-C", str(tmp_path), "k8s"], env=env, capture_output=True, text=True, check=False
    )
    assert missing.returncode == 2 and "error: IMAGE is not set" in missing.stderr
