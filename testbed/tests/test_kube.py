"""testbed.kube: strict template rendering, offline schema validation, and its CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from testbed import kube

REPO_ROOT = Path(__file__).resolve().parents[2]

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app.kubernetes.io/name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1.27.3
          imagePullPolicy: IfNotPresent
          ports: [{containerPort: 8080}]
          resources: {requests: {cpu: 250m, memory: 64Mi}, limits: {cpu: 1, memory: 128Mi}}
"""

PYTORCHJOB = """\
apiVersion: kubeflow.org/v1
kind: PyTorchJob
metadata:
  name: ddp
spec:
  runPolicy: {cleanPodPolicy: None, backoffLimit: 2}
  elasticPolicy:
    rdzvBackend: c10d
    minReplicas: 2
    maxReplicas: 2
    maxRestarts: 3
  pytorchReplicaSpecs:
    Worker:
      replicas: 2
      restartPolicy: OnFailure
      template:
        spec:
          containers:
            - name: pytorch
              image: repo/ddp:1.0
              command: [torchrun, --nproc-per-node=2, train.py]
              env: [{name: GLOO_SOCKET_IFNAME, value: eth0}]
"""

MPIJOB = """\
apiVersion: kubeflow.org/v2beta1
kind: MPIJob
metadata:
  name: nccl-tests
spec:
  slotsPerWorker: 8
  runPolicy: {cleanPodPolicy: Running}
  mpiReplicaSpecs:
    Launcher:
      replicas: 1
      restartPolicy: OnFailure
      template:
        spec:
          containers: [{name: launcher, image: repo/nccl-tests:2.17.9, command: [mpirun, all_reduce_perf]}]
    Worker:
      replicas: 2
      template:
        spec:
          containers:
            - name: worker
              image: repo/nccl-tests:2.17.9
              resources: {limits: {nvidia.com/gpu: 8, vpc.amazonaws.com/efa: 32}}
"""


def one_error(text: str) -> str:
    errors = kube.validate_manifest(text)
    assert len(errors) == 1, errors
    return errors[0]


# --------------------------------------------------------------------------- rendering


def test_render_substitutes_every_placeholder(tmp_path: Path) -> None:
    template = tmp_path / "job.yaml-template"
    template.write_text("name: ${JOB_NAME}\nreplicas: ${NUM_NODES}\nimage: ${IMAGE}:${TAG}\n")
    rendered = kube.render_manifest(template, {"JOB_NAME": "a", "NUM_NODES": "3", "IMAGE": "r/i", "TAG": "1"})
    assert rendered == "name: a\nreplicas: 3\nimage: r/i:1\n"
    assert kube.render_manifest(
        str(template), {"JOB_NAME": "a", "NUM_NODES": "3", "IMAGE": "r/i", "TAG": "1"}
    )


def test_render_names_every_missing_variable_and_the_template(tmp_path: Path) -> None:
    template = tmp_path / "job.yaml-template"
    template.write_text("a: ${IMAGE}\nb: ${NUM_NODES}\nc: ${JOB_NAME}\nd: ${IMAGE}\n")
    with pytest.raises(kube.MissingVariableError) as caught:
        kube.render_manifest(template, {"JOB_NAME": "x"})
    message = str(caught.value)
    assert caught.value.missing == ["IMAGE", "NUM_NODES"]
    assert str(template) in message
    assert "set IMAGE=... NUM_NODES=..." in message
    assert "\n" not in message


def test_empty_value_counts_as_missing() -> None:
    with pytest.raises(kube.MissingVariableError, match="no value for IMAGE"):
        kube.render_text("image: ${IMAGE}\n", {"IMAGE": ""})


def test_shell_and_kubernetes_references_survive() -> None:
    text = 'cmd: "echo $PATH $HOME $(hostname) $(POD_NAME) $$(ESCAPED) ${lower} $1 $"\n'
    assert kube.render_text(text, {}) == text


def test_escape_renders_a_literal_placeholder_for_the_shell() -> None:
    text = 'args: ["echo $${HOSTNAME} on ${JOB_NAME}"]\n'
    assert kube.template_variables(text) == {"JOB_NAME"}
    assert kube.render_text(text, {"JOB_NAME": "j"}) == 'args: ["echo ${HOSTNAME} on j"]\n'


def test_values_are_not_expanded_again() -> None:
    assert kube.render_text("a: ${A}\n", {"A": "${B} $${C} \\1"}) == "a: ${B} $${C} \\1\n"


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "text", [DEPLOYMENT, PYTORCHJOB, MPIJOB, DEPLOYMENT + "---\n" + PYTORCHJOB + "---\n"]
)
def test_valid_manifests_have_no_errors(text: str) -> None:
    assert kube.validate_manifest(text) == []


@pytest.mark.parametrize("version", ["1.25", "v1.37.2"])
def test_other_bundled_kubernetes_versions(version: str) -> None:
    assert kube.validate_manifest(DEPLOYMENT, kubernetes_version=version) == []


