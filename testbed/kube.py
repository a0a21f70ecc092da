"""Kubernetes manifests: strict rendering of ``${NAME}`` templates and offline schema validation.

Rendering (:func:`render_manifest`) does what ``envsubst '${A} ${B}'`` does for the listed names,
but refuses to leave a placeholder empty: every ``${NAME}`` (``NAME`` = ``[A-Z_][A-Z0-9_]*``) needs
a non-empty value, and all missing names are reported at once. Everything else passes through
untouched: ``$PATH``, ``$(hostname)``, ``$(VAR)`` references that Kubernetes expands, lower-case
``${name}``. A literal ``${X}`` meant for a shell inside a container is written ``$${X}`` and renders
to ``${X}``. (``envsubst`` leaves ``$${X}`` as is; in ``command``, ``args`` and ``env`` values
Kubernetes itself turns ``$$`` into ``$``, so the shell sees ``${X}`` either way.)

Validation (:func:`validate_manifest`) checks every YAML document offline:

- core kinds (Pod, Deployment, Job, Service, ConfigMap, ...) against the strict JSON schemas that
  the ``kubernetes-validate`` package bundles for each Kubernetes minor version (unknown fields,
  wrong types and bad enums are errors);
- custom kinds against the schemas their projects publish, vendored in ``testbed/schemas/`` from
  the pinned release tags (``SOURCES.json`` names repository, tag, commit, path and licence;
  ``refresh.py`` fetches them again): the Kubeflow training operator's PyTorchJob CRD, the MPI
  operator's MPIJob CRD and eksctl's ClusterConfig JSON schema. A CRD's OpenAPI schema is turned
  into JSON Schema as the API server applies it (:func:`_from_openapi`), and its pod templates must
  also be valid core ``PodTemplateSpec`` objects of the Kubernetes version checked;
- the rules those projects enforce in code rather than in the schema (the training operator's
  webhook, the MPI operator's controller, eksctl's own checks), each naming where (``_PROJECT_RULES``);
- a null value is an error in every kind: it is what an unset variable leaves behind
  (``replicas:``), the core schemas allow it everywhere, and the API server silently drops it from a
  custom resource;
- any other kind is an error saying no schema is known, never a silent pass;
- a duplicate mapping key is an error (YAML loaders keep one of the two values silently).

CLI::

    python -m testbed.kube render TEMPLATE --set IMAGE=repo/img:1.0 [--set K=V ...] [--out FILE]
    python -m testbed.kube validate FILE... [--kubernetes-version 1.32]

Exit status: 0 success; 1 invalid manifest or a placeholder without a value; 2 bad input (a file
that cannot be read, a malformed ``--set``, an unsupported Kubernetes version).
"""

from __future__ import annotations

import argparse
import difflib
import functools
import importlib.metadata
import importlib.resources
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource

DEFAULT_KUBERNETES_VERSION = "1.32"  # EKS 1.32 (FACTS.md §3)
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
SOURCES_FILE = SCHEMA_DIR / "SOURCES.json"
K8S_DEFINITIONS_URI = "https://kubernetes.io/api/_definitions.json"
_POD_TEMPLATE = f"{K8S_DEFINITIONS_URI}#/$defs/io.k8s.api.core.v1.PodTemplateSpec"
_OBJECT_META = f"{K8S_DEFINITIONS_URI}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# Our keyword for x-kubernetes-list-type map (the core schemas carry x-kubernetes-list-* as annotations).
_LIST_MAP_KEYS = "x-testbed-list-map-keys"
_INTEGER_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
# CEL rules of the vendored CRDs that need no check here: transition rules, which the API server
# evaluates only on an update (training-operator: schedulingPolicy.queue is immutable).
_TRANSITION_RULES = frozenset({"self == oldSelf"})
# The resource.Quantity pattern that CRDs carry for int-or-string quantities.
_NUMBER = r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
_QUANTITY_PATTERN = rf"^(\+|-)?{_NUMBER}(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?{_NUMBER}))?$"
VARIABLE_NAME = r"[A-Z_][A-Z0-9_]*"
# `$${NAME}` is the escape (renders `${NAME}`); `${NAME}` is a placeholder.
_PLACEHOLDER = re.compile(rf"\$(?:\$\{{(?P<escaped>{VARIABLE_NAME})\}}|\{{(?P<name>{VARIABLE_NAME})\}})")
_SET_ARGUMENT = re.compile(rf"^(?P<key>{VARIABLE_NAME})=(?P<value>.*)$", re.DOTALL)
_MAX_MESSAGE = 240


class MissingVariableError(ValueError):
    """Placeholders of a template that have no (or an empty) value; names all of them."""

    def __init__(self, template: str, missing: Sequence[str]) -> None:
        self.template = template
        self.missing = list(missing)
        settings = " ".join(f"{name}=..." for name in self.missing)
        super().__init__(f"{template}: no value for {', '.join(self.missing)}; set {settings} (non-empty)")


