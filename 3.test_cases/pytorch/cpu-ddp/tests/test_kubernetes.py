"""The cpu-ddp PyTorchJob template: renders with the Makefile's variables, validates, matches envsubst."""

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

CASE_DIR = Path(__file__).resolve().parents[1]
TEMPLATE = CASE_DIR / "kubernetes" / "cpu-ddp.yaml-template"
MAKEFILE = CASE_DIR / "Makefile"
IMAGE = "123456789012.dkr.ecr.us-west-2.amazonaws.com/cpu-ddp:0.1.0"


def envsubst_variables() -> set[str]:
    """The names the Makefile's `k8s` target passes to envsubst (`'$${A} $${B}'`): the one list."""
    lists = re.findall(r"envsubst\s+'([^']*)'[^\n]*cpu-ddp\.yaml-template", MAKEFILE.read_text())
    assert len(lists) == 1, f"expected one envsubst call rendering cpu-ddp.yaml-template in {MAKEFILE}"
    return set(re.findall(r"\$\$?\{([A-Z_][A-Z0-9_]*)\}", lists[0]))


def makefile_defaults() -> dict[str, str]:
    """Non-empty `NAME ?= value` defaults in the Makefile of the variables envsubst substitutes."""
    assignment = r"^([A-Z_][A-Z0-9_]*)[ \t]*[?:]?=[ \t]*([^#\n]*?)[ \t]*(?:#.*)?$"
    found = dict(re.findall(assignment, MAKEFILE.read_text(), re.MULTILINE))
    return {name: found[name] for name in envsubst_variables() if found.get(name)}


def values(**overrides: str) -> dict[str, str]:
    return {**makefile_defaults(), "IMAGE": IMAGE, **overrides}


def rendered_job(**overrides: str) -> dict:
    return yaml.safe_load(kube.render_manifest(TEMPLATE, values(**overrides)))


def worker_container(job: dict) -> dict:
    containers = job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "pytorch")


def test_template_uses_exactly_the_makefile_variables() -> None:
    text = TEMPLATE.read_text()
    assert kube.template_variables(text) == envsubst_variables()
    assert "$${" not in text, "envsubst would leave an escaped placeholder as $${...}"


def test_every_optional_variable_has_a_default_and_image_has_none() -> None:
    assert set(makefile_defaults()) == envsubst_variables() - {"IMAGE"}


def test_renders_with_defaults_and_validates() -> None:
    text = kube.render_manifest(TEMPLATE, values())
    assert "${" not in text
    assert kube.validate_manifest(text) == []


def test_missing_image_is_named() -> None:
    without_image = {k: v for k, v in values().items() if k != "IMAGE"}
    with pytest.raises(kube.MissingVariableError) as caught:
        kube.render_manifest(TEMPLATE, without_image)
    assert caught.value.missing == ["IMAGE"]
    assert "set IMAGE=..." in str(caught.value)


def test_node_counts_render_as_integers() -> None:
    job = rendered_job(NUM_NODES="3")
    assert job["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 3
    elastic = job["spec"]["elasticPolicy"]
    assert (elastic["minReplicas"], elastic["maxReplicas"], elastic["rdzvBackend"]) == (3, 3, "c10d")


def torchrun_flag(command: list[str], flag: str) -> str:
    for index, arg in enumerate(command):
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
        if arg == flag:
            return command[index + 1]
    raise AssertionError(f"{flag} not in {command}")


def test_torchrun_gets_nproc_per_node_and_the_training_cli() -> None:
    container = worker_container(
        rendered_job(NPROC_PER_NODE="4", PRESET="wide", CHECKPOINT_DIR="/fsx/x/ckpt")
    )
    command = container["command"] + container.get("args", [])
    assert command[0] == "torchrun"
    assert torchrun_flag(command, "--nproc-per-node") == "4"
    script = command.index("src/train.py")
    assert (CASE_DIR / command[script]).is_file()  # the path the image holds (workingDir + COPY src/)
    assert torchrun_flag(command[script:], "--preset") == "wide"
    assert torchrun_flag(command[script:], "--checkpoint-dir") == "/fsx/x/ckpt"
    assert container["workingDir"] == "/workspace/cpu-ddp"


def test_resources_shared_storage_and_rendezvous_port() -> None:
    job = rendered_job(CPU_PER_NODE="8", MEMORY_PER_NODE="16Gi")
    container = worker_container(job)
    expected = {"cpu": "8", "memory": "16Gi"}
    assert container["resources"] == {"requests": expected, "limits": expected}
    pod = job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert {mounts[name] for name, claim in claims.items() if claim == "fsx-claim"} == {"/fsx"}
    assert {"name": "pytorchjob-port", "containerPort": 23456} in container["ports"]


def test_envsubst_renders_the_same_as_render_manifest() -> None:
    envsubst = require_programs("envsubst (gettext-base)", "envsubst")["envsubst"]
    shell_format = " ".join("${" + name + "}" for name in sorted(envsubst_variables()))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **values(NUM_NODES="4", JOB_NAME="ddp-4")}
    result = subprocess.run(
        [envsubst, shell_format],
        input=TEMPLATE.read_text(),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == kube.render_manifest(TEMPLATE, env)


def test_make_k8s_writes_the_same_manifest(tmp_path: Path) -> None:
    """The user's path: `make k8s IMAGE=...` in a copy of the folder, defaults from the Makefile."""
    require_programs("make k8s", "make", "envsubst")
    shutil.copy(MAKEFILE, tmp_path / "Makefile")
    shutil.copytree(TEMPLATE.parent, tmp_path / "kubernetes")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}  # no JOB_NAME etc. leaking in from the caller
    result = subprocess.run(
        ["make", "-C", str(tmp_path), "k8s", f"IMAGE={IMAGE}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "kubernetes" / "cpu-ddp.yaml").read_text() == kube.render_manifest(TEMPLATE, values())
    missing = subprocess.run(
        ["make", "-C", str(tmp_path), "k8s"], env=env, capture_output=True, text=True, check=False
    )
    assert missing.returncode != 0 and "IMAGE" in missing.stderr
