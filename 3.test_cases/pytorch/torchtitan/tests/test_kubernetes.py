"""kubernetes/torchtitan.yaml-template: renders with the Makefile's variables, validates against the
training operator v1.9.2 PyTorchJob CRD, and runs torchtitan.train with a shipped preset."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from titan_paths import FOLDER, preset_names

from testbed import kube
from testbed.system import require_programs

TEMPLATE = FOLDER / "kubernetes" / "torchtitan.yaml-template"
MAKEFILE = FOLDER / "Makefile"
IMAGE = "123456789012.dkr.ecr.us-west-2.amazonaws.com/torchtitan:0.3.0"


def envsubst_variables() -> set[str]:
    """The names the Makefile's `k8s` target passes to envsubst: the one list."""
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


def container_of(job: dict) -> dict:
    return job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]


def test_template_uses_exactly_the_makefile_variables_and_only_image_lacks_a_default():
    assert kube.template_variables(TEMPLATE.read_text()) == envsubst_variables()
    assert set(makefile_defaults()) == envsubst_variables() - {"IMAGE"}


@pytest.mark.parametrize("preset", ["llama3_8b_fsdp", "llama3_70b_fsdp_tp"])
def test_renders_and_validates_against_the_pytorchjob_crd(preset):
    values = {**makefile_defaults(), "IMAGE": IMAGE, "PRESET": preset, "NUM_NODES": "8"}
    assert kube.validate_manifest(kube.render_manifest(TEMPLATE, values)) == []


def test_each_pod_runs_torchtitan_train_on_its_gpus_and_efa_devices():
    job = rendered(
        PRESET="llama3_70b_fsdp_tp", NUM_NODES="8", EFA_PER_NODE="16", INSTANCE_TYPE="p5en.48xlarge"
    )
    container = container_of(job)
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["PYTHONPATH"] == "/workspace/torchtitan/src"
    script = shlex.split(container["command"][2])
    assert container["command"][:2] == ["bash", "-c"] and script[:3] == ["source", "slurm/efa-env.sh", "&&"]
    assert script[script.index("-m") + 1] == "torchtitan.train"
    assert script[script.index("--config") + 1] == "llama3_70b_fsdp_tp" in preset_names()
    assert script[script.index("--module") + 1] == "aws_llama3"
    assert "--nproc-per-node=8" in script and script[-1] == "/fsx/torchtitan/runs/torchtitan"
    assert (FOLDER / "slurm" / "efa-env.sh").is_file() and container["workingDir"] == "/workspace/torchtitan"
    expected = {"nvidia.com/gpu": 8, "vpc.amazonaws.com/efa": 16}
    assert container["resources"] == {"requests": expected, "limits": expected}
    assert job["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 8
    assert job["spec"]["elasticPolicy"]["minReplicas"] == job["spec"]["elasticPolicy"]["maxReplicas"] == 8
    selector = job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["nodeSelector"]
    assert (
        selector
        == {"node.kubernetes.io/instance-type": "p5en.48xlarge"}
        == {"node.kubernetes.io/instance-type": env["INSTANCE_TYPE"]}
    )


def test_missing_image_is_named():
    with pytest.raises(kube.MissingVariableError) as caught:
        kube.render_manifest(TEMPLATE, makefile_defaults())
    assert caught.value.missing == ["IMAGE"]


def test_make_k8s_writes_what_the_test_bed_renders(tmp_path: Path):
    require_programs("make k8s", "make", "envsubst")
    shutil.copy(MAKEFILE, tmp_path / "Makefile")
    shutil.copytree(TEMPLATE.parent, tmp_path / "kubernetes")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    result = subprocess.run(
        ["make", "-C", str(tmp_path), "k8s", f"IMAGE={IMAGE}", "PRESET=llama3_8b_fsdp_compile"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    expected = kube.render_manifest(
        TEMPLATE, {**makefile_defaults(), "IMAGE": IMAGE, "PRESET": "llama3_8b_fsdp_compile"}
    )
    assert (tmp_path / "kubernetes" / "torchtitan.yaml").read_text() == expected
    missing = subprocess.run(
        ["make", "-C", str(tmp_path), "k8s"], env=env, capture_output=True, text=True, check=False
    )
    assert missing.returncode != 0
    assert "error: IMAGE is not set" in missing.stderr
