"""testbed.kube: strict template rendering, offline schema validation, and its CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


CLUSTERCONFIG = """\
apiVersion: eksctl.io/v1alpha5
kind: ClusterConfig
metadata: {name: ml, region: us-west-2, version: "1.32"}
availabilityZones: [us-west-2a, us-west-2b]
managedNodeGroups:
  - name: gpu
    instanceType: p5.48xlarge
    desiredCapacity: 2
    efaEnabled: true
    availabilityZones: [us-west-2b]
    capacityReservation:
      capacityReservationTarget: {capacityReservationID: cr-0123456789abcdef0}
    instanceMarketOptions: {marketType: capacity-block}
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
    "text", [DEPLOYMENT, PYTORCHJOB, MPIJOB, CLUSTERCONFIG, DEPLOYMENT + "---\n" + PYTORCHJOB + "---\n"]
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


# The schemas the projects publish, vendored in testbed/schemas/: per kind, a misspelt key, a wrong type
# and a missing required field, each reported with its JSON path.
WITHOUT_PYTORCH_REPLICAS = PYTORCHJOB.split("  pytorchReplicaSpecs:", maxsplit=1)[0]
WITHOUT_MPI_REPLICAS = MPIJOB.split("  mpiReplicaSpecs:", maxsplit=1)[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            PYTORCHJOB.replace("maxRestarts: 3", "maxRestart: 3"),
            "document 1 (PyTorchJob/ddp): spec.elasticPolicy.maxRestart: unknown field 'maxRestart' "
            "(did you mean 'maxRestarts'?)",
        ),
        (
            PYTORCHJOB.replace("replicas: 2\n      restartPolicy", "replicas: two\n      restartPolicy"),
            "document 1 (PyTorchJob/ddp): spec.pytorchReplicaSpecs.Worker.replicas: expected integer, "
            'got string "two"',
        ),
        (
            WITHOUT_PYTORCH_REPLICAS,
            "document 1 (PyTorchJob/ddp): spec: 'pytorchReplicaSpecs' is a required property",
        ),
        (
            MPIJOB.replace("slotsPerWorker:", "slotPerWorker:"),
            "document 1 (MPIJob/nccl-tests): spec.slotPerWorker: unknown field 'slotPerWorker' "
            "(did you mean 'slotsPerWorker'?)",
        ),
        (
            MPIJOB.replace("slotsPerWorker: 8", 'slotsPerWorker: "8"'),
            'document 1 (MPIJob/nccl-tests): spec.slotsPerWorker: expected integer, got string "8"',
        ),
        (
            WITHOUT_MPI_REPLICAS,
            "document 1 (MPIJob/nccl-tests): spec: 'mpiReplicaSpecs' is a required property",
        ),
        (
            CLUSTERCONFIG.replace("efaEnabled:", "efaEnable:"),
            "document 1 (ClusterConfig/ml): managedNodeGroups[0].efaEnable: unknown field 'efaEnable' "
            "(did you mean 'efaEnabled'?)",
        ),
        (
            CLUSTERCONFIG.replace("desiredCapacity: 2", "desiredCapacity: two"),
            "document 1 (ClusterConfig/ml): managedNodeGroups[0].desiredCapacity: expected integer, "
            'got string "two"',
        ),
        (
            CLUSTERCONFIG.replace("name: ml, ", ""),
            "document 1 (ClusterConfig/<no name>): metadata: 'name' is a required property",
        ),
    ],
    ids=[
        f"{kind}-{case}"
        for kind in ("pytorchjob", "mpijob", "eksctl")
        for case in ("key", "type", "required")
    ],
)
def test_published_schema_errors_are_reported_with_their_path(text: str, expected: str) -> None:
    assert expected in kube.validate_manifest(text)


def test_pod_template_is_checked_as_core_podtemplatespec() -> None:
    error = one_error(PYTORCHJOB.replace("image: repo/ddp:1.0", "image: repo/ddp:1.0\n              gpus: 8"))
    assert "spec.pytorchReplicaSpecs.Worker.template.spec.containers[0].gpus: unknown field 'gpus'" in error


