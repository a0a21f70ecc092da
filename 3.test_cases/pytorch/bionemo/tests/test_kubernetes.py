"""kubernetes/train.yaml-template: renders with the Makefile's variables, validates against the Kubernetes
and PyTorchJob (training operator v1.9.2) schemas, asks for a p5's GPUs and EFA interfaces as
instance-types.yaml lists them with its EFA/NCCL environment, and `make k8s` writes the same file."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from testbed import kube
from testbed.system import require_programs

FOLDER = Path(__file__).resolve().parents[1]
ROOT = FOLDER.parents[2]
TEMPLATE = FOLDER / "kubernetes" / "train.yaml-template"
MAKEFILE = FOLDER / "Makefile"
IMAGE = "123456789012.dkr.ecr.us-west-2.amazonaws.com/bionemo:0.1.0"
FACTS = yaml.safe_load((ROOT / "1.architectures" / "instance-types.yaml").read_text())


def envsubst_variables() -> set[str]:
    lists = re.findall(r"envsubst\s+'([^']*)'", MAKEFILE.read_text())
    assert len(lists) == 1
    return set(re.findall(r"\$\$?\{([A-Z_][A-Z0-9_]*)\}", lists[0]))


def makefile_defaults() -> dict[str, str]:
    found = dict(
        re.findall(r"^([A-Z_][A-Z0-9_]*)[ \t]*\?=[ \t]*(.*?)[ \t]*$", MAKEFILE.read_text(), re.MULTILINE)
    )
    return {name: found[name] for name in envsubst_variables() if found.get(name)}


def rendered(**overrides: str) -> dict:
    return yaml.safe_load(
        kube.render_manifest(TEMPLATE, {**makefile_defaults(), "IMAGE": IMAGE, **overrides})
    )


def container(job: dict) -> dict:
    return job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]


def test_template_uses_exactly_the_makefile_variables():
    assert kube.template_variables(TEMPLATE.read_text()) == envsubst_variables()
    assert set(makefile_defaults()) == envsubst_variables() - {"IMAGE"}


def test_renders_validates_and_runs_the_presets_module():
    text = kube.render_manifest(TEMPLATE, {**makefile_defaults(), "IMAGE": IMAGE, "NUM_NODES": "4"})
    assert kube.validate_manifest(text) == []
    job = yaml.safe_load(text)
    assert job["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 4
    command = container(job)["command"]
    assert command[:3] == ["python", "src/bionemo_args.py", "run"] and (FOLDER / command[1]).is_file()
    assert (
        command[command.index("--nodes") + 1] == "4" and command[command.index("--preset") + 1] == "esm2-650m"
    )
    assert container(job)["workingDir"] == "/workspace/bionemo-aws"


def test_a_p5_node_and_the_efa_environment_of_instance_types():
    facts = FACTS["instance_types"]["p5.48xlarge"]
    defaults = makefile_defaults()
    assert defaults["INSTANCE_TYPE"] == "p5.48xlarge"
    assert (int(defaults["NPROC_PER_NODE"]), int(defaults["EFA_DEVICES"])) == (
        facts["accelerator"]["count"],
        facts["efa"]["devices"],
    )
    job = rendered()
    resources = container(job)["resources"]
    assert (
        resources["limits"] == resources["requests"] == {"nvidia.com/gpu": "8", "vpc.amazonaws.com/efa": "32"}
    )
    table = FACTS["efa_nccl_environment"]
    expected = {
        **table["efa"],
        **table["device_rdma"],
        **table["gpu"],
        "NCCL_SOCKET_IFNAME": table["socket_ifname"]["kubernetes"],
    }
    assert {e["name"]: e["value"] for e in container(job)["env"]} == expected
    pod = job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]
    claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in pod["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container(job)["volumeMounts"]}
    assert mounts[next(n for n, c in claims.items() if c == "fsx-claim")] == "/fsx"


def test_make_k8s_writes_the_same_manifest(tmp_path):
    require_programs("make k8s", "make", "envsubst")
    shutil.copy(MAKEFILE, tmp_path / "Makefile")
    shutil.copytree(FOLDER / "kubernetes", tmp_path / "kubernetes")
    shutil.copytree(FOLDER / "configs", tmp_path / "configs")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    done = subprocess.run(
        ["make", "-C", str(tmp_path), "k8s", f"IMAGE={IMAGE}", "PRESET=esm2-3b"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    expected = kube.render_manifest(TEMPLATE, {**makefile_defaults(), "IMAGE": IMAGE, "PRESET": "esm2-3b"})
    assert (tmp_path / "build" / "train.yaml").read_text() == expected
    missing = subprocess.run(
        ["make", "-C", str(tmp_path), "k8s"], env=env, capture_output=True, text=True, check=False
    )
    assert missing.returncode == 2 and "error: IMAGE is not set" in missing.stderr
