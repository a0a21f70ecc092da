"""testbed.k8s_pods: the pod templates of the repository's Kubernetes manifests as Pods for checkov."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from testbed import k8s_pods

REPO_ROOT = Path(__file__).resolve().parents[2]
SKIP = re.compile(r"(CKV2?_K8S_\d+)=(\S.*)")

PYTORCHJOB = """\
apiVersion: kubeflow.org/v1
kind: PyTorchJob
metadata:
  name: ddp
  namespace: training
  annotations: {note: on the job, not on its pods}
spec:
  pytorchReplicaSpecs:
    Master:
      replicas: 1
      template:
        metadata:
          labels: {role: master}
          annotations: {"checkov.io/skip1": "CKV_K8S_43=pinned by tag"}
        spec:
          containers: [{name: pytorch, image: "img:1.0", command: [torchrun, master.py]}]
    Worker:
      replicas: 3
      template:
        spec:
          containers: [{name: pytorch, image: "img:1.0", command: [torchrun, worker.py]}]
"""

MPIJOB = """\
apiVersion: kubeflow.org/v2beta1
kind: MPIJob
metadata: {name: nccl}
spec:
  mpiReplicaSpecs:
    Launcher:
      template: {spec: {containers: [{name: launcher, image: "nccl:1"}]}}
    Worker:
      template: {spec: {containers: [{name: worker, image: "nccl:1"}]}}
