"""The EKS journey as the README tells it: cluster config, add-ons, ECR, the nccl-tests MPIJob and the
training PyTorchJobs, and the nccl-tests verdict on the launcher's log.

The README's `eks` walkthrough runs as written in a copy of the repository, with the AWS CLI pointed at
the emulator and stand-ins for the cluster's CLIs (`testbed.standins`): `eksctl` validates the cluster
config against eksctl's schema, `helm` records, `kubectl` validates every manifest it applies against the
CRDs of the pinned releases and the Kubernetes schemas, waits only for what was applied, and prints a
recorded nccl-tests launcher log (tagged as `mpirun --tag-output` prints it) for `kubectl logs`; `docker`
checks each build (Dockerfile, context, COPY sources, FROM) and records the login and pushes, with the
password `aws ecr get-login-password` gets from the emulator. The training operator overlay is built with
kubectl's kustomize.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from testbed import kube
from testbed.job_standins import images
from testbed.standins import JOB_TOOLS, TOOLS, applied, calls, write_standins
from testbed.system import require_programs
from testbed.walkthrough import MARKER, run_walkthrough

EKS = Path(__file__).resolve().parents[1]
README = EKS / "README.md"
ROOT = EKS.parents[1]
NCCL = ROOT / "4.validation_observability" / "6.nccl-tests"
RECORDED = NCCL / "tests" / "fixtures" / "p5-2node-all_reduce-good.log"
PINS = yaml.safe_load((ROOT / "2.ami_and_containers" / "versions.yaml").read_text())["components"]
SOURCES = kube.vendored_sources()
REGION = "us-east-2"  # the README's cluster region, exported before its aws ecr commands
REGISTRY = f"123456789012.dkr.ecr.{REGION}.amazonaws.com"  # moto's account
TAG = "1.0.0"
# Training operator v1.9.2, pkg/controller.v1/register_controller.go: SupportedSchemeReconciler.
TRAINING_OPERATOR_SCHEMES = {"tfjob", "pytorchjob", "xgboostjob", "mpijob", "paddlejob", "jaxjob"}
# mpi-operator v0.8.0, pkg/controller/mpi_job_controller.go: launcherSuffix; types.go: JobSucceeded.
LAUNCHER_SUFFIX, SUCCEEDED = "-launcher", "Succeeded"
# What make addons' remote release manifests create (the stand-in cannot fetch them): the operators'
# Deployments, as v1.9.2's standalone overlay and mpi-operator v0.8.0's deploy/v2beta1 manifest name them.
OPERATORS = ("deployment/training-operator@kubeflow", "deployment/mpi-operator@mpi-operator")


def launcher_log(recorded: Path) -> str:
    """A recorded srun-labelled nccl-tests log as the MPIJob launcher prints it (`mpirun --tag-output`)."""
    return re.sub(r"^(\d+): ", r"[1,\1]<stdout>:", recorded.read_text(), flags=re.MULTILINE)


def block_after(readme: Path, heading: str, index: int = 0) -> str:
    """The ``index``-th fenced bash block after ``heading`` in ``readme``."""
    text = readme.read_text().split(heading, 1)[1]
    return re.findall(r"```bash\n(.*?)```", text, re.DOTALL)[index]


@pytest.fixture(scope="module")
def journey(aws_emulator, artifacts_root):
    """The README's `eks` walkthrough, run once with the stand-ins; ``journey.calls_log`` is their log."""
    workdir = artifacts_root / "wt-eks"
    launcher = artifacts_root / "eks-launcher.log"
    launcher.write_text(launcher_log(RECORDED))
    bin_dir = artifacts_root / "wt-eks-bin"
    log = write_standins(
        bin_dir, logs={"job/nccl-tests-launcher": launcher}, present=OPERATORS, tools=TOOLS + JOB_TOOLS
    )
    with pytest.MonkeyPatch.context() as patch:
        aws_emulator.export(patch.setenv)
        result = run_walkthrough(README, "eks", workdir, timeout=300, standins=bin_dir)
    assert result.returncode == 0, result.output[-4000:]
    result.calls_log = log
    return result