class ManifestSyntaxError(ValueError):
    """A manifest that is not valid YAML (including a duplicate key); the message has the line."""


class UnsupportedVersionError(ValueError):
    """A Kubernetes version that kubernetes-validate has no schemas for."""


# --------------------------------------------------------------------------- rendering


def template_variables(text: str) -> set[str]:
    """The placeholder names used in ``text`` (escaped ``$${NAME}`` excluded)."""
    return {match["name"] for match in _PLACEHOLDER.finditer(text) if match["name"]}


def render_text(text: str, values: Mapping[str, str], *, source: str = "<template>") -> str:
    """Substitute every ``${NAME}`` in ``text`` from ``values``; ``$${NAME}`` renders ``${NAME}``.

    Raises :class:`MissingVariableError` naming ``source`` and every placeholder whose value is
    missing or empty.
    """
    missing = sorted(name for name in template_variables(text) if not str(values.get(name, "")))
    if missing:
        raise MissingVariableError(source, missing)

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "${" + match["escaped"] + "}"
        return str(values[match["name"]])

    return _PLACEHOLDER.sub(substitute, text)


def render_manifest(template: str | Path, values: Mapping[str, str]) -> str:
    """Render the template file at ``template`` (a path) with ``values``; see :func:`render_text`."""
    path = Path(template)
    return render_text(path.read_text(encoding="utf-8"), values, source=str(path))


# --------------------------------------------------------------------------- parsing


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys: one of the two values would be lost silently."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[str, int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        line = key_node.start_mark.line + 1
        if key_node.value in seen:
            raise ManifestSyntaxError(
                f"duplicate key {key_node.value!r} at line {line} (first at line {seen[key_node.value]})"
            )
        seen[key_node.value] = line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_documents(text: str) -> list[Any]:
    """All non-empty YAML documents of ``text``; raises :class:`ManifestSyntaxError` with the line."""
    try:
        return [doc for doc in yaml.load_all(text, Loader=_StrictLoader) if doc is not None]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ManifestSyntaxError(f"YAML syntax error{where}: {exc.problem or exc.context}") from None


# --------------------------------------------------------------------------- schemas


def _bundled_schema_root() -> Any:
    return importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema"


@functools.cache
def supported_versions() -> tuple[str, ...]:
    """Kubernetes minor versions (``"1.25"``, ...) with strict schemas bundled in kubernetes-validate."""
    found = []
    for entry in _bundled_schema_root().iterdir():
        match = re.fullmatch(r"v(\d+)\.(\d+)\.\d+-local-strict", entry.name)
        if match:
            found.append((int(match[1]), int(match[2])))
    return tuple(f"{major}.{minor}" for major, minor in sorted(found))


def _minor(version: str) -> str:
    match = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?", version.strip())
    minor = f"{match[1]}.{match[2]}" if match else version
    if minor not in supported_versions():
        known = supported_versions()
        raise UnsupportedVersionError(
            f"Kubernetes version {version!r} has no bundled schemas in kubernetes-validate "
            f"{_package_version()}; use one of {known[0]}..{known[-1]}, e.g. {DEFAULT_KUBERNETES_VERSION}"
        )
    return minor


def _package_version() -> str:
    return importlib.metadata.version("kubernetes-validate")


def _strict_dir(minor: str) -> Any:
    return _bundled_schema_root() / f"v{minor}.0-local-strict"


@functools.cache
def vendored_sources() -> dict[str, dict]:
    """``testbed/schemas/SOURCES.json``: per vendored file its project, repository, tag, commit, path,
    licence and the sha256 of the upstream file."""
    return json.loads(SOURCES_FILE.read_text(encoding="utf-8"))["sources"]


@functools.cache
def _vendored() -> tuple[dict[tuple[str, str], dict], dict[str, dict]]:
    """(the schema of each custom (apiVersion, kind), the vendored documents to register by URI)."""
    entries: dict[tuple[str, str], dict] = {}
    resources: dict[str, dict] = {}
    for name, source in vendored_sources().items():
        document = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
        origin = f"{source['repository']} {source['tag']} {source['path']} ({source['licence']})"
        if document.get("kind") == "CustomResourceDefinition":
            entries.update(_crd_schemas(document, origin))
            continue
        uri = f"urn:testbed:schemas:{name}"
        resources[uri] = document
        for definition, schema in document.get("definitions", {}).items():
            for gvk in schema.get("x-kubernetes-group-version-kind", []):
                entries[(f"{gvk['group']}/{gvk['version']}", gvk["kind"])] = {
                    "$schema": _DIALECT,
                    "$comment": f"Source: {origin}",
                    "$ref": f"{uri}#/definitions/{definition}",
                }
    return entries, resources


def custom_schemas() -> dict[tuple[str, str], dict]:
    """The JSON schema of each custom kind, keyed by (apiVersion, kind), from the vendored files."""
    return _vendored()[0]


