"""The picotron PyTorchJob template: renders with the Makefile's variables, validates against the pinned
training operator's CRD, runs picotron's train.py with a shipped config, carries the EFA/NCCL environment of
instance-types.yaml, and `make k8s` refuses a node count the config does not fit."""

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
TEMPLATE = FOLDER / "kubernetes" / "picotron.yaml-template"
MAKEFILE = FOLDER / "Makefile"
IMAGE = "123456789012.dkr.ecr.us-west-2.amazonaws.com/picotron:0.1.0"


def envsubst_variables() -> set[str]:
    lists = re.findall(r"envsubst\s+'([^']*)'", MAKEFILE.read_text())
    assert len(lists) == 1
    return set(re.findall(r"\$\$?\{([A-Z_][A-Z0-9_]*)\}", lists[0]))


def makefile_defaults() -> dict[str, str]:
    found = dict(
        re.findall(r"^([A-Z_][A-Z0-9_]*)[ \t]*\?=[ \t]*(.*?)[ \t]*$", MAKEFILE.read_text(), re.MULTILINE)
    )
    return {name: found[name] for name in envsubst_variables() if found.get(name)}


def job(**overrides: str) -> dict:
    return yaml.safe_load(
        kube.render_manifest(TEMPLATE, {**makefile_defaults(), "IMAGE": IMAGE, **overrides})
    )


def container(rendered: dict) -> dict:
    return rendered["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]


def test_template_uses_exactly_the_makefile_variables_and_validates():
    assert kube.template_variables(TEMPLATE.read_text()) == envsubst_variables()
    assert set(makefile_defaults()) == envsubst_variables() - {"IMAGE"}
    for preset, nodes in (("smollm_360m-1node", "1"), ("llama3_1_70b-16nodes", "16")):
        text = kube.render_manifest(
            TEMPLATE, {**makefile_defaults(), "IMAGE": IMAGE, "PRESET": preset, "NUM_NODES": nodes}
        )
        assert kube.validate_manifest(text) == [], preset


def test_workers_run_picotrons_train_py_with_a_shipped_config():
    rendered = job(PRESET="llama3_1_8b-4nodes", NUM_NODES="4", JOB_NAME="pico-8b")
    pod = container(rendered)
    assert pod["command"] == [
        "torchrun",
        "--nproc-per-node=8",
        "/opt/picotron/train.py",
        "--config",
        "/workspace/picotron/configs/llama3_1_8b-4nodes.json",
    ]
    assert (FOLDER / "configs" / "llama3_1_8b-4nodes.json").is_file()  # the image copies configs/
    assert pod["workingDir"] == "/fsx/picotron/runs/pico-8b"
    assert rendered["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 4
    assert (
        rendered["spec"]["elasticPolicy"]["minReplicas"]
        == rendered["spec"]["elasticPolicy"]["maxReplicas"]
        == 4
    )
    assert pod["resources"]["limits"] == {"nvidia.com/gpu": 8, "vpc.amazonaws.com/efa": 32}
    token = next(e for e in pod["env"] if e["name"] == "HF_TOKEN")
    assert token["valueFrom"]["secretKeyRef"] == {"name": "hf-token", "key": "token"}


def test_efa_nccl_environment_is_instance_types_yaml_for_kubernetes():
    table = yaml.safe_load((ROOT / "1.architectures" / "instance-types.yaml").read_text())[
        "efa_nccl_environment"
    ]
    expected = {**table["efa"], **table["device_rdma"], **table["tuner"], **table["gpu"]}
    expected["NCCL_SOCKET_IFNAME"] = table["socket_ifname"]["kubernetes"]
    env = {e["name"]: e["value"] for e in container(job())["env"] if "value" in e}
    assert {k: v for k, v in env.items() if k != "CUDA_DEVICE_MAX_CONNECTIONS"} == {
        k: str(v) for k, v in expected.items()
    }


def copy_folder(tmp_path: Path) -> Path:
    for name in ("Makefile", "picotron.Dockerfile"):
        shutil.copy(FOLDER / name, tmp_path / name)
    for name in ("kubernetes", "configs", "src"):
        shutil.copytree(FOLDER / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def run_make(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    require_programs("make k8s", "make", "envsubst")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run(
        ["make", "-C", str(tmp_path), *args], env=env, capture_output=True, text=True, check=False
    )


def test_make_k8s_writes_the_same_manifest_and_refuses_a_misfit(tmp_path):
    copy_folder(tmp_path)
    made = run_make(tmp_path, "k8s", f"IMAGE={IMAGE}", "PRESET=llama3_1_8b-2nodes", "NUM_NODES=2")
    assert made.returncode == 0, made.stderr
    values = {**makefile_defaults(), "IMAGE": IMAGE, "PRESET": "llama3_1_8b-2nodes", "NUM_NODES": "2"}
    assert (tmp_path / "build" / "picotron.yaml").read_text() == kube.render_manifest(TEMPLATE, values)
    misfit = run_make(tmp_path, "k8s", f"IMAGE={IMAGE}", "PRESET=llama3_1_8b-2nodes", "NUM_NODES=3")
    assert misfit.returncode != 0 and "but the job has 24 ranks" in misfit.stderr
    no_image = run_make(tmp_path, "k8s")
    assert no_image.returncode != 0 and "error: IMAGE is not set" in no_image.stderr