@pytest.mark.aws_emulator
def test_the_walkthrough_creates_the_repositories_reads_the_registry_and_judges_the_log(journey) -> None:
    for repository in ("nccl-tests", "fsdp", "cpu-ddp"):
        assert f"{REGISTRY}/{repository}\n" in journey.output  # create-repository printed its URI
    assert f"REGISTRY={REGISTRY} TAG={TAG}" in journey.output
    assert "# Verdict : OK" in journey.output and "threshold  : 440 GB/s" in journey.output
    # The repositories deleted, last on stdout (the stand-in kubectl's `get nodes` finds no nodes: stderr).
    stdout = journey.output.split("No resources found in default namespace.\n")[0]
    assert stdout.rstrip().endswith("nccl-tests\nfsdp\ncpu-ddp")


@pytest.mark.aws_emulator
def test_the_rendered_cluster_config_validates_against_eksctls_schema(journey) -> None:
    text = (journey.workdir / "1.architectures/4.amazon-eks/build/cluster.yaml").read_text()
    assert kube.validate_manifest(text) == [] and "${" not in text
    config = yaml.safe_load(text)
    assert config["metadata"]["region"] == REGION and config["metadata"]["version"] == PINS["eks-kubernetes"]
    gpu = config["managedNodeGroups"][1]
    assert gpu["instanceType"] == "p5.48xlarge" and gpu["efaEnabled"] is True
    assert gpu["capacityReservation"]["capacityReservationTarget"] == {
        "capacityReservationID": "cr-0123456789abcdef0"
    }
    assert SOURCES["eksctl-clusterconfig-v1alpha5.json"]["tag"] == PINS["eksctl"]


@pytest.mark.aws_emulator
def test_the_mpijob_is_valid_for_the_pinned_mpi_operator_and_names_what_kubectl_waits_for(journey) -> None:
    text = (
        journey.workdir / "4.validation_observability/6.nccl-tests/kubernetes/nccl-tests.yaml"
    ).read_text()
    assert kube.validate_manifest(text) == []
    job = yaml.safe_load(text)
    assert (job["apiVersion"], job["kind"]) == ("kubeflow.org/v2beta1", "MPIJob")
    containers = [
        spec["template"]["spec"]["containers"][0] for spec in job["spec"]["mpiReplicaSpecs"].values()
    ]
    assert {c["image"] for c in containers} == {f"{REGISTRY}/nccl-tests:{TAG}"}
    worker = job["spec"]["mpiReplicaSpecs"]["Worker"]
    assert worker["replicas"] == 2 and job["spec"]["slotsPerWorker"] == 8
    assert worker["template"]["spec"]["containers"][0]["resources"]["limits"]["vpc.amazonaws.com/efa"] == 32
    name = job["metadata"]["name"]
    kubectl = block_after(README, "## Check the network: nccl-tests", 1)
    assert f"--for=condition={SUCCEEDED}" in kubectl and f"mpijob/{name}" in kubectl
    assert f"kubectl logs job/{name}{LAUNCHER_SUFFIX} > all_reduce.log" in kubectl
    source = SOURCES["kubeflow.org_mpijobs.json"]
    assert source["tag"] == PINS["mpi-operator"]
    assert "/deploy/v2beta1/mpi-operator.yaml" in (EKS / "Makefile").read_text()
    assert source["path"] == "deploy/v2beta1/mpi-operator.yaml"  # the CRD as make addons installs it


