"""The kubectl, eksctl and helm stand-ins: what they record, validate, refuse and print."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from testbed.standins import applied, calls, write_standins
from testbed.system import require_programs
from testbed.walkthrough import WalkthroughError, check_standins, extract_blocks


def pytorchjob(name: str = "demo", workers: int = 2, **container: object) -> dict:
    pod = {"spec": {"containers": [{"name": "pytorch", "image": "repo/img:1.0", **container}]}}
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name},
        "spec": {"pytorchReplicaSpecs": {"Worker": {"replicas": workers, "template": pod}}},
    }


@pytest.fixture
def tools(tmp_path: Path):
    """Run a stand-in from tmp_path with the bin folder first on PATH, as a walkthrough does."""
    bin_dir = tmp_path / "bin"
    log_file = tmp_path / "worker-0.log"
    log_file.write_text("a line the pod printed\n")
    log = write_standins(bin_dir, logs={"demo-worker-0": log_file}, present=["deployment/op@ops"])

    def run(*argv: str) -> subprocess.CompletedProcess:
        env = os.environ | {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
        return subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)

    run.log = log
    return run


def test_a_valid_pytorchjob_applies_and_is_recorded(tools, tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(pytorchjob()))
    done = tools("kubectl", "apply", "-f", "job.yaml")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "pytorchjob.kubeflow.org/demo created\n"
    assert calls(tools.log) == ["kubectl apply -f job.yaml"]
    job = applied(tools.log)[-1]
    assert (job["apiVersion"], job["kind"], job["name"], job["namespace"]) == (
        "kubeflow.org/v1",
        "pytorchjob",
        "demo",
        "default",
    )
    again = tools("kubectl", "apply", "-f", "job.yaml")
    assert again.stdout == "pytorchjob.kubeflow.org/demo configured\n"
    refused = tools("kubectl", "create", "-f", "job.yaml")
    assert refused.returncode == 1 and "(AlreadyExists)" in refused.stderr


def test_an_invalid_pytorchjob_is_refused_with_the_schema_message(tools, tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(pytorchjob(imagePullPolcy="Always")))
    done = tools("kubectl", "apply", "-f", "job.yaml")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(
        'Error from server (BadRequest): error when creating "job.yaml": PyTorchJob/demo'
    )
    assert "unknown field 'imagePullPolcy' (did you mean 'imagePullPolicy'?)" in done.stderr
    assert [o["name"] for o in applied(tools.log)] == ["op"]  # nothing stored
    assert tools("kubectl", "wait", "--for=condition=Succeeded", "pytorchjob/demo").returncode == 1


def test_wait_needs_an_object_applied_before(tools, tmp_path: Path) -> None:
    done = tools("kubectl", "wait", "--for=condition=Succeeded", "--timeout=30m", "pytorchjob/demo")
    assert done.returncode == 1 and done.stderr.strip() == "error: no matching resources found"
    present = tools("kubectl", "wait", "--for=condition=Available", "deployment/op", "--namespace", "ops")
    assert present.returncode == 0 and present.stdout == "deployment/op condition met\n"
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(pytorchjob()))
    assert tools("kubectl", "apply", "-f", "job.yaml").returncode == 0
    done = tools(
        "kubectl", "wait", "--for=condition=Succeeded", "--timeout=30m", "pytorchjobs.kubeflow.org/demo"
    )
    assert done.returncode == 0, done.stderr
    assert tools("kubectl", "wait", "pytorchjob/demo", "-n", "other").returncode == 1  # another namespace


def test_logs_prints_the_given_file_for_a_pod_the_operator_creates(tools, tmp_path: Path) -> None:
    assert tools("kubectl", "logs", "-f", "demo-worker-0").stderr.startswith("Error from server (NotFound)")
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(pytorchjob()))
    tools("kubectl", "apply", "-f", "job.yaml")
    done = tools("kubectl", "logs", "-f", "demo-worker-0")
    assert done.returncode == 0 and done.stdout == "a line the pod printed\n"
    missing = tools("kubectl", "logs", "demo-worker-1")  # the operator's pod, but no log given
    assert missing.returncode == 1 and "no log for demo-worker-1" in missing.stderr
    beyond = tools("kubectl", "logs", "demo-worker-2")  # two workers: indexes 0 and 1
    assert beyond.returncode == 1 and 'pods "demo-worker-2" not found' in beyond.stderr


def test_secrets_get_delete_and_crd_versions(tools, tmp_path: Path) -> None:
    done = tools("kubectl", "create", "secret", "generic", "hf-token", "--from-literal=token=hf_x")
    assert done.returncode == 0 and done.stdout == "secret/hf-token created\n"
    assert tools("kubectl", "get", "secret", "hf-token").returncode == 0
    crd = tools("kubectl", "get", "crd", "mpijobs.kubeflow.org", "-o", "jsonpath={.spec.versions[*].name}")
    assert crd.returncode == 1 and "NotFound" in crd.stderr
    assert tools("kubectl", "delete", "secret", "hf-token").stdout == 'secret "hf-token" deleted\n'
    gone = tools("kubectl", "get", "secret/hf-token")
    assert gone.returncode == 1 and 'secrets "hf-token" not found' in gone.stderr
    unknown = tools("kubectl", "port-forward", "svc/x", "8080")
    assert unknown.returncode == 1 and "does not emulate 'kubectl port-forward'" in unknown.stderr
    log = write_standins(tmp_path / "bin2", crd_versions="v2beta1")
    env = os.environ | {"PATH": f"{tmp_path / 'bin2'}{os.pathsep}{os.environ['PATH']}"}
    got = subprocess.run(
        ["kubectl", "get", "crd", "mpijobs.kubeflow.org"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (
        got.returncode == 0
        and got.stdout == "v2beta1"
        and calls(log) == ["kubectl get crd mpijobs.kubeflow.org"]
    )


def test_eksctl_validates_the_cluster_config_and_helm_records(tools, tmp_path: Path) -> None:
    config = {
        "apiVersion": "eksctl.io/v1alpha5",
        "kind": "ClusterConfig",
        "metadata": {"name": "train", "region": "us-east-2"},
    }
    (tmp_path / "cluster.yaml").write_text(yaml.safe_dump(config))
    assert tools("eksctl", "create", "cluster", "-f", "cluster.yaml").returncode == 0
    config["metadata"]["region"] = "us-east-9"
    (tmp_path / "cluster.yaml").write_text(yaml.safe_dump(config))
    refused = tools("eksctl", "create", "cluster", "-f", "cluster.yaml")
    assert refused.returncode == 1 and "'us-east-9' is not a region eksctl supports" in refused.stderr
    assert tools("helm", "repo", "add", "eks", "https://aws.github.io/eks-charts").returncode == 0
    assert calls(tools.log)[-1] == "helm repo add eks https://aws.github.io/eks-charts"


def test_apply_k_builds_with_kubectls_kustomize_and_records_a_remote_base(tools, tmp_path: Path) -> None:
    require_programs("kubectl kustomize", "kubectl", how="install kubectl (it embeds kustomize)")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    job = pytorchjob("from-kustomize")
    job["spec"]["runPolicy"] = {"backoffLimitt": 3}  # misspelt
    (overlay / "job.yaml").write_text(yaml.safe_dump(job))
    (overlay / "kustomization.yaml").write_text("resources:\n  - job.yaml\nnamespace: training\n")
    refused = tools("kubectl", "apply", "-k", "overlay")
    assert refused.returncode == 1 and "PyTorchJob/from-kustomize" in refused.stderr, refused.stderr
    assert "unknown field 'backoffLimitt'" in refused.stderr
    del job["spec"]["runPolicy"]
    (overlay / "job.yaml").write_text(yaml.safe_dump(job))
    done = tools("kubectl", "apply", "--server-side", "-k", "overlay")
    assert done.returncode == 0 and done.stdout == "pytorchjob.kubeflow.org/from-kustomize created\n"
    assert applied(tools.log)[-1]["namespace"] == "training"  # kustomize set it
    (overlay / "kustomization.yaml").write_text(
        "resources:\n  - https://github.com/org/repo//deploy?ref=v1\n"
    )
    remote = tools("kubectl", "apply", "-k", "overlay")
    assert remote.returncode == 0 and remote.stdout == ""  # recorded, not fetched
    assert calls(tools.log)[-1] == "kubectl apply -k overlay"


def test_a_walkthrough_with_stand_in_blocks_runs_them_only_with_the_stand_ins(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    note = "kubectl validates each manifest against the pinned CRDs"
    readme.write_text(
        "<!-- walkthrough: k8s -->\n```bash\nmake k8s\n```\n\n"
        f"<!-- walkthrough: k8s; stand-in: {note} -->\n```bash\nkubectl apply -f build/job.yaml\n```\n"
    )
    assert extract_blocks(readme, "k8s") == ["make k8s\n", "kubectl apply -f build/job.yaml\n"]
    with pytest.raises(WalkthroughError, match=f"run with stand-ins \\({note}\\); pass standins="):
        check_standins(readme, "k8s", None)  # what run_walkthrough does before it copies anything
    check_standins(readme, "k8s", tmp_path / "bin")