"""

SERVICE_AND_JOB = """\
apiVersion: v1
kind: Service
metadata: {name: coord}
spec: {clusterIP: None, ports: [{port: 23456}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: jax}
spec: {template: {spec: {restartPolicy: Never, containers: [{name: jax, image: "jax:1"}]}}}
"""

RAYJOB = """\
apiVersion: ray.io/v1
kind: RayJob
metadata: {name: ray}
spec: {entrypoint: python train.py}
"""


def extracted(text: str, source: str = "case/kubernetes/job.yaml-template") -> list[tuple[str, dict]]:
    return k8s_pods.extract(list(yaml.safe_load_all(text)), source)


def test_a_pytorchjob_with_two_replica_types_gives_two_pods_named_after_source_and_replica() -> None:
    found = extracted(PYTORCHJOB)
    assert [label for label, _ in found] == ["Pod-job-master", "Pod-job-worker"]
    (_, master), (_, worker) = found
    assert master["apiVersion"] == "v1" and master["kind"] == "Pod"
    assert master["metadata"] == {
        "name": "job-master",
        "namespace": "training",
        "labels": {"role": "master"},
        # the pod template's annotations (checkov's skips) reach the pod; the job's own do not
        "annotations": {"checkov.io/skip1": "CKV_K8S_43=pinned by tag"},
    }
    assert master["spec"]["containers"][0]["command"] == ["torchrun", "master.py"]
    assert worker["metadata"] == {"name": "job-worker", "namespace": "training"}
    assert worker["spec"]["containers"][0]["command"] == ["torchrun", "worker.py"]


def test_an_mpijob_gives_a_launcher_and_a_worker_pod() -> None:
    found = extracted(MPIJOB, "4.validation/nccl-tests/kubernetes/nccl-tests.yaml-template")
    assert [manifest["metadata"]["name"] for _, manifest in found] == [
        "nccl-tests-launcher",
        "nccl-tests-worker",
    ]
    assert [manifest["spec"]["containers"][0]["name"] for _, manifest in found] == ["launcher", "worker"]


def test_core_kinds_pass_through_unchanged() -> None:
    documents = list(yaml.safe_load_all(SERVICE_AND_JOB))
    found = k8s_pods.extract(documents, "jax-job.yaml-template")
    assert [label for label, _ in found] == ["Service-coord", "Job-jax"]
    assert [manifest for _, manifest in found] == documents


def test_an_unknown_kind_is_named_not_skipped() -> None:
    with pytest.raises(k8s_pods.UnknownKindError) as caught:
        extracted(PYTORCHJOB + "---\n" + RAYJOB, "ray/kubernetes/ray.yaml-template")
    message = str(caught.value)
    assert "ray/kubernetes/ray.yaml-template: document 2" in message
    assert "apiVersion ray.io/v1 kind RayJob" in message and "REPLICA_SPECS" in message


def test_a_known_kind_at_another_version_or_without_pod_templates_is_an_error() -> None:
    with pytest.raises(k8s_pods.UnknownKindError, match="kind PyTorchJob"):
        extracted(PYTORCHJOB.replace("kubeflow.org/v1", "kubeflow.org/v2"))
    without = "apiVersion: kubeflow.org/v1\nkind: PyTorchJob\nmetadata: {name: x}\nspec: {}\n"
    with pytest.raises(k8s_pods.UnknownKindError, match=r"no spec\.pytorchReplicaSpecs"):
        extracted(without)
    no_spec = MPIJOB.replace(
        "template: {spec: {containers: [{name: worker", "template: {meta: {containers: [{name: w"
    )
    with pytest.raises(k8s_pods.UnknownKindError, match=r"replica Worker has no template\.spec"):
        extracted(no_spec)


@pytest.fixture(scope="module")
def repository() -> list[tuple[str, dict]]:
    return k8s_pods.repository_manifests()


def test_every_template_of_the_repository_renders_and_every_replica_becomes_a_pod(repository) -> None:
    sources = k8s_pods.template_files()
    assert "3.test_cases/pytorch/FSDP/kubernetes/tiny.yaml" in sources
    assert "4.validation_observability/6.nccl-tests/kubernetes/nccl-tests.yaml-template" in sources
    assert "1.architectures/4.amazon-eks/addons/fsx-storage.yaml-template" in sources
    expected = set()
    for source in sources:
        for document in yaml.safe_load_all(k8s_pods.render(REPO_ROOT / source)):
            key = k8s_pods.REPLICA_SPECS.get((document["apiVersion"], document["kind"]))
            expected |= {(source, replica) for replica in (document["spec"][key] if key else [])}
    pods = {name for name, manifest in repository if manifest["kind"] == "Pod"}
    assert len(pods) == len(expected) > 20
    for source, replica in expected:
        stem = re.sub(r"[^a-z0-9-]+", "-", Path(source).name.split(".")[0].lower())
        assert f"{k8s_pods.source_name(source)}--Pod-{stem}-{replica.lower()}.yaml" in pods


def _pod_spec(manifest: dict) -> dict:
    if manifest["kind"] == "Pod":
        return manifest["spec"]
    return manifest["spec"]["template"]["spec"]


def test_every_pod_spec_of_the_repository_is_hardened_and_its_skips_have_reasons(repository) -> None:
    """What checkov gates in the security session, checked here too: seccomp, no privilege escalation,
    no service-account token, and every skip annotation of the form CKV_K8S_<N>=<reason>."""
    pod_specs = [(name, m) for name, m in repository if m["kind"] in k8s_pods.POD_KINDS]
    assert len(pod_specs) >= 25
    for name, manifest in pod_specs:
        spec = _pod_spec(manifest)
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            dropped = context.get("capabilities", {}).get("drop", [])
            assert "ALL" in dropped or "NET_RAW" in dropped, name
        assert spec["automountServiceAccountToken"] is False, name
        skips = {
            k: v
            for k, v in manifest["metadata"].get("annotations", {}).items()
            if k.startswith("checkov.io/")
        }
        assert skips, f"{name}: no checkov skip annotations (expected at least the image digest one)"
        for key, value in skips.items():
            assert re.fullmatch(r"checkov\.io/skip\d+", key), (name, key)
            assert SKIP.fullmatch(value), f"{name}: {key}: {value!r} is not CKV_K8S_<N>=<reason>"


def test_write_pods_renders_everything_before_writing(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "case" / "kubernetes").mkdir(parents=True)
    (root / "case" / "Makefile").write_text("JOB_NAME ?= ddp\n")
    (root / "case" / "kubernetes" / "a.yaml-template").write_text(
        PYTORCHJOB.replace("name: ddp", "name: ${JOB_NAME}")
    )
    (root / "case" / "kubernetes" / "b.yaml").write_text(RAYJOB)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    out = tmp_path / "pods"
    out.mkdir()
    (out / "earlier.yaml").write_text("kept: true\n")
    with pytest.raises(k8s_pods.UnknownKindError, match=r"case/kubernetes/b\.yaml: document 1"):
        k8s_pods.write_pods(out, root)
    assert [p.name for p in out.iterdir()] == ["earlier.yaml"]
    (root / "case" / "kubernetes" / "b.yaml").unlink()
    written = k8s_pods.write_pods(out, root)
    assert (
        sorted(p.name for p in out.iterdir())
        == sorted(p.name for p in written)
        == [
            "case__kubernetes__a.yaml-template--Pod-a-master.yaml",
            "case__kubernetes__a.yaml-template--Pod-a-worker.yaml",
        ]
    )


def test_cli_prints_a_summary_and_rejects_a_file_as_output(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "testbed.k8s_pods"]
    done = subprocess.run(
        [*command, str(tmp_path / "pods")], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["templates"] == len(k8s_pods.template_files())
    assert len(summary["files"]) == len(list((tmp_path / "pods").glob("*.yaml")))
    assert 25 <= summary["pod_specs"] < len(summary["files"])
    afile = tmp_path / "afile"
    afile.write_text("x")
    bad = subprocess.run([*command, str(afile)], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.splitlines() == [f"error: {afile} is a file; give a folder to write the pods into"]
    assert afile.read_text() == "x"
