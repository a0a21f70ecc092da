"""testbed/schemas/: the vendored upstream schemas, their sources, how kube.py reads them, and refresh.py."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from testbed import kube
from testbed.tests.test_kube import CLUSTERCONFIG, MPIJOB, PYTORCHJOB

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = REPO_ROOT / "testbed" / "schemas"
PINS = yaml.safe_load((REPO_ROOT / "2.ami_and_containers" / "versions.yaml").read_text())["components"]


def test_every_vendored_file_names_its_source() -> None:
    sources = kube.vendored_sources()
    files = {p.name for p in SCHEMAS.iterdir() if p.suffix == ".json" and p.name != "SOURCES.json"}
    assert set(sources) == files
    for name, source in sources.items():
        assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", source["repository"]), name
        assert re.fullmatch(r"v\d+\.\d+\.\d+", source["tag"]), name
        assert re.fullmatch(r"[0-9a-f]{40}", source["commit"]), name
        assert re.fullmatch(r"[0-9a-f]{64}", source["sha256"]), name
        assert source["licence"] == "Apache-2.0" and source["path"], name


@pytest.mark.parametrize("name", sorted(kube.vendored_sources()))
def test_the_vendored_tag_is_the_pin_in_versions_yaml(name: str) -> None:
    source = kube.vendored_sources()[name]
    assert source["pin"] in PINS, f"add {source['pin']}: {source['tag']} to versions.yaml"
    assert PINS[source["pin"]] == source["tag"], "run testbed/schemas/refresh.py"


@pytest.mark.parametrize(
    ("project", "name"),
    [
        ("training-operator", "kubeflow.org_pytorchjobs.json"),
        ("mpi-operator", "kubeflow.org_mpijobs.json"),
        ("eksctl", "eksctl-clusterconfig-v1alpha5.json"),
    ],
)
def test_the_project_rules_name_the_vendored_release(project: str, name: str) -> None:
    """A new release may move a rule: bumping a pin makes kube.py's rules be read again."""
    source = (REPO_ROOT / "testbed" / "kube.py").read_text()
    assert f"{project} {kube.vendored_sources()[name]['tag']}" in source


def test_a_json_schema_is_stored_byte_for_byte() -> None:
    name = "eksctl-clusterconfig-v1alpha5.json"
    assert (
        hashlib.sha256((SCHEMAS / name).read_bytes()).hexdigest() == kube.vendored_sources()[name]["sha256"]
    )


@pytest.mark.parametrize(
    ("name", "api_version", "kind"),
    [
        ("kubeflow.org_pytorchjobs.json", "kubeflow.org/v1", "PyTorchJob"),
        ("kubeflow.org_mpijobs.json", "kubeflow.org/v2beta1", "MPIJob"),
    ],
)
def test_a_crd_is_stored_whole_and_serves_its_kind(name: str, api_version: str, kind: str) -> None:
    crd = json.loads((SCHEMAS / name).read_text())
    assert (crd["apiVersion"], crd["kind"]) == ("apiextensions.k8s.io/v1", "CustomResourceDefinition")
    served = {f"{crd['spec']['group']}/{v['name']}" for v in crd["spec"]["versions"] if v["served"]}
    assert api_version in served and crd["spec"]["names"]["kind"] == kind
    assert (api_version, kind) in kube.custom_schemas()


def test_custom_kinds_are_exactly_the_vendored_ones() -> None:
    assert sorted(kube.custom_schemas()) == [
        ("eksctl.io/v1alpha5", "ClusterConfig"),
        ("kubeflow.org/v1", "PyTorchJob"),
        ("kubeflow.org/v2beta1", "MPIJob"),
    ]
    assert set(kube._PROJECT_RULES) == set(kube.custom_schemas())


def pod_templates(node: object) -> int:
    if isinstance(node, dict):
        own = {"$ref": kube._POD_TEMPLATE} in node.get("allOf", [])
        return own + sum(pod_templates(value) for value in node.values())
    if isinstance(node, list):
        return sum(pod_templates(value) for value in node)
    return 0


