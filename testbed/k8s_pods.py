"""The pods the repository's Kubernetes manifests would create, as plain manifests a scanner reads.

checkov's kubernetes framework checks core kinds only (Pod, Deployment, DaemonSet, Job, ...); the pod
templates of a Kubeflow PyTorchJob or an MPIJob are invisible to it. :func:`extract` turns every
document of a rendered manifest into what checkov can check:

- ``PyTorchJob`` (``spec.pytorchReplicaSpecs.<replica>.template``) and ``MPIJob``
  (``spec.mpiReplicaSpecs.<replica>.template``): one ``Pod`` per replica type, named
  ``<source file stem>-<replica>``, in the job's namespace, with the template's labels and annotations
  (so ``checkov.io/skip<N>: CKV_K8S_<N>=<reason>`` annotations on the pod template reach the pod);
- core kinds (Pod, workloads, Service, ConfigMap, PersistentVolumeClaim, StorageClass, ...): as they are
  (checkov reads a workload's skip annotations from the object's own metadata);
- any other kind: :class:`UnknownKindError` naming the source, the document and the kind, never a
  silent skip.

:func:`repository_manifests` renders every Kubernetes template of the repository the way the folders'
tests do (each folder's Makefile ``?=`` defaults, plus example values for what a user must give),
and :func:`write_pods` writes one file per extracted manifest, named after its source file.

CLI (used by the ``security`` nox session)::

    python -m testbed.k8s_pods OUT_DIR     # writes OUT_DIR/<source>--<Kind>-<name>.yaml

It prints one JSON object: ``templates`` (files rendered), ``files`` (written), ``pod_specs`` (how many
of them hold a pod spec: Pods and core workloads).

Exit status: 0 written; 2 bad input (an unknown kind, a template that does not render or parse).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from testbed.kube import ManifestSyntaxError, MissingVariableError, parse_documents, render_manifest
from testbed.walkthrough import repository_files

REPO_ROOT = Path(__file__).resolve().parents[1]

# Where each custom kind keeps its pod templates: (apiVersion, kind) -> the key under spec.
REPLICA_SPECS: dict[tuple[str, str], str] = {
    ("kubeflow.org/v1", "PyTorchJob"): "pytorchReplicaSpecs",
    ("kubeflow.org/v2beta1", "MPIJob"): "mpiReplicaSpecs",
}
# Kinds checkov's kubernetes framework reads as they are (core and apps/batch/storage API groups).
CORE_KINDS = frozenset(
    {
        "Pod",
        "Deployment",
        "DaemonSet",
        "StatefulSet",
        "ReplicaSet",
        "ReplicationController",
        "Job",
        "CronJob",
        "Service",
        "ConfigMap",
        "Secret",
        "ServiceAccount",
        "Namespace",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "StorageClass",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
        "NetworkPolicy",
        "PodDisruptionBudget",
    }
)
# Core kinds that carry a pod spec (a Pod, or a template the controller makes pods from).
POD_KINDS = frozenset(
    {"Pod", "Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "ReplicationController", "Job", "CronJob"}
)
# Template files: any kubernetes/ folder, and the EKS add-ons that are templates (not Helm values).
TEMPLATE_PATTERNS = ("*kubernetes/*.yaml", "*kubernetes/*.yaml-template", "*addons/*.yaml-template")
# Values a user must give (no Makefile default), as the folders' tests give them: a registry image, the
# FSx subnet and security group, and nccl-tests' per-instance figures (p5.48xlarge).
EXAMPLE_VALUES: dict[str, str] = {
    "IMAGE": "123456789012.dkr.ecr.us-west-2.amazonaws.com/training:1.0.0",
    "FSX_SUBNET_ID": "subnet-0123456789abcdef0",
    "FSX_SECURITY_GROUP_ID": "sg-0123456789abcdef0",
    "GPU_PER_NODE": "8",
    "EFA_PER_NODE": "32",
    "DEVICE_RDMA": "1",
}
_DEFAULT = re.compile(r"^([A-Z][A-Z0-9_]*)[ \t]*\?=[ \t]*(.*?)[ \t]*$", re.MULTILINE)


class UnknownKindError(ValueError):
    """A document whose kind has no known pod template location and is not a core kind."""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")


def source_name(source: str) -> str:
    """A file-name-safe name for a source path: ``a/b/c.yaml-template`` -> ``a__b__c.yaml-template``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", source.replace("/", "__"))


