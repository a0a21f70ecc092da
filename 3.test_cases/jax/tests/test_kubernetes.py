"""The Kubernetes template: an Indexed Job and its headless Service, rendered as `make k8s` renders it (the
real envsubst), no variable left, valid against the Kubernetes schemas; the pods find pod 0."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from testbed.contract import makefile_variables
from testbed.kube import MissingVariableError, render_manifest, validate_manifest

FOLDER = Path(__file__).resolve().parents[1]
TEMPLATE = FOLDER / "kubernetes" / "jax-job.yaml-template"


def render(**values: str) -> str:
    defaults = makefile_variables(FOLDER)
    names = ("JOB_NAME", "NUM_NODES", "PRESET", "GPUS_PER_NODE", "EFA_PER_NODE", "INSTANCE_TYPE")
    return render_manifest(TEMPLATE, {**{n: defaults[n] for n in names}, "IMAGE": "repo/jax:1.0", **values})


def test_manifest_renders_and_validates():
    text = render(PRESET="llama3_1_8b", NUM_NODES="4")
    assert "${" not in text and validate_manifest(text) == []
    service, job = yaml.safe_load_all(text)
    assert service["kind"] == "Service" and service["spec"]["clusterIP"] == "None"
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == 4
    pod = job["spec"]["template"]["spec"]
    assert pod["subdomain"] == service["metadata"]["name"] == "jax"  # pod i is jax-<i>.jax
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["JAX_COORDINATOR_ADDRESS"] == "jax-0.jax:23456" and env["JAX_NUM_PROCESSES"] == "4"
    limits = pod["containers"][0]["resources"]["limits"]
    assert limits == {"nvidia.com/gpu": 8, "vpc.amazonaws.com/efa": 32}
    assert env["INSTANCE_TYPE"] == "p5.48xlarge"
    script = pod["containers"][0]["command"][-1]
    assert script.startswith('source slurm/efa-env.sh && exec python3 src/train.py --preset "llama3_1_8b"')


def test_an_empty_value_is_refused():
    # envsubst would leave `completions:` null, which the API server drops without a word.
    with pytest.raises(MissingVariableError, match="no value for NUM_NODES"):
        render(NUM_NODES="")


def test_make_k8s_renders_into_build(tmp_path):
    result = subprocess.run(
        ["make", "-s", "k8s", "PRESET=llama3_2_1b", "IMAGE=repo/jax:1.0", f"BUILD_DIR={tmp_path}"],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "jax-job.yaml").read_text()
    assert (
        "image: repo/jax:1.0" in text and '--preset "llama3_2_1b"' in text and validate_manifest(text) == []
    )
    missing = subprocess.run(["make", "-s", "k8s"], cwd=FOLDER, capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and missing.stderr.startswith("error: IMAGE is not set")