@pytest.mark.parametrize(
    ("api_version", "kind"), [("kubeflow.org/v1", "PyTorchJob"), ("kubeflow.org/v2beta1", "MPIJob")]
)
def test_the_replica_pod_template_is_the_one_found(api_version: str, kind: str) -> None:
    assert pod_templates(kube.custom_schemas()[(api_version, kind)]) == 1


@pytest.mark.parametrize("version", kube.supported_versions())
def test_the_samples_validate_against_every_bundled_kubernetes_version(version: str) -> None:
    """Every reference into the core schemas resolves in each Kubernetes version kube.py accepts."""
    assert kube.validate_manifest("---\n".join([PYTORCHJOB, MPIJOB, CLUSTERCONFIG]), version) == []


# --------------------------------------------------------------------------- OpenAPI -> JSON Schema


def converted(node: dict) -> dict:
    return kube._from_openapi(node, "test")


def check(schema: dict, instance: object) -> list[str]:
    return [error.message for error in kube._Validator(schema).iter_errors(instance)]


def test_objects_are_closed_unless_they_preserve_unknown_fields() -> None:
    closed = converted({"type": "object", "properties": {"a": {"type": "string"}}})
    assert check(closed, {"a": "x", "b": 1}) == ["Additional properties are not allowed ('b' was unexpected)"]
    assert check(converted({"type": "object"}), {"b": 1}) != []
    open_ = converted({"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {}})
    assert check(open_, {"b": 1}) == []
    assert check(converted({"type": "object", "additionalProperties": {"type": "integer"}}), {"b": 1}) == []


def test_int_or_string_nullable_and_integer_formats() -> None:
    int_or_string = converted({"x-kubernetes-int-or-string": True})
    assert check(int_or_string, 3) == check(int_or_string, "50%") == []
    assert check(int_or_string, 1.5) != []
    assert check(converted({"type": "string"}), None) != []
    assert check(converted({"type": "string", "nullable": True}), None) == []
    int32 = converted({"type": "integer", "format": "int32"})
    assert check(int32, 2**31 - 1) == [] and check(int32, 2**31) != []


def test_list_types_set_and_map() -> None:
    items = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "protocol": {"type": "string", "default": "TCP"}},
    }
    ports = converted(
        {
            "type": "array",
            "items": items,
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name", "protocol"],
        }
    )
    assert check(ports, [{"name": "a"}, {"name": "a", "protocol": "UDP"}]) == []
    assert check(ports, [{"name": "a"}, {"name": "a", "protocol": "TCP"}]) == [
        'duplicate entry (name "a", protocol "TCP"; first at [0]): the API server rejects it'
    ]
    tags = converted({"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"})
    assert check(tags, ["a", "b"]) == [] and check(tags, ["a", "a"]) != []


def test_cel_rules_other_than_transition_rules_stop_loading() -> None:
    rule = {"rule": "self.minReplicas <= self.maxReplicas", "message": "min <= max"}
    with pytest.raises(ValueError, match=r"test: CEL rules \['self.minReplicas <= self.maxReplicas'\]"):
        converted({"type": "object", "x-kubernetes-validations": [rule]})
    with pytest.raises(ValueError, match="x-kubernetes-embedded-resource"):
        converted({"type": "object", "x-kubernetes-embedded-resource": True})
    assert converted({"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf"}]}) == {
        "type": "string"
    }


# --------------------------------------------------------------------------- refresh.py


def load_refresh() -> ModuleType:
    spec = importlib.util.spec_from_file_location("refresh", SCHEMAS / "refresh.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def git(folder: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, check=True
    ).stdout


CRD_YAML = """\
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget}
  versions: [{name: v1, served: true, schema: {openAPIV3Schema: {type: object}}}]
"""


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    """A project repository with two release tags of a CRD."""
    repo = tmp_path / "upstream"
    (repo / "crds").mkdir(parents=True)
    git(repo, "init", "-q")
    for tag, kind in (("v1.0.0", "Widget"), ("v1.1.0", "Gadget")):
        (repo / "crds" / "widgets.yaml").write_text(CRD_YAML.replace("{kind: Widget}", f"{{kind: {kind}}}"))
        git(repo, "add", ".")
        git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", tag)
        git(repo, "tag", tag)
    return repo