def _pod(source: str, job: dict, replica: str, template: Any) -> dict:
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        raise UnknownKindError(f"{source}: {job['kind']} replica {replica} has no template.spec")
    job_meta = job.get("metadata") or {}
    template_meta = template.get("metadata") or {}
    name = f"{_slug(Path(source).name.split('.')[0])}-{_slug(replica)}"
    metadata: dict[str, Any] = {"name": name}
    if job_meta.get("namespace"):
        metadata["namespace"] = job_meta["namespace"]
    for key in ("labels", "annotations"):
        if template_meta.get(key):
            metadata[key] = dict(template_meta[key])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}


def extract(documents: Iterable[Any], source: str) -> list[tuple[str, dict]]:
    """(label, manifest) for each pod template and core object of ``documents``, rendered from ``source``.

    The label is ``Pod-<pod name>`` for an extracted pod, ``<Kind>-<name>`` for a core object.
    Raises :class:`UnknownKindError` for a document that is neither.
    """
    found: list[tuple[str, dict]] = []
    for index, document in enumerate(documents, start=1):
        if not isinstance(document, dict):
            raise UnknownKindError(f"{source}: document {index} is not a mapping with apiVersion and kind")
        api_version, kind = document.get("apiVersion"), document.get("kind")
        replica_key = REPLICA_SPECS.get((api_version, kind))
        if replica_key:
            replicas = (document.get("spec") or {}).get(replica_key) or {}
            if not isinstance(replicas, dict) or not replicas:
                raise UnknownKindError(f"{source}: {kind} (document {index}) has no spec.{replica_key}")
            for replica, spec in replicas.items():
                pod = _pod(source, document, replica, (spec or {}).get("template"))
                found.append((f"Pod-{pod['metadata']['name']}", pod))
        elif kind in CORE_KINDS:
            name = (document.get("metadata") or {}).get("name", f"document-{index}")
            found.append((f"{kind}-{_slug(str(name))}", document))
        else:
            known = ", ".join(sorted(f"{a} {k}" for a, k in REPLICA_SPECS))
            raise UnknownKindError(
                f"{source}: document {index} has apiVersion {api_version} kind {kind}, whose pods this "
                f"scan cannot find; add where its pod templates live to REPLICA_SPECS ({known}) in "
                "testbed/k8s_pods.py"
            )
    return found


def makefile_defaults(folder: Path) -> dict[str, str]:
    """Non-empty ``NAME ?= value`` defaults of ``folder/Makefile``."""
    path = folder / "Makefile"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    return {name: value for name, value in _DEFAULT.findall(text) if value}


def template_files(root: Path = REPO_ROOT) -> list[str]:
    """Every Kubernetes template of the repository (paths relative to ``root``, tracked or new)."""
    return sorted({str(path) for path in repository_files(*TEMPLATE_PATTERNS, root=root)})


def render(path: Path, extra: Mapping[str, str] | None = None) -> str:
    """The template at ``path`` rendered as the folder's ``make k8s`` would with its defaults: the folder
    is the template folder's parent (``<folder>/kubernetes/x.yaml-template``, ``<folder>/addons/...``)."""
    values = {**EXAMPLE_VALUES, **makefile_defaults(path.parent.parent), **(extra or {})}
    return render_manifest(path, values)


def repository_manifests(root: Path = REPO_ROOT) -> list[tuple[str, dict]]:
    """(file name, manifest) for every pod and core object the repository's templates make."""
    manifests = []
    for source in template_files(root):
        try:
            documents = parse_documents(render(root / source))
        except ManifestSyntaxError as exc:
            raise ManifestSyntaxError(f"{source} (rendered): {exc}") from None
        for label, manifest in extract(documents, source):
            manifests.append((f"{source_name(source)}--{label}.yaml", manifest))
    return manifests


def write_pods(out_dir: Path, root: Path = REPO_ROOT) -> list[Path]:
    """Write :func:`repository_manifests` into ``out_dir`` (emptied of earlier ``*.yaml`` first)."""
    manifests = repository_manifests(root)  # everything is rendered before anything is written
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.yaml"):
        old.unlink()
    written = []
    for name, manifest in manifests:
        path = out_dir / name
        path.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].startswith("-"):
        print(
            "error: usage: python -m testbed.k8s_pods OUT_DIR (a folder to write the pods into)",
            file=sys.stderr,
        )
        return 2
    out_dir = Path(args[0])
    if out_dir.exists() and not out_dir.is_dir():
        print(f"error: {out_dir} is a file; give a folder to write the pods into", file=sys.stderr)
        return 2
    try:
        written = write_pods(out_dir)
    except (UnknownKindError, MissingVariableError, ManifestSyntaxError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"error: cannot write into {out_dir}: {exc.strerror or exc}; give a writable folder",
            file=sys.stderr,
        )
        return 2
    summary = {
        "templates": len(template_files()),
        "files": [str(path) for path in written],
        "pod_specs": sum(1 for path in written if yaml.safe_load(path.read_text())["kind"] in POD_KINDS),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