def test_unsupported_kubernetes_version_is_refused() -> None:
    with pytest.raises(kube.UnsupportedVersionError, match=r"1\.99.*use one of 1\.25\.\.1\.3\d"):
        kube.validate_manifest(DEPLOYMENT, kubernetes_version="1.99")


def test_unknown_container_field_is_named_with_a_suggestion() -> None:
    error = one_error(DEPLOYMENT.replace("imagePullPolicy:", "imagePullPolic:"))
    assert error.startswith("document 1 (Deployment/web): spec.template.spec.containers[0].imagePullPolic: ")
    assert "unknown field 'imagePullPolic' (did you mean 'imagePullPolicy'?)" in error


def test_wrong_type_for_replicas() -> None:
    error = one_error(DEPLOYMENT.replace("replicas: 2", "replicas: two"))
    assert 'spec.replicas: expected integer, got string "two"' in error


def test_quantity_and_env_value_types() -> None:
    errors = kube.validate_manifest(
        DEPLOYMENT.replace("memory: 64Mi", "memory: {}").replace(
            "imagePullPolicy: IfNotPresent", "env: [{name: N, value: 2}]"
        )
    )
    assert any("resources.requests.memory: expected string or number" in e for e in errors), errors
    assert any("containers[0].env[0].value: expected string, got int 2" in e for e in errors), errors


def test_null_values_are_errors_in_core_kinds() -> None:
    """What envsubst leaves for an unset variable; kubernetes-validate's schemas accept null everywhere."""
    text = DEPLOYMENT.replace("replicas: 2", "replicas:").replace("image: nginx:1.27.3", "image:")
    errors = kube.validate_manifest(text.replace("name: web\n", "name: web\n  creationTimestamp: null\n", 1))
    assert errors == [
        "document 1 (Deployment/web): spec.replicas: null value (an empty template variable?); "
        "set a value or remove the key",
        "document 1 (Deployment/web): spec.template.spec.containers[0].image: null value (an empty template "
        "variable?); set a value or remove the key",
    ]


def test_pytorchjob_without_replica_specs() -> None:
    text = PYTORCHJOB.split("  pytorchReplicaSpecs:", maxsplit=1)[0]
    error = one_error(text)
    assert error == "document 1 (PyTorchJob/ddp): spec: 'pytorchReplicaSpecs' is a required property"


def test_pytorchjob_bad_rdzv_backend() -> None:
    error = one_error(PYTORCHJOB.replace("rdzvBackend: c10d", "rdzvBackend: zookeeper"))
    assert "spec.elasticPolicy.rdzvBackend: 'zookeeper' is not one of ['c10d', 'etcd', 'etcd-v2']" in error


def test_pytorchjob_pod_template_is_checked_as_core_podtemplatespec() -> None:
    error = one_error(PYTORCHJOB.replace("image: repo/ddp:1.0", "image: repo/ddp:1.0\n              gpus: 8"))
    assert "spec.pytorchReplicaSpecs.Worker.template.spec.containers[0].gpus: unknown field 'gpus'" in error


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (("Worker:", "worker:"), "spec.pytorchReplicaSpecs.worker", "did you mean 'Worker'"),
        (
            ("name: pytorch", "name: main"),
            "spec.pytorchReplicaSpecs.Worker.template.spec.containers",
            "'pytorch'",
        ),
        (("name: ddp", "name: DDP_job"), "metadata.name", "DNS-1035"),
        (("maxRestarts: 3", "maxRestarts: -1"), "spec.elasticPolicy.maxRestarts", "minimum"),
        (
            ("replicas: 2\n      restartPolicy", "replicas: null\n      restartPolicy"),
            "Worker.replicas",
            "integer",
        ),
        (("restartPolicy: OnFailure", "restartPolicy: Sometimes"), "Worker.restartPolicy", "ExitCode"),
        (("  elasticPolicy:", "  nprocPerNode: 2\n  elasticPolicy:"), "spec.nprocPerNode", '"auto"'),
    ],
)
def test_pytorchjob_wrapper_rules(change: tuple[str, str], path: str, words: str) -> None:
    error = one_error(PYTORCHJOB.replace(*change))
    assert path in error and words in error, error


def test_mpijob_launcher_must_have_one_replica() -> None:
    error = one_error(MPIJOB.replace("replicas: 1", "replicas: 2"))
    assert "spec.mpiReplicaSpecs.Launcher.replicas: an MPIJob has exactly one Launcher replica" in error