def test_refresh_follows_the_pin_and_check_reports_a_difference(
    tmp_path: Path, upstream: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    refresh = load_refresh()
    schemas, versions = tmp_path / "schemas", tmp_path / "versions.yaml"
    schemas.mkdir()
    source = {"repository": "https://github.com/example/widgets", "pin": "widgets", "tag": "v1.0.0"}
    source |= {"commit": "", "path": "crds/widgets.yaml", "licence": "Apache-2.0", "sha256": ""}
    (schemas / "SOURCES.json").write_text(json.dumps({"sources": {"widgets.json": source}}))
    versions.write_text("components:\n  widgets: v1.1.0\n")
    monkeypatch.setattr(refresh, "HERE", schemas)
    monkeypatch.setattr(refresh, "SOURCES", schemas / "SOURCES.json")
    monkeypatch.setattr(refresh, "VERSIONS", versions)
    clone = ["--git", f"example/widgets={upstream}"]

    assert refresh.main(["--check", *clone]) == 1
    assert not (schemas / "widgets.json").exists()
    assert refresh.main(clone) == 0
    stored = json.loads((schemas / "widgets.json").read_text())
    assert stored["spec"]["names"] == {"kind": "Gadget"}
    recorded = json.loads((schemas / "SOURCES.json").read_text())["sources"]["widgets.json"]
    assert recorded["tag"] == "v1.1.0" and recorded["commit"] == git(upstream, "rev-parse", "v1.1.0").strip()
    upstream_bytes = (upstream / "crds" / "widgets.yaml").read_bytes()
    assert recorded["sha256"] == hashlib.sha256(upstream_bytes).hexdigest()
    assert refresh.main(["--check", *clone]) == 0
    (schemas / "widgets.json").write_text("{}\n")
    assert refresh.main(["--check", *clone]) == 1
    assert "widgets.json: differs from example/widgets v1.1.0 crds/widgets.yaml" in capsys.readouterr().out

    versions.write_text("components:\n  widgets: v9.9.9\n")
    before = {p.name: p.read_bytes() for p in schemas.iterdir()}
    assert refresh.main(clone) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: cannot fetch example/widgets v9.9.9 crds/widgets.yaml: ")
        and err.count("\n") == 1
    )
    assert {p.name: p.read_bytes() for p in schemas.iterdir()} == before


def test_refresh_downloads_the_tagged_file_and_records_the_peeled_commit(
    tmp_path: Path, upstream: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --git: the file from RAW_URL, the commit from `git ls-remote` (file:// stand-ins here)."""
    refresh = load_refresh()
    raw = tmp_path / "raw" / "example" / "widgets" / "v1.0.0" / "crds"
    raw.mkdir(parents=True)
    (raw / "widgets.yaml").write_text(git(upstream, "show", "v1.0.0:crds/widgets.yaml"))
    git(
        upstream,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "tag",
        "-a",
        "v1.0.0-annotated",
        "-m",
        "x",
        "v1.0.0",
    )
    monkeypatch.setattr(refresh, "RAW_URL", f"file://{tmp_path}/raw/{{repository}}/{{tag}}/{{path}}")
    monkeypatch.setattr(refresh, "GIT_URL", f"file://{upstream}")
    data, commit = refresh.fetch("example/widgets", "v1.0.0", "crds/widgets.yaml", {})
    assert b"kind: Widget" in data and commit == git(upstream, "rev-parse", "v1.0.0").strip()
    (tmp_path / "raw" / "example" / "widgets" / "v1.0.0-annotated").symlink_to(raw.parent)
    _, commit = refresh.fetch("example/widgets", "v1.0.0-annotated", "crds/widgets.yaml", {})
    assert commit == git(upstream, "rev-parse", "v1.0.0").strip()


def test_refresh_stores_a_json_schema_as_is_and_refuses_other_yaml() -> None:
    refresh = load_refresh()
    assert refresh.stored_form("s.json", b'{"b": 1,  "a": 2}\n') == b'{"b": 1,  "a": 2}\n'
    with pytest.raises(ValueError, match="expected one CustomResourceDefinition"):
        refresh.stored_form("x.yaml", b"apiVersion: v1\nkind: ConfigMap\n")