def _crd_schemas(crd: dict, origin: str) -> dict[tuple[str, str], dict]:
    """A JSON schema per served version of a CustomResourceDefinition."""
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    schemas = {}
    for version in crd["spec"]["versions"]:
        if not version.get("served", True):
            continue
        schema = _from_openapi(version["schema"]["openAPIV3Schema"], f"{kind} {version['name']}")
        # The API server checks metadata as ObjectMeta whatever the CRD says (it may only narrow the name).
        schema["properties"]["metadata"] = {"$ref": _OBJECT_META}
        comment = f"Source: {origin}, version {version['name']}, converted by testbed/kube.py"
        schemas[(f"{group}/{version['name']}", kind)] = {"$schema": _DIALECT, "$comment": comment, **schema}
    return schemas


def _from_openapi(node: dict, where: str) -> dict:
    """A CRD's structural OpenAPI v3 schema as JSON Schema, checking what the API server checks.

    - An object accepts only its properties unless ``x-kubernetes-preserve-unknown-fields``: the server
      prunes other fields, and kubectl's default ``--validate=strict`` makes that an error.
    - ``x-kubernetes-int-or-string``: an integer or a string. ``nullable``: null allowed too (no
      vendored CRD uses it; :func:`validate_documents` reports every null as a likely empty variable,
      since without ``nullable`` the server silently drops it).
    - ``format`` int32/int64: the integer range.
    - ``x-kubernetes-list-type`` set: unique items; map: unique ``x-kubernetes-list-map-keys``.
    - A pod template (metadata, and a spec with containers) must also be a valid core PodTemplateSpec
      of the Kubernetes version checked: the operator creates pods from it.
    - CEL rules (``x-kubernetes-validations``) cannot be evaluated here: the known transition rules
      (checked only on an update) are skipped, and any other rule stops loading, naming it.
    """
    out = _from_openapi_keywords(node, where)
    kind = node.get("type")
    if node.get("x-kubernetes-int-or-string") and "anyOf" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and kind:
        out["type"] = [kind, "null"]
    if kind == "integer" and node.get("format") in _INTEGER_RANGE:
        low, high = _INTEGER_RANGE[node["format"]]
        out.setdefault("minimum", low)
        out.setdefault("maximum", high)
    preserve = node.get("x-kubernetes-preserve-unknown-fields")
    if kind == "object" and "additionalProperties" not in node and not preserve:
        out["additionalProperties"] = False
    if node.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    elif node.get("x-kubernetes-list-type") == "map":
        out[_LIST_MAP_KEYS] = node.get("x-kubernetes-list-map-keys", [])
    properties = out.get("properties", {})
    if "metadata" in properties and "containers" in properties.get("spec", {}).get("properties", {}):
        return {"allOf": [{"$ref": _POD_TEMPLATE}, out]}
    return out