def test_pod_template_is_also_checked_against_the_crd_copy() -> None:
    """The API server prunes what the CRD's own copy of PodTemplateSpec lacks, even where the core
    schema allows it: template metadata other than labels/annotations/..., and pod-level resources
    (Kubernetes 1.32) in a training-operator v1.9.2 CRD built on Kubernetes 1.31 types."""
    text = PYTORCHJOB.replace(
        "      template:\n        spec:\n",
        "      template:\n        metadata: {generateName: x-}\n"
        "        spec:\n          resources: {limits: {cpu: 1}}\n",
    )
    template = "document 1 (PyTorchJob/ddp): spec.pytorchReplicaSpecs.Worker.template"
    assert kube.validate_manifest(text) == [
        f"{template}.metadata.generateName: unknown field 'generateName' (allowed: annotations, finalizers, "
        "labels, name, namespace)",
        f"{template}.spec.resources: unknown field 'resources' (did you mean 'resourceClaims'?)",
    ]


def test_pod_template_fields_newer_than_the_kubernetes_version_are_errors() -> None:
    """mpi-operator v0.8.0's CRD knows hostnameOverride (Kubernetes 1.34); EKS 1.32 does not."""
    text = MPIJOB.replace(
        "    Worker:\n      replicas: 2\n      template:\n        spec:\n",
        "    Worker:\n      replicas: 2\n      template:\n        spec:\n          hostnameOverride: w\n",
    )
    assert kube.validate_manifest(text, kubernetes_version="1.34") == []
    assert "Worker.template.spec.hostnameOverride: unknown field 'hostnameOverride'" in one_error(text)


def test_list_map_keys_and_quantities_in_pod_templates() -> None:
    text = PYTORCHJOB.replace(
        "env: [{name: GLOO_SOCKET_IFNAME, value: eth0}]",
        "env: [{name: A, value: x}, {name: A, value: y}]\n              resources: {limits: {memory: 4 GB}}",
    )
    containers = "document 1 (PyTorchJob/ddp): spec.pytorchReplicaSpecs.Worker.template.spec.containers[0]"
    assert kube.validate_manifest(text) == [
        f'{containers}.env[1]: duplicate entry (name "A"; first at [0]): the API server rejects it',
        f'{containers}.resources.limits.memory: expected a quantity like 500m, 4Gi or 8, got string "4 GB"',
    ]


def test_null_in_a_custom_kind_is_reported_once_as_a_null() -> None:
    text = PYTORCHJOB.replace("replicas: 2\n      restartPolicy", "replicas:\n      restartPolicy")
    assert one_error(text) == (
        "document 1 (PyTorchJob/ddp): spec.pytorchReplicaSpecs.Worker.replicas: null value (an empty "
        "template variable?); set a value or remove the key"
    )


MASTER = """\
    Master:
      template:
        spec:
          containers: [{name: pytorch, image: repo/ddp:1.0}]
"""
LONG_NAME = "n" * 56  # a valid name, but the last worker's hostname is too long