@pytest.mark.aws_emulator
def test_the_pytorchjobs_are_valid_for_the_pinned_training_operator(journey) -> None:
    rendered = {
        "cpu-ddp": journey.workdir / "3.test_cases/pytorch/cpu-ddp/kubernetes/cpu-ddp.yaml",
        "fsdp": journey.workdir / "3.test_cases/pytorch/FSDP/build/llama3_1_8b.yaml",
    }
    for repository, path in rendered.items():
        text = path.read_text()
        assert kube.validate_manifest(text) == [], path
        job = yaml.safe_load(text)
        assert (job["apiVersion"], job["kind"]) == ("kubeflow.org/v1", "PyTorchJob")
        images = {
            spec["template"]["spec"]["containers"][0]["image"]
            for spec in job["spec"]["pytorchReplicaSpecs"].values()
        }
        assert images == {f"{REGISTRY}/{repository}:{TAG}"}
        applied = path.relative_to(journey.workdir)
        assert f"kubectl apply -f {applied}" in block_after(README, "## Run training", 1)
    assert SOURCES["kubeflow.org_pytorchjobs.json"]["tag"] == PINS["training-operator"]


@pytest.mark.aws_emulator
def test_the_login_build_and_push_block_pushes_what_the_jobs_pull(journey) -> None:
    """`aws ecr get-login-password | docker login` got a password from the emulator's ECR; each make
    container built its folder's Dockerfile with the registry tag the manifests name; all three pushed."""
    pushed = [f"{REGISTRY}/{repository}:{TAG}" for repository in ("nccl-tests", "fsdp", "cpu-ddp")]
    state = images(journey.calls_log)
    assert state["logins"] == [REGISTRY] and state["pushed"] == pushed
    dockerfiles = {tag: Path(state["built"][tag]["dockerfile"]).name for tag in pushed}
    assert dockerfiles == dict(
        zip(pushed, ["nccl-tests.Dockerfile", "fsdp.Dockerfile", "cpu-ddp.Dockerfile"], strict=True)
    )
    made = calls(journey.calls_log)
    assert made.index(f"docker login --username AWS --password-stdin {REGISTRY}") < made.index(
        f"docker push {pushed[0]}"
    )


# --------------------------------------------------------------------------- make addons