def _from_openapi_keywords(node: dict, where: str) -> dict:
    """The keywords of one node, subschemas converted; CEL rules checked off and dropped."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _from_openapi(sub, f"{where}.{name}") for name, sub in value.items()}
        elif key in ("items", "not", "additionalProperties") and isinstance(value, dict):
            out[key] = _from_openapi(value, f"{where}[*]")
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [_from_openapi(sub, where) for sub in value]
        elif key == "x-kubernetes-validations":
            unchecked = [rule["rule"] for rule in value if rule["rule"] not in _TRANSITION_RULES]
            if unchecked:
                raise ValueError(f"{where}: CEL rules {unchecked} are not checked by testbed/kube.py")
        elif key == "x-kubernetes-embedded-resource" and value:
            raise ValueError(f"{where}: x-kubernetes-embedded-resource is not handled by testbed/kube.py")
        elif key != "nullable":
            out[key] = value
    return out


def _unique_list_keys(
    validator: Any, keys: list[str], instance: Any, schema: dict
) -> Iterable[jsonschema.ValidationError]:
    """The ``x-kubernetes-list-type: map`` check: no two items with the same key fields (a missing one
    counts as its default, e.g. protocol TCP)."""
    if not isinstance(instance, list):
        return
    fields = schema.get("items", {}).get("properties", {})
    seen: dict[tuple, int] = {}
    for index, item in enumerate(instance):
        if not isinstance(item, dict):
            continue
        key = tuple(json.dumps(item.get(name, fields.get(name, {}).get("default"))) for name in keys)
        if key in seen:
            named = ", ".join(f"{name} {value}" for name, value in zip(keys, key, strict=True))
            message = f"duplicate entry ({named}; first at [{seen[key]}]): the API server rejects it"
            yield jsonschema.ValidationError(message, path=[index])
        seen.setdefault(key, index)


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {_LIST_MAP_KEYS: _unique_list_keys}
)


@functools.cache
def _registry(minor: str) -> Registry:
    definitions = json.loads((_strict_dir(minor) / "_definitions.json").read_text(encoding="utf-8"))
    resources = [(K8S_DEFINITIONS_URI, Resource.from_contents(definitions))]
    resources += [(uri, Resource.from_contents(document)) for uri, document in _vendored()[1].items()]
    return Registry().with_resources(resources)


def _core_schema(minor: str, api_version: str, kind: str) -> dict | None:
    """The bundled strict schema for a core kind, or None when the group/version/kind is not core."""
    group, _, version = api_version.rpartition("/")
    prefix = f"-{group.split('.')[0]}" if group else ""
    path = _strict_dir(minor) / f"{kind.lower()}{prefix}-{version}.json"
    if not path.is_file():
        return None
    schema = json.loads(path.read_text(encoding="utf-8"))
    wanted = {"group": group, "version": version, "kind": kind}
    # File names drop the group's domain (apps.example.com/v1 would map to apps/v1): check the GVK.
    return schema if wanted in schema.get("x-kubernetes-group-version-kind", []) else None


@functools.cache
def _validator(minor: str, api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    schema = custom_schemas().get((api_version, kind)) or _core_schema(minor, api_version, kind)
    if schema is None:
        return None
    return _Validator(schema, registry=_registry(minor))


# --------------------------------------------------------------------------- project rules
# What the projects enforce outside the schemas they publish (an admission webhook, the controller, the
# CLI), each rule with where. A rule reads the document defensively: a wrong type is the schema's error.

Finding = tuple[list[Any], str]
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
# training-operator v1.9.2, pkg/apis/kubeflow.org/v1 (pytorch_types.go, common_types.go).
_PYTORCH_REPLICA_TYPES = ("Master", "Worker")
_PYTORCH_RESTART_POLICIES = ("Always", "OnFailure", "Never", "ExitCode")
_PYTORCH_RDZV_BACKENDS = ("c10d", "etcd", "etcd-v2")
_PYTORCH_MANAGED_BY = ("kubeflow.org/training-operator", "kueue.x-k8s.io/multikueue")
# mpi-operator v0.8.0, pkg/apis/kubeflow/validation/validation.go.
_MPI_RESTART_POLICIES = ("Never", "OnFailure")
_MPI_CLEAN_POD_POLICIES = ("None", "Running", "All")
_MPI_MANAGED_BY = ("kubeflow.org/mpi-operator", "kueue.x-k8s.io/multikueue")
# eksctl v0.210.0 SupportedRegions() (pkg/apis/eksctl.io/v1alpha5/types.go).
_EKSCTL_REGIONS = (
    *("us-west-1", "us-west-2", "us-east-1", "us-east-2", "ca-central-1", "ca-west-1", "eu-west-1"),
    *("eu-west-2", "eu-west-3", "eu-north-1", "eu-central-1", "eu-central-2", "eu-south-1", "eu-south-2"),
    *("ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2"),
    *("ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-7", "ap-south-1", "ap-south-2"),
    *("ap-east-1", "ap-east-2", "me-central-1", "me-south-1", "sa-east-1", "af-south-1", "cn-northwest-1"),
    *("cn-north-1", "il-central-1", "us-gov-west-1", "us-gov-east-1", "us-iso-east-1", "us-isob-east-1"),
    *("us-iso-west-1", "mx-central-1", "us-isof-south-1", "us-isof-east-1", "eu-isoe-west-1"),
)
_CAPACITY_RESERVATION_ID = re.compile(r"cr-[0-9a-f]{8}([0-9a-f]{9})?")


def _mapping(node: Any, *keys: str) -> dict:
    """``node[keys[0]][keys[1]]...`` when every step is a mapping, else an empty one."""
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def _not_dns1035_label(name: str) -> str | None:
    if len(name) > 63:
        return f"{len(name)} characters, over 63"
    if not _DNS1035_LABEL.fullmatch(name):
        return "not lower-case letters, digits and '-' starting with a letter"
    return None


def _one_of(value: Any, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(value), allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{value!r} is not one of {', '.join(allowed)}{hint}"


def _pytorchjob_rules(job: dict) -> list[Finding]:
    """training-operator v1.9.2. Its validating webhook (pkg/webhooks/pytorch/pytorchjob_webhook.go,
    validatePyTorchJob) rejects the job at ``kubectl apply``; defaults are applied later, by the
    controller, so the webhook sees the manifest as written."""
    found: list[Finding] = []
    spec = _mapping(job, "spec")
    name = _mapping(job, "metadata").get("name")
    # webhook: NameIsDNS1035Label(metadata.name).
    if isinstance(name, str) and (problem := _not_dns1035_label(name)):
        found.append((["metadata", "name"], f"{name!r}: {problem}; the webhook requires a DNS-1035 label"))
    # webhook validatePyTorchReplicaSpecs: pytorchReplicaSpecs "must be required" (the CRD requires it
    # only inside a spec).
    if "spec" not in job:
        found.append(([], "'spec' with 'pytorchReplicaSpecs' is required (training-operator webhook)"))
    specs = _mapping(spec, "pytorchReplicaSpecs")
    for replica_type, replica in specs.items():
        path = ["spec", "pytorchReplicaSpecs", replica_type]
        # webhook: replica types Master and Worker, spelled so.
        if replica_type not in _PYTORCH_REPLICA_TYPES:
            found.append((path, f"replica type {_one_of(replica_type, _PYTORCH_REPLICA_TYPES)}"))
        if not isinstance(replica, dict):
            continue
        found += _pytorch_replica_rules(path, replica_type, replica)
    elastic = spec.get("elasticPolicy")
    if isinstance(elastic, dict):
        # webhook validateSpec: an elasticPolicy needs a Worker.
        if "Worker" not in specs:
            found.append((["spec", "pytorchReplicaSpecs"], "an elasticPolicy needs a Worker replica spec"))
        # webhook validateSpec: not both .spec.nprocPerNode and the deprecated elasticPolicy.nProcPerNode.
        if "nProcPerNode" in elastic and "nprocPerNode" in spec:
            message = "set .spec.nprocPerNode or the deprecated elasticPolicy.nProcPerNode, not both"
            found.append((["spec", "elasticPolicy", "nProcPerNode"], message))
        # The controller (pkg/controller.v1/pytorch/elastic.go) hands rdzvBackend to torchrun as
        # PET_RDZV_BACKEND unchecked; the Go API defines c10d, etcd and etcd-v2, and torchrun fails to
        # start on anything else.
        backend = elastic.get("rdzvBackend")
        if isinstance(backend, str) and backend not in _PYTORCH_RDZV_BACKENDS:
            found.append((["spec", "elasticPolicy", "rdzvBackend"], _one_of(backend, _PYTORCH_RDZV_BACKENDS)))
    # webhook ValidateRunPolicy (pkg/common/util/webhooks.go): managedBy.
    managed_by = _mapping(spec, "runPolicy").get("managedBy")
    if isinstance(managed_by, str) and managed_by not in _PYTORCH_MANAGED_BY:
        found.append((["spec", "runPolicy", "managedBy"], _one_of(managed_by, _PYTORCH_MANAGED_BY)))
    return found


def _pytorch_replica_rules(path: list[Any], replica_type: str, replica: dict) -> list[Finding]:
    found: list[Finding] = []
    where = [*path, "template", "spec", "containers"]
    listed = _mapping(replica, "template", "spec").get("containers")
    containers = dict(enumerate(listed)) if isinstance(listed, list) else {}
    containers = {index: c for index, c in containers.items() if isinstance(c, dict)}
    # webhook validatePyTorchReplicaSpecs: containers, each with an image, one named "pytorch".
    if not containers:
        found.append((where, "at least one container is required (training-operator webhook)"))
    for index, container in containers.items():
        if not container.get("image"):
            found.append(([*where, index, "image"], "an image is required (training-operator webhook)"))
    if containers and not any(container.get("name") == "pytorch" for container in containers.values()):
        message = (
            "needs a container named 'pytorch' (training-operator webhook): the operator gives that "
            "container the rendezvous port 'pytorchjob-port' and the torchrun environment"
        )
        found.append((where, message))
    # webhook validatePyTorchReplicaSpecs: Master replicas set and 1; Worker replicas at least 1.
    replicas = replica.get("replicas")
    if replica_type == "Master" and ("replicas" not in replica or (type(replicas) is int and replicas != 1)):
        message = "a PyTorchJob has one Master: set replicas: 1 (training-operator webhook)"
        found.append(([*path, "replicas"], message))
    if replica_type == "Worker" and type(replicas) is int and replicas < 1:
        found.append(([*path, "replicas"], "Worker replicas must be at least 1 (training-operator webhook)"))
    # The controller (pkg/core/pod.go SetRestartPolicy) copies restartPolicy into the pods it creates
    # (ExitCode as Never); the API server then rejects a pod with any other value.
    policy = replica.get("restartPolicy")
    if isinstance(policy, str) and policy not in _PYTORCH_RESTART_POLICIES:
        found.append(([*path, "restartPolicy"], _one_of(policy, _PYTORCH_RESTART_POLICIES)))
    return found


def _mpijob_rules(job: dict) -> list[Finding]:
    """mpi-operator v0.8.0. The controller applies defaults (pkg/apis/kubeflow/v2beta1/default.go), then
    ValidateMPIJob (pkg/apis/kubeflow/validation/validation.go): a job that fails is accepted by the API
    server but never started, with only a Warning event (ValidationError) saying why."""
    found: list[Finding] = []
    spec = _mapping(job, "spec")
    specs = _mapping(spec, "mpiReplicaSpecs")
    workers = _mapping(specs, "Worker").get("replicas")
    name = _mapping(job, "metadata").get("name")
    # validateMPIJobName: the last worker's hostname, <name>-worker-<replicas - 1>, is a DNS-1035 label.
    if isinstance(name, str):
        host = f"{name}-worker-{max(workers, 1) - 1 if type(workers) is int else 0}"
        if problem := _not_dns1035_label(host):
            found.append((["metadata", "name"], f"the last worker's hostname {host!r}: {problem}"))
    if "spec" not in job:
        found.append(([], "'spec' with 'mpiReplicaSpecs' is required (mpi-operator)"))
    # validateLauncherReplicaSpec: a Launcher is required.
    if "mpiReplicaSpecs" in spec and "Launcher" not in specs:
        found.append((["spec", "mpiReplicaSpecs"], "a Launcher replica spec is required (mpi-operator)"))
    for replica_type in ("Launcher", "Worker"):
        replica = specs.get(replica_type)
        if isinstance(replica, dict):
            found += _mpi_replica_rules(["spec", "mpiReplicaSpecs", replica_type], replica_type, replica)
    # validateMPIJobSpec and validateRunPolicy: non-negative counts, clean-pod policy, managedBy.
    run_policy = _mapping(spec, "runPolicy")
    counts = [(["slotsPerWorker"], spec.get("slotsPerWorker"))]
    for key in ("ttlSecondsAfterFinished", "activeDeadlineSeconds", "backoffLimit"):
        counts.append((["runPolicy", key], run_policy.get(key)))
    for where, value in counts:
        if type(value) is int and value < 0:
            found.append((["spec", *where], f"{value} is negative; mpi-operator requires >= 0"))
    policy = run_policy.get("cleanPodPolicy")
    if isinstance(policy, str) and policy not in _MPI_CLEAN_POD_POLICIES:
        found.append((["spec", "runPolicy", "cleanPodPolicy"], _one_of(policy, _MPI_CLEAN_POD_POLICIES)))
    managed_by = run_policy.get("managedBy")
    if isinstance(managed_by, str) and managed_by not in _MPI_MANAGED_BY:
        found.append((["spec", "runPolicy", "managedBy"], _one_of(managed_by, _MPI_MANAGED_BY)))
    return found


def _mpi_replica_rules(path: list[Any], replica_type: str, replica: dict) -> list[Finding]:
    found: list[Finding] = []
    replicas = replica.get("replicas")
    # validateLauncherReplicaSpec: Launcher replicas (default 1) must be 1.
    if replica_type == "Launcher" and type(replicas) is int and replicas != 1:
        found.append(([*path, "replicas"], "an MPIJob has exactly one Launcher replica (mpi-operator)"))
    # validateWorkerReplicaSpec: Worker replicas default to 0, and must be at least 1.
    if replica_type == "Worker" and ("replicas" not in replica or (type(replicas) is int and replicas < 1)):
        message = "set Worker replicas >= 1 (mpi-operator defaults them to 0, then rejects that)"
        found.append(([*path, "replicas"], message))
    # validateReplicaSpec: restartPolicy (default OnFailure for the Launcher, Never for workers).
    policy = replica.get("restartPolicy")
    if isinstance(policy, str) and policy and policy not in _MPI_RESTART_POLICIES:
        found.append(([*path, "restartPolicy"], _one_of(policy, _MPI_RESTART_POLICIES)))
    containers = _mapping(replica, "template", "spec").get("containers")
    if isinstance(containers, list) and not containers:
        found.append(([*path, "template", "spec", "containers"], "at least one container (mpi-operator)"))
    return found


def _clusterconfig_rules(config: dict) -> list[Finding]:
    """eksctl v0.210.0: checks in its code that its schema.json does not express."""
    found: list[Finding] = []
    region = _mapping(config, "metadata").get("region")
    # pkg/ctl/cmdutils: "--region=... is not supported" unless in SupportedRegions().
    if isinstance(region, str) and region not in _EKSCTL_REGIONS:
        close = difflib.get_close_matches(region, _EKSCTL_REGIONS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        message = f"{region!r} is not a region eksctl supports: {hint}use a region like us-west-2"
        found.append((["metadata", "region"], message))
    for key in ("nodeGroups", "managedNodeGroups"):
        groups = config.get(key)
        for index, group in enumerate(groups if isinstance(groups, list) else []):
            if isinstance(group, dict):
                found += _capacity_rules([key, index], group)
    return found


def _capacity_rules(path: list[Any], group: dict) -> list[Finding]:
    """eksctl validateNodeGroupBase (pkg/apis/eksctl.io/v1alpha5/validation.go), capacity part."""
    found: list[Finding] = []
    reservation = group.get("capacityReservation")
    if "capacityReservation" not in group:
        if "instanceMarketOptions" in group:
            message = "instanceMarketOptions cannot be set without capacityReservation (eksctl)"
            found.append(([*path, "instanceMarketOptions"], message))
        return found
    where = [*path, "capacityReservation"]
    reservation = _mapping(group, "capacityReservation")
    preference = reservation.get("capacityReservationPreference")
    target = reservation.get("capacityReservationTarget")
    if preference is not None and target is not None:
        message = "set capacityReservationPreference or capacityReservationTarget, not both (eksctl)"
        found.append((where, message))
    if isinstance(preference, str) and preference not in ("open", "none"):
        found.append(([*where, "capacityReservationPreference"], _one_of(preference, ("open", "none"))))
    target = target if isinstance(target, dict) else {}
    if "capacityReservationID" in target and "capacityReservationResourceGroupARN" in target:
        message = "set capacityReservationID or capacityReservationResourceGroupARN, not both (eksctl)"
        found.append(([*where, "capacityReservationTarget"], message))
    # Not eksctl's check: EC2 rejects a malformed ID when eksctl's stack creates the launch template.
    reservation_id = target.get("capacityReservationID")
    if isinstance(reservation_id, str) and not _CAPACITY_RESERVATION_ID.fullmatch(reservation_id):
        message = f"{reservation_id!r} is not a capacity reservation ID like cr-0123456789abcdef0"
        found.append(([*where, "capacityReservationTarget", "capacityReservationID"], message))
    market = _mapping(group, "instanceMarketOptions").get("marketType")
    if market is not None and market != "capacity-block":
        message = f"marketType {market!r}: the only accepted value is 'capacity-block' (eksctl)"
        found.append(([*path, "instanceMarketOptions", "marketType"], message))
    return found


_PROJECT_RULES = {
    ("kubeflow.org/v1", "PyTorchJob"): _pytorchjob_rules,
    ("kubeflow.org/v2beta1", "MPIJob"): _mpijob_rules,
    ("eksctl.io/v1alpha5", "ClusterConfig"): _clusterconfig_rules,
}


# --------------------------------------------------------------------------- validation


def validate_manifest(text: str, kubernetes_version: str = DEFAULT_KUBERNETES_VERSION) -> list[str]:
    """Validate every YAML document in ``text``; return human-readable errors (empty: valid).

    Each error names the document (1-based index, kind/name), the JSON path and the problem.
    Raises :class:`UnsupportedVersionError` for a Kubernetes version without bundled schemas.
    """
    minor = _minor(kubernetes_version)
    try:
        documents = parse_documents(text)
    except ManifestSyntaxError as exc:
        return [str(exc)]
    return validate_documents(documents, minor)


def validate_documents(
    documents: Sequence[Any], kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
) -> list[str]:
    """Validate already-parsed documents; see :func:`validate_manifest`."""
    minor = _minor(kubernetes_version)
    errors: list[str] = []
    for index, document in enumerate(documents, start=1):
        errors += _validate_document(index, document, minor)
    return errors


def _validate_document(index: int, document: Any, minor: str) -> list[str]:
    label = _label(index, document)
    if not isinstance(document, dict):
        return [f"{label}: expected a mapping with apiVersion and kind, got {type(document).__name__}"]
    api_version, kind = document.get("apiVersion"), document.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return [f"{label}: apiVersion and kind must both be set (strings), e.g. apiVersion: v1, kind: Pod"]
    validator = _validator(minor, api_version, kind)
    if validator is None:
        return [f"{label}: no schema known for apiVersion {api_version} kind {kind}: {_known_kinds(minor)}"]
    # A null is reported once, as such: the core schemas accept it, a CRD's type rejects it.
    found = _null_values(document, [])
    nulls = {path for path, _ in found}
    for error in validator.iter_errors(document):
        if error.instance is not None or _json_path(error.absolute_path) not in nulls:
            found += _describe(error)
    rules = _PROJECT_RULES.get((api_version, kind))
    found += [(_json_path(path), message) for path, message in rules(document)] if rules else []
    return [f"{label}: {path}: {message}" for path, message in _one_per_kind(found)]


def _one_per_kind(found: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Sorted, without repeats: a pod template is checked twice (core and CRD), which can word the same
    unknown field or type error twice."""
    result, seen = [], set()
    for path, message in sorted(set(found)):
        kind = next((k for k in ("unknown field", "expected ") if message.startswith(k)), message)
        if (path, kind) not in seen:
            seen.add((path, kind))
            result.append((path, message))
    return result


