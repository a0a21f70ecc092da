"""The Composer PyTorchJob template: renders with the Makefile's variables, validates against the pinned
training operator's CRD, and its pod command gives the composer launcher the right world size and node rank
(run here with bash and a recording `composer`); `make k8s` computes the workers from NUM_NODES."""

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
TEMPLATE = FOLDER / "kubernetes" / "composer.yaml-template"
MAKEFILE = FOLDER / "Makefile"
IMAGE = "123456789012.dkr.ecr.us-west-2.amazonaws.com/composer:0.32.1"


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


def pod(rendered: dict, replica: str) -> dict:
    return rendered["spec"]["pytorchReplicaSpecs"][replica]["template"]["spec"]["containers"][0]


def test_template_uses_exactly_the_makefile_variables_and_validates():
    assert kube.template_variables(TEMPLATE.read_text()) == envsubst_variables()
    assert set(makefile_defaults()) == envsubst_variables() - {"IMAGE"}
    assert int(makefile_defaults()["WORKER_NODES"]) == int(makefile_defaults()["NUM_NODES"]) - 1
    text = kube.render_manifest(TEMPLATE, {**makefile_defaults(), "IMAGE": IMAGE})
    assert kube.validate_manifest(text) == []


def test_master_and_workers_run_the_same_pod():
    rendered = job(NUM_NODES="4", WORKER_NODES="3", PRESET="mpt-7b")
    specs = rendered["spec"]["pytorchReplicaSpecs"]
    assert specs["Master"]["replicas"] == 1 and specs["Worker"]["replicas"] == 3
    assert pod(rendered, "Master") == pod(rendered, "Worker")
    assert pod(rendered, "Master")["resources"]["limits"] == {
        "nvidia.com/gpu": 8,
        "vpc.amazonaws.com/efa": 32,
    }


def test_pod_command_gives_composer_the_world_size_and_the_pods_rank(tmp_path):
    """The operator sets RANK (0 on the Master, 1.. on workers), MASTER_ADDR and MASTER_PORT; WORLD_SIZE
    counts pods, so the command must not rely on it. Run the rendered command with a `composer` that prints
    its argv."""
    command = pod(job(NUM_NODES="4", PRESET="mpt-1b", JOB_NAME="mpt1b"), "Worker")["command"]
    fake = tmp_path / "composer"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    env = {
        "PATH": f"{tmp_path}:/usr/bin:/bin",
        "RANK": "2",
        "MASTER_ADDR": "mpt1b-master-0",
        "MASTER_PORT": "23456",
        "WORLD_SIZE": "4",
    }
    argv = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout.splitlines()
    assert argv[:10] == [
        "--nproc",
        "8",
        "--world_size",
        "32",
        "--node_rank",
        "2",
        "--master_addr",
        "mpt1b-master-0",
        "--master_port",
        "23456",
    ]
    assert argv[10:] == [
        "-m",
        "llmfoundry.cli.cli",
        "train",
        "yamls/mpt-1b.yaml",
        "run_name=mpt1b",
        "save_folder=/fsx/composer/runs/mpt1b/checkpoints",
    ]
    assert (FOLDER / "yamls" / "mpt-1b.yaml").is_file()  # the image copies yamls/ to its workingDir


def test_efa_nccl_environment_is_instance_types_yaml_for_kubernetes():
    table = yaml.safe_load((ROOT / "1.architectures" / "instance-types.yaml").read_text())[
        "efa_nccl_environment"
    ]
    expected = {**table["efa"], **table["device_rdma"], **table["tuner"], **table["gpu"]}
    expected["NCCL_SOCKET_IFNAME"] = table["socket_ifname"]["kubernetes"]
    env = {e["name"]: e["value"] for e in pod(job(), "Master")["env"]}
    assert env == {k: str(v) for k, v in expected.items()}


def test_make_k8s_computes_the_workers_and_refuses_bad_input(tmp_path):
    require_programs("make k8s", "make", "envsubst")
    shutil.copy(MAKEFILE, tmp_path / "Makefile")
    shutil.copytree(TEMPLATE.parent, tmp_path / "kubernetes")
    shutil.copytree(FOLDER / "yamls", tmp_path / "yamls")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}

    def make(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["make", "-C", str(tmp_path), *args], env=env, capture_output=True, text=True, check=False
        )

    made = make("k8s", f"IMAGE={IMAGE}", "NUM_NODES=8", "PRESET=mpt-7b")
    assert made.returncode == 0, made.stderr
    values = {
        **makefile_defaults(),
        "IMAGE": IMAGE,
        "NUM_NODES": "8",
        "WORKER_NODES": "7",
        "PRESET": "mpt-7b",
    }
    assert (tmp_path / "build" / "composer.yaml").read_text() == kube.render_manifest(TEMPLATE, values)
    assert (
        "error: NUM_NODES=0 must be a positive integer" in make("k8s", f"IMAGE={IMAGE}", "NUM_NODES=0").stderr
    )
    assert "error: no yamls/mpt-2b.yaml" in make("k8s", f"IMAGE={IMAGE}", "PRESET=mpt-2b").stderr
    assert "error: IMAGE is not set" in make("k8s").stderr