def make_addons(tools: Path) -> subprocess.CompletedProcess:
    require_programs("make addons", "make", how="install make")
    env = os.environ | {"PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(EKS), "addons"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.aws_emulator
def test_the_cluster_blocks_chain_through_the_stand_ins(journey) -> None:
    """Create, add-ons, storage, verify, the jobs and delete, as the walkthrough ran them: each make target
    finds what the one before rendered, each manifest was admitted, and delete removes what was applied."""
    made = [line for line in calls(journey.calls_log) if not line.startswith("docker ")]  # the test above
    assert made[0] == "eksctl create cluster -f build/cluster.yaml"
    assert made[-1] == "eksctl delete cluster -f build/cluster.yaml --wait"
    jobs = [
        "kubectl apply -f 4.validation_observability/6.nccl-tests/kubernetes/nccl-tests.yaml",
        "kubectl wait --for=condition=Succeeded --timeout=30m mpijob/nccl-tests",
        "kubectl logs job/nccl-tests-launcher",
        "kubectl apply -f 3.test_cases/pytorch/cpu-ddp/kubernetes/cpu-ddp.yaml",
        "kubectl apply -f 3.test_cases/pytorch/FSDP/build/llama3_1_8b.yaml",
        "kubectl get pytorchjobs",
        "kubectl delete -f build/fsx-storage.yaml",
    ]
    assert made[made.index("kubectl get pvc fsx-claim --namespace default") + 1 : -1] == jobs
    assert made.index("kubectl apply -f build/fsx-storage.yaml") < made.index(jobs[0])
    assert "persistentvolumeclaim/fsx-claim created" in journey.output
    assert 'persistentvolumeclaim "fsx-claim" deleted' in journey.output
    assert "NAME\ncpu-ddp\nfsdp-llama3-1-8b\n" in journey.output  # kubectl get pytorchjobs
    remaining = [(o["kind"], o["name"]) for o in applied(journey.calls_log)]
    assert remaining == [
        ("deployment", "training-operator"),
        ("deployment", "mpi-operator"),
        ("mpijob", "nccl-tests"),
        ("pytorchjob", "cpu-ddp"),
        ("pytorchjob", "fsdp-llama3-1-8b"),
    ]
    storage = journey.workdir / "1.architectures/4.amazon-eks/build/fsx-storage.yaml"
    assert kube.validate_manifest(storage.read_text()) == []


@pytest.mark.parametrize("target", ["create", "delete"])
def test_create_and_delete_need_the_rendered_config_only(tmp_path: Path, target: str) -> None:
    log = write_standins(tmp_path / "bin")
    env = os.environ | {"PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["make", "--no-print-directory", "-C", str(EKS), target, f"BUILD={tmp_path / 'build'}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (
        done.returncode == 2 and done.stderr.startswith("error: no ") and "make cluster.yaml" in done.stderr
    )
    assert not log.exists()  # nothing ran


def test_make_addons_installs_the_pinned_releases_in_order(tmp_path: Path) -> None:
    log = write_standins(tmp_path / "bin", present=OPERATORS)
    done = make_addons(tmp_path / "bin")
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    charts = {
        "nvdp/nvidia-device-plugin": PINS["nvidia-device-plugin-chart"],
        "eks/aws-efa-k8s-device-plugin": PINS["efa-device-plugin-chart"],
        "aws-fsx-csi-driver/aws-fsx-csi-driver": PINS["fsx-csi-driver-chart"],
        "oci://public.ecr.aws/neuron/neuron-helm-chart": PINS["neuron-helm-chart"],
    }
    for chart, version in charts.items():
        call = next(c.split() for c in calls if f" {chart} " in f"{c} ")
        assert call[call.index("--version") + 1] == version
        values = EKS / call[call.index("-f") + 1]
        assert values.is_file() and isinstance(yaml.safe_load(values.read_text()), dict)
    manifest = (
        f"https://raw.githubusercontent.com/kubeflow/mpi-operator/{PINS['mpi-operator']}/"
        f"{SOURCES['kubeflow.org_mpijobs.json']['path']}"
    )
    kubectl = [c for c in calls if c.startswith("kubectl ")]
    wait = "kubectl wait --for=condition=Available --timeout=300s"
    assert kubectl == [
        "kubectl get crd mpijobs.kubeflow.org -o jsonpath={.spec.versions[*].name}",
        "kubectl apply --server-side -k addons/training-operator",
        f"kubectl apply --server-side -f {manifest}",
        f"{wait} deployment/training-operator --namespace kubeflow",
        f"{wait} deployment/mpi-operator --namespace mpi-operator",
    ]


def test_make_addons_stops_on_the_training_operators_own_mpijob_crd(tmp_path: Path) -> None:
    log = write_standins(tmp_path / "bin", crd_versions="v1", present=OPERATORS)
    done = make_addons(tmp_path / "bin")
    assert done.returncode != 0 and "kubectl delete crd mpijobs.kubeflow.org" in done.stderr
    assert [line for line in done.stderr.splitlines() if line.startswith("error:")] == [
        line for line in done.stderr.splitlines() if "mpijobs.kubeflow.org" in line
    ]
    assert not any("apply" in call for call in log.read_text().splitlines())
    # The MPI operator's own CRD (v2beta1) is what a second `make addons` finds: it goes on.
    log = write_standins(tmp_path / "bin2", crd_versions="v2beta1", present=OPERATORS)
    assert make_addons(tmp_path / "bin2").returncode == 0, log.read_text()


def test_the_training_operator_overlay_drops_its_mpijob_and_keeps_every_other_kind(tmp_path: Path) -> None:
    """kubectl's kustomize builds the overlay over a stand-in of the release's standalone overlay: the
    vendored PyTorchJob CRD, a v1 MPIJob CRD and the operator Deployment as v1.9.2 ships it."""
    require_programs("kustomize", "kubectl", how="install kubectl (it embeds kustomize)")
    overlay = (EKS / "addons/training-operator/kustomization.yaml").read_text()
    base = (
        f"https://github.com/kubeflow/trainer//manifests/overlays/standalone?ref={PINS['training-operator']}"
    )
    assert f"  - {base}\n" in overlay
    stand_in = tmp_path / "standalone"
    stand_in.mkdir()
    pytorchjobs = json.loads((ROOT / "testbed/schemas/kubeflow.org_pytorchjobs.json").read_text())
    mpijobs_v1 = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "mpijobs.kubeflow.org"},
        "spec": {
            "group": "kubeflow.org",
            "names": {"kind": "MPIJob", "plural": "mpijobs"},
            "scope": "Namespaced",
        },
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "training-operator", "namespace": "kubeflow"},
        "spec": {
            "template": {"spec": {"containers": [{"name": "training-operator", "command": ["/manager"]}]}}
        },
    }
    (stand_in / "objects.yaml").write_text(yaml.safe_dump_all([pytorchjobs, mpijobs_v1, deployment]))
    (stand_in / "kustomization.yaml").write_text("resources:\n  - objects.yaml\n")
    (tmp_path / "overlay").mkdir()
    (tmp_path / "overlay/kustomization.yaml").write_text(overlay.replace(base, "../standalone"))
    built = subprocess.run(
        ["kubectl", "kustomize", str(tmp_path / "overlay")], capture_output=True, text=True, check=True
    ).stdout
    objects = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(built)}
    assert set(objects) == {
        ("CustomResourceDefinition", "pytorchjobs.kubeflow.org"),
        ("Deployment", "training-operator"),
    }
    assert objects[("CustomResourceDefinition", "pytorchjobs.kubeflow.org")] == pytorchjobs
    container = objects[("Deployment", "training-operator")]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["/manager"]
    assert {
        arg.removeprefix("--enable-scheme=") for arg in container["args"]
    } == TRAINING_OPERATOR_SCHEMES - {"mpijob"}