def _null_values(node: Any, path: list[Any]) -> list[tuple[str, str]]:
    """Null values (``key:`` with nothing after it), which the core schemas let through.

    An unset variable rendered by envsubst leaves exactly that, and the API server then silently
    applies a default (``replicas:`` becomes 1). ``creationTimestamp: null`` (kubectl output) is fine.
    """
    if node is None:
        return [(_json_path(path), "null value (an empty template variable?); set a value or remove the key")]
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    found = []
    for key, value in items:
        if key != "creationTimestamp":
            found += _null_values(value, [*path, key])
    return found


def _label(index: int, document: Any) -> str:
    if not isinstance(document, dict):
        return f"document {index}"
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return f"document {index} ({document.get('kind', '?')}/{name or '<no name>'})"


def _known_kinds(minor: str) -> str:
    custom = ", ".join(f"{api} {kind}" for api, kind in sorted(custom_schemas()))
    return (
        f"core kinds come from kubernetes-validate {_package_version()} (Kubernetes {minor}), "
        f"custom kinds from testbed/schemas/ ({custom}); vendor the project's schema there for a new kind"
    )


def _json_path(parts: Iterable[Any]) -> str:
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", str(part)):
            path += f".{part}" if path else str(part)
        else:
            path += f"[{json.dumps(part)}]"
    return path or "(document)"