# Rules the projects enforce outside their schemas (testbed/kube.py _PROJECT_RULES).
@pytest.mark.parametrize(
    ("text", "path", "words"),
    [
        (PYTORCHJOB.replace("name: ddp", "name: DDP_job"), "metadata.name", "DNS-1035"),
        (
            PYTORCHJOB.replace("Worker:", "worker:"),
            "spec.pytorchReplicaSpecs.worker",
            "did you mean 'Worker'",
        ),
        (
            PYTORCHJOB.replace("Worker:", "worker:"),
            "spec.pytorchReplicaSpecs",
            "elasticPolicy needs a Worker",
        ),
        (PYTORCHJOB.replace("name: pytorch", "name: main"), "Worker.template.spec.containers", "'pytorch'"),
        (
            PYTORCHJOB.replace("              image: repo/ddp:1.0\n", ""),
            "containers[0].image",
            "an image is required",
        ),
        (PYTORCHJOB.replace("    Worker:\n", MASTER + "    Worker:\n"), "Master.replicas", "set replicas: 1"),
        (
            PYTORCHJOB.replace("replicas: 2\n      restart", "replicas: 0\n      restart"),
            "Worker.replicas",
            "at least 1",
        ),
        (
            PYTORCHJOB.replace("OnFailure", "Sometimes"),
            "Worker.restartPolicy",
            "'Sometimes' is not one of Always",
        ),
        (PYTORCHJOB.replace("c10d", "zookeeper"), "spec.elasticPolicy.rdzvBackend", "not one of c10d, etcd"),
        (
            PYTORCHJOB.replace(
                "  elasticPolicy:\n", "  nprocPerNode: '2'\n  elasticPolicy:\n    nProcPerNode: 2\n"
            ),
            "spec.elasticPolicy.nProcPerNode",
            "not both",
        ),
        (PYTORCHJOB.replace("backoffLimit: 2", "managedBy: kueue"), "spec.runPolicy.managedBy", "not one of"),
        (PYTORCHJOB.split("spec:\n", maxsplit=1)[0], "(document)", "'spec' with 'pytorchReplicaSpecs'"),
        (MPIJOB.replace("replicas: 1", "replicas: 2"), "Launcher.replicas", "exactly one Launcher replica"),
        (MPIJOB.replace("      replicas: 2\n", ""), "Worker.replicas", "defaults them to 0"),
        (
            MPIJOB.replace("Launcher:", "Launchr:"),
            "spec.mpiReplicaSpecs",
            "a Launcher replica spec is required",
        ),
        (
            MPIJOB.replace("OnFailure", "Always"),
            "Launcher.restartPolicy",
            "'Always' is not one of Never, OnFailure",
        ),
        (
            MPIJOB.replace("Running", "Everything"),
            "spec.runPolicy.cleanPodPolicy",
            "not one of None, Running",
        ),
        (
            MPIJOB.replace("{cleanPodPolicy: Running}", "{backoffLimit: -1}"),
            "runPolicy.backoffLimit",
            "negative",
        ),
        (
            MPIJOB.replace("nccl-tests\n", f"{LONG_NAME}\n", 1),
            "metadata.name",
            f"'{LONG_NAME}-worker-1': 65 characters, over 63",
        ),
        (CLUSTERCONFIG.replace("us-west-2,", "oregon,"), "metadata.region", "use a region like us-west-2"),
        (CLUSTERCONFIG.replace("us-west-2,", "us-west-9,"), "metadata.region", "did you mean 'us-west-2'?"),
        (
            CLUSTERCONFIG.replace("capacity-block}", "spot}"),
            "instanceMarketOptions.marketType",
            "'capacity-block'",
        ),
        (
            CLUSTERCONFIG.replace(
                "    capacityReservation:\n      capacityReservationTarget: "
                "{capacityReservationID: cr-0123456789abcdef0}\n",
                "",
            ),
            "managedNodeGroups[0].instanceMarketOptions",
            "cannot be set without capacityReservation",
        ),
        (
            CLUSTERCONFIG.replace(
                "    capacityReservation:\n",
                "    capacityReservation:\n      capacityReservationPreference: capacity-reservations-only\n",
            ),
            "managedNodeGroups[0].capacityReservation",
            "not both",
        ),
        (
            CLUSTERCONFIG.replace(
                "    capacityReservation:\n",
                "    capacityReservation:\n      capacityReservationPreference: capacity-reservations-only\n",
            ),
            "capacityReservation.capacityReservationPreference",
            "not one of open, none",
        ),
        (
            CLUSTERCONFIG.replace("cr-0123456789abcdef0", "reservation-1"),
            "capacityReservationID",
            "like cr-0123",
        ),
        (
            CLUSTERCONFIG.replace(
                "cr-0123456789abcdef0}", "cr-0123456789abcdef0, capacityReservationResourceGroupARN: arn:x}"
            ),
            "capacityReservation.capacityReservationTarget",
            "not both",
        ),
    ],
)
def test_project_rules(text: str, path: str, words: str) -> None:
    errors = kube.validate_manifest(text)
    assert any(words in e and (f"): {path}: " in e or f".{path}: " in e) for e in errors), errors


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