def test_refresh_takes_the_crd_out_of_an_install_manifest() -> None:
    """The MPIJob CRD is vendored from the manifest make addons applies, picked by SOURCES.json's
    `document`; the stored file is that document (labels included), not the bare CRD of manifests/."""
    spec = importlib.util.spec_from_file_location("refresh", ROOT / "testbed/schemas/refresh.py")
    refresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(refresh)
    stored = json.loads((ROOT / "testbed/schemas/kubeflow.org_mpijobs.json").read_text())
    assert stored["metadata"]["labels"]["app.kubernetes.io/name"] == "mpi-operator"
    source = SOURCES["kubeflow.org_mpijobs.json"]
    assert source["document"] == f"CustomResourceDefinition/{stored['metadata']['name']}"
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mpi-operator"}}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "mpi-operator"}}
    manifest = yaml.safe_dump_all([namespace, stored, deployment]).encode()
    assert json.loads(refresh.stored_form("x.json", manifest, source["document"])) == stored
    with pytest.raises(ValueError, match="expected one CustomResourceDefinition"):
        refresh.stored_form("x.json", manifest)  # three documents and no choice
    with pytest.raises(ValueError, match="expected one CustomResourceDefinition"):
        refresh.stored_form("x.json", manifest, "CustomResourceDefinition/tfjobs.kubeflow.org")


# --------------------------------------------------------------------------- every block accounted for


def census(readme: Path, section: str | None = None) -> tuple[int, int, int]:
    """(shell blocks, walkthrough blocks, illustrative blocks with a reason) of a README or a section."""
    text = readme.read_text()
    if section:
        text = text.split(section, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"(?:^(<!--[^\n]*-->)\n)?^```(?:bash|sh|console|shell)\n", text, re.MULTILINE)
    executed = len(MARKER.findall(text))
    illustrative = sum(bool(re.fullmatch(r"<!-- illustrative: \S.*-->", marker)) for marker in blocks)
    return len(blocks), executed, illustrative


@pytest.mark.parametrize(
    ("readme", "section"),
    [(README, None), (NCCL / "README.md", "## 5. On Amazon EKS (MPI operator)")],
    ids=["eks", "nccl-tests-k8s"],
)
def test_every_shell_block_is_executed_or_illustrative(readme: Path, section: str | None) -> None:
    total, executed, illustrative = census(readme, section)
    print(f"README shell blocks: {total}, executed {executed}, illustrative {illustrative}")
    assert total == executed + illustrative and executed >= illustrative