def _describe(error: jsonschema.ValidationError) -> list[tuple[str, str]]:
    """(path, message) pairs for one schema error, worded for a person editing the manifest."""
    path = list(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        return [(_json_path([*path, key]), message) for key, message in _unknown_fields(error, schema)]
    if error.validator == "pattern" and error.validator_value == _QUANTITY_PATTERN:
        return [(_json_path(path), f"expected a quantity like 500m, 4Gi or 8, got {_short(error.instance)}")]
    if error.validator == "type":
        return [
            (_json_path(path), f"expected {_type_names(error.validator_value)}, got {_short(error.instance)}")
        ]
    if error.validator in ("oneOf", "anyOf") and error.context:
        types = [sub.validator_value for sub in error.context if sub.validator == "type"]
        if len(types) == len(error.context):
            return [(_json_path(path), f"expected {_type_names(types)}, got {_short(error.instance)}")]
    return [(_json_path(path), _truncate(error.message))]


def _unknown_fields(error: jsonschema.ValidationError, schema: dict) -> list[tuple[str, str]]:
    known = list(schema.get("properties", {}))
    patterns = list(schema.get("patternProperties", {}))
    extras = [
        key for key in error.instance if key not in known and not any(re.search(p, key) for p in patterns)
    ]
    results = []
    for key in extras:
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        if not close and len(known) <= 8:
            hint = f" (allowed: {', '.join(sorted(known))})"
        results.append((key, f"unknown field {key!r}{hint}"))
    return results


def _type_names(expected: Any) -> str:
    names: list[str] = []
    for item in expected if isinstance(expected, list) else [expected]:
        for name in item if isinstance(item, list) else [item]:
            if name != "null" and name not in names:
                names.append(name)
    return " or ".join(names)


def _short(value: Any) -> str:
    if value is None:
        return "null"
    kind = {dict: "mapping", list: "list", str: "string", bool: "boolean"}.get(
        type(value), type(value).__name__
    )
    text = json.dumps(value, default=str)
    return f"{kind} {_truncate(text, 80)}"


def _truncate(text: str, limit: int = _MAX_MESSAGE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- CLI


class _BadInput(Exception):
    """Bad command-line input: reported on one line, exit status 2."""


def _parse_sets(settings: Sequence[str]) -> dict[str, str]:
    values = {}
    for setting in settings:
        match = _SET_ARGUMENT.match(setting)
        if not match:
            raise _BadInput(f"bad --set {setting!r}: expected KEY=VALUE with KEY like IMAGE or NUM_NODES")
        values[match["key"]] = match["value"]
    return values


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise _BadInput(f"cannot read {path}: {reason}") from None


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, then rename it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _cmd_render(args: argparse.Namespace) -> int:
    values = _parse_sets(args.set)
    text = render_text(_read(args.template), values, source=args.template)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        write_atomic(Path(args.out), text)
    except OSError as exc:
        raise _BadInput(f"cannot write {args.out}: {exc.strerror or exc}") from None
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    minor = _minor(args.kubernetes_version)
    texts = {path: _read(path) for path in args.files}
    count, errors = 0, []
    for path, text in texts.items():
        try:
            documents = parse_documents(text)
        except ManifestSyntaxError as exc:
            errors.append(f"{path}: {exc}")
            continue
        count += len(documents)
        if not documents:
            errors.append(f"{path}: no Kubernetes documents in the file")
        errors += [f"{path}: {error}" for error in validate_documents(documents, minor)]
    for error in errors:
        print(error)
    print(f"FAILED {len(errors)} errors in {count} documents" if errors else f"OK {count} documents")
    return 1 if errors else 0


def _parser() -> argparse.ArgumentParser:
    summary = (__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m testbed.kube", description=summary)
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", help="render a ${NAME} template strictly")
    render.add_argument("template", help="template file, e.g. kubernetes/cpu-ddp.yaml-template")
    render.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a value (repeatable)"
    )
    render.add_argument("--out", help="write here (atomically, only on success) instead of stdout")
    render.set_defaults(func=_cmd_render)
    validate = commands.add_parser("validate", help="validate manifests against Kubernetes/Kubeflow schemas")
    validate.add_argument("files", nargs="+", help="manifest files (YAML, several documents allowed)")
    validate.add_argument("--kubernetes-version", default=DEFAULT_KUBERNETES_VERSION, help="e.g. 1.32")
    validate.set_defaults(func=_cmd_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except MissingVariableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (_BadInput, UnsupportedVersionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