def test_unknown_custom_kind_is_an_error_not_a_pass() -> None:
    error = one_error("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
    assert error.startswith(
        "document 1 (Widget/w): no schema known for apiVersion example.com/v1 kind Widget"
    )
    assert "testbed/schemas/" in error


def test_custom_group_with_a_core_kind_name_is_not_validated_as_core() -> None:
    error = one_error(DEPLOYMENT.replace("apiVersion: apps/v1", "apiVersion: apps.example.com/v1"))
    assert "no schema known for apiVersion apps.example.com/v1 kind Deployment" in error


def test_errors_name_the_document_index() -> None:
    errors = kube.validate_manifest(DEPLOYMENT + "---\n" + PYTORCHJOB.replace("c10d", "zk"))
    assert len(errors) == 1 and errors[0].startswith(
        "document 2 (PyTorchJob/ddp): spec.elasticPolicy.rdzvBackend"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: [1\n", "YAML syntax error at line 2"),
        ("kind: Pod\napiVersion: v1\nkind: Service\n", "duplicate key 'kind' at line 3 (first at line 1)"),
        ("- 1\n- 2\n", "document 1: expected a mapping with apiVersion and kind, got list"),
        ("metadata: {name: x}\n", "document 1 (?/x): apiVersion and kind must both be set"),
    ],
)
def test_malformed_documents(text: str, expected: str) -> None:
    assert expected in one_error(text)


@pytest.mark.parametrize(
    "path", sorted((REPO_ROOT / "testbed" / "schemas").glob("*.json")), ids=lambda p: p.name
)
def test_custom_schemas_are_valid_and_name_their_source(path: Path) -> None:
    schema = json.loads(path.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    source = re.search(r"Source: (kubeflow|eksctl-io)/", schema["$comment"])
    assert source and f"https://github.com/{source[1]}/" in schema["$comment"]
    assert schema["x-kubernetes-group-version-kind"], "kube.py finds custom schemas by this annotation"


def external_refs(node: object) -> set[str]:
    if isinstance(node, dict):
        own = {node["$ref"]} if str(node.get("$ref", "")).startswith(kube.K8S_DEFINITIONS_URI) else set()
        return own.union(*(external_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(external_refs(value) for value in node))
    return set()


@pytest.mark.parametrize("version", kube.supported_versions())
def test_custom_schemas_resolve_against_every_bundled_version(version: str) -> None:
    refs = set().union(*(external_refs(schema) for schema in kube.custom_schemas().values()))
    assert len(refs) >= 4
    resolver = kube._registry(version).resolver()
    for ref in sorted(refs):
        assert resolver.lookup(ref).contents, ref


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def template(tmp_path: Path) -> Path:
    path = tmp_path / "job.yaml-template"
    path.write_text(PYTORCHJOB.replace("name: ddp", "name: ${JOB_NAME}").replace("repo/ddp:1.0", "${IMAGE}"))
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = kube.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_render_to_file_then_validate(capsys, template: Path, tmp_path: Path) -> None:
    out = tmp_path / "job.yaml"
    code, stdout, _ = run_cli(
        capsys, "render", str(template), "--set", "JOB_NAME=j", "--set", "IMAGE=r/i:1", "--out", str(out)
    )
    assert (code, stdout) == (0, "")
    assert "name: j" in out.read_text()
    assert run_cli(capsys, "validate", str(out)) == (0, "OK 1 documents\n", "")


def test_cli_render_failure_leaves_no_file(capsys, template: Path, tmp_path: Path) -> None:
    out = tmp_path / "job.yaml"
    out.write_text("previous render\n")
    code, _, err = run_cli(capsys, "render", str(template), "--set", "JOB_NAME=j", "--out", str(out))
    assert code == 1
    assert err.count("\n") == 1 and "no value for IMAGE; set IMAGE=..." in err
    assert out.read_text() == "previous render\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.yaml", "job.yaml-template"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["render", "missing.yaml-template"], "error: cannot read missing.yaml-template: No such file"),
        (["render", "{template}", "--set", "IMAGE"], "error: bad --set 'IMAGE': expected KEY=VALUE"),
        (["render", "{template}", "--set", "image=x"], "error: bad --set 'image=x'"),
        (["validate", "missing.yaml"], "error: cannot read missing.yaml: No such file"),
        (["validate", "{template}", "--kubernetes-version", "2.0"], "error: Kubernetes version '2.0'"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(capsys, template: Path, argv: list[str], expected: str) -> None:
    code, stdout, err = run_cli(capsys, *(arg.format(template=template) for arg in argv))
    assert (code, stdout) == (2, "")
    assert err.startswith(expected) and err.count("\n") == 1, err


def test_cli_validate_lists_errors_and_exits_1(capsys, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEPLOYMENT + "---\n" + DEPLOYMENT.replace("replicas: 2", "replicas: two"))
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n---\n")
    code, stdout, _ = run_cli(capsys, "validate", str(bad), str(empty))
    assert code == 1
    assert stdout.splitlines() == [
        f'{bad}: document 2 (Deployment/web): spec.replicas: expected integer, got string "two"',
        f"{empty}: no Kubernetes documents in the file",
        "FAILED 2 errors in 2 documents",
    ]


def test_cli_runs_as_a_module(tmp_path: Path) -> None:
    manifest = tmp_path / "deploy.yaml"
    manifest.write_text(DEPLOYMENT)
    result = subprocess.run(
        [sys.executable, "-m", "testbed.kube", "validate", str(manifest)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "OK 1 documents\n"), result.stderr
