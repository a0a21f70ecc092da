"""EKS cluster configs and add-ons: generated from one template and the facts, rendered with the
user's inputs by the Makefile, and validated against the pinned eksctl and Kubernetes schemas."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from testbed import kube
from testbed.system import require_programs

EKS = Path(__file__).resolve().parents[1]
ROOT = EKS.parents[1]
INPUTS = {
    "CLUSTER_NAME": "ml-cluster",
    "AWS_REGION": "us-west-2",
    "AZ_1": "us-west-2a",
    "AZ_2": "us-west-2b",
    "GPU_AZ": "us-west-2b",
    "GPU_NODES": "2",
    "CAPACITY_RESERVATION_ID": "cr-0123456789abcdef0",
}
CLUSTERS = sorted((EKS / "clusters").glob("*.yaml"))


def generator():
    spec = importlib.util.spec_from_file_location("eks_generate", EKS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make(*args: str, cwd: Path = EKS) -> subprocess.CompletedProcess:
    require_programs("EKS render", "make", "envsubst", how="install make and gettext-base")
    env = {k: v for k, v in os.environ.items() if k not in INPUTS}
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_cluster_kind_has_a_generated_file() -> None:
    # That they equal what the generator writes: tests/test_sync.py, with every other generated file.
    gen = generator()
    assert len(CLUSTERS) == len(gen.CLUSTERS) == 7 and set(gen.generated_files()) >= set(CLUSTERS)


def test_check_mode_names_a_drifted_file(tmp_path: Path) -> None:
    copy = tmp_path / "1.architectures" / "4.amazon-eks"
    shutil.copytree(EKS, copy, ignore=shutil.ignore_patterns("tests", "build", "__pycache__"))
    shutil.copy(EKS.parent / "instance-types.yaml", copy.parent / "instance-types.yaml")
    (tmp_path / "2.ami_and_containers").mkdir()
    shutil.copy(ROOT / "2.ami_and_containers" / "versions.yaml", tmp_path / "2.ami_and_containers")
    target = copy / "clusters" / "p5-48xlarge-odcr.yaml"
    target.write_text(target.read_text().replace("efaEnabled: true", "efaEnabled: false"))
    done = subprocess.run(
        ["python3", "generate.py", "--check"], cwd=copy, capture_output=True, text=True, check=False
    )
    assert done.returncode == 1 and "clusters/p5-48xlarge-odcr.yaml" in done.stderr


@pytest.mark.parametrize("path", CLUSTERS, ids=lambda p: p.stem)
def test_each_config_renders_without_placeholders_and_validates(path: Path) -> None:
    text = kube.render_text(path.read_text(), INPUTS, source=path.name)
    assert "${" not in text and "{{" not in text
    assert kube.validate_manifest(text) == []
    config = yaml.safe_load(text)
    gpu = config["managedNodeGroups"][1]
    facts = yaml.safe_load((EKS.parent / "instance-types.yaml").read_text())["instance_types"][
        gpu["instanceType"]
    ]
    assert gpu["efaEnabled"] is (facts["efa"]["devices"] > 0)
    assert f"{facts['accelerator']['count']} x {facts['accelerator']['model']}" in path.read_text()
    assert gpu["availabilityZones"] == ["us-west-2b"]
    capacity = path.stem.split("-", 2)[2]
    assert ("capacityReservation" in gpu) is (capacity != "on-demand")
    assert ("instanceMarketOptions" in gpu) is (capacity == "capacity-block")


def test_kubernetes_version_comes_from_versions_yaml() -> None:
    versions = yaml.safe_load((ROOT / "2.ami_and_containers" / "versions.yaml").read_text())["components"]
    for path in CLUSTERS:
        assert yaml.safe_load(path.read_text())["metadata"]["version"] == versions["eks-kubernetes"]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            ("capacityReservationID: cr-0123456789abcdef0", "capacityReservationID: reservation-1"),
            "cr-0123456789abcdef0",
        ),
        (("marketType: capacity-block", "marketType: spot"), "marketType"),
        (("efaEnabled: true", "efaEnable: true"), "unknown field 'efaEnable' (did you mean 'efaEnabled'?)"),
        (("region: us-west-2", "region: oregon"), "region like us-west-2"),
    ],
)
def test_the_eksctl_schema_catches_mistakes(change: tuple[str, str], words: str) -> None:
    path = EKS / "clusters" / "p5-48xlarge-capacity-block.yaml"
    text = kube.render_text(path.read_text(), INPUTS).replace(*change)
    errors = kube.validate_manifest(text)
    assert any(words in error for error in errors), errors


def test_market_type_needs_a_reservation() -> None:
    text = kube.render_text((EKS / "clusters" / "p5-48xlarge-on-demand.yaml").read_text(), INPUTS)
    text += "    instanceMarketOptions:\n      marketType: capacity-block\n"
    assert any("capacityReservation" in error for error in kube.validate_manifest(text))


def test_make_renders_the_chosen_config_and_names_a_missing_input(tmp_path: Path) -> None:
    args = [f"{k}={v}" for k, v in INPUTS.items() if k != "CAPACITY_RESERVATION_ID"]
    done = make("cluster.yaml", "CONFIG=p4de-24xlarge-odcr", f"BUILD={tmp_path}", *args)
    assert done.returncode != 0
    assert "CAPACITY_RESERVATION_ID is not set" in done.stderr and done.stderr.count("\n") == 1
    done = make(
        "cluster.yaml",
        "CONFIG=p4de-24xlarge-odcr",
        f"BUILD={tmp_path}",
        *args,
        f"CAPACITY_RESERVATION_ID={INPUTS['CAPACITY_RESERVATION_ID']}",
    )
    assert done.returncode == 0, done.stderr
    rendered = (tmp_path / "cluster.yaml").read_text()
    assert "${" not in rendered and kube.validate_manifest(rendered) == []
    done = make("cluster.yaml", "CONFIG=p9-on-demand", f"BUILD={tmp_path}", *args)
    assert done.returncode == 2 and "no clusters/p9-on-demand.yaml" in done.stderr


def test_fsx_storage_renders_the_claim_the_training_jobs_mount() -> None:
    values = {
        "FSX_SUBNET_ID": "subnet-0123",
        "FSX_SECURITY_GROUP_ID": "sg-0123",
        "NAMESPACE": "default",
        "FSX_STORAGE": "1200Gi",
    }
    text = kube.render_manifest(EKS / "addons" / "fsx-storage.yaml-template", values)
    assert kube.validate_manifest(text) == []
    claim = next(d for d in yaml.safe_load_all(text) if d["kind"] == "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == "fsx-claim" and claim["spec"]["accessModes"] == ["ReadWriteMany"]
    for job in [
        ROOT / "3.test_cases/pytorch/cpu-ddp/kubernetes/cpu-ddp.yaml-template",
        *sorted((ROOT / "3.test_cases/pytorch/FSDP/kubernetes").glob("*.yaml")),
    ]:
        assert "claimName: fsx-claim" in job.read_text(), job


@pytest.mark.parametrize("name", ["nvidia-device-plugin", "efa-device-plugin", "fsx-csi-driver"])
def test_helm_values_scheduling_fields_are_valid_pod_spec_fields(name: str) -> None:
    values = yaml.safe_load((EKS / "addons" / f"{name}-values.yaml").read_text())
    scheduling = values.get("node", values)
    spec = {"containers": [{"name": "plugin", "image": "registry.example/plugin:1.0"}]}
    spec |= {key: scheduling[key] for key in ("affinity", "nodeSelector", "tolerations") if key in scheduling}
    assert len(spec) > 1
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
    assert kube.validate_documents([pod]) == []


def test_neuron_device_plugin_runs_on_the_trainium_types_of_instance_types_yaml() -> None:
    values = yaml.safe_load((EKS / "addons" / "neuron-helm-chart-values.yaml").read_text())
    facts = yaml.safe_load((ROOT / "1.architectures" / "instance-types.yaml").read_text())["instance_types"]
    trainium = sorted(n for n, f in facts.items() if f["kubernetes_resource"] == "aws.amazon.com/neuron")
    assert sorted(values["neuronInstances"]) == trainium and len(trainium) == 3
    spec = {"containers": [{"name": "plugin", "image": "registry.example/plugin:1.0"}]}
    spec["tolerations"] = values["devicePlugin"]["tolerations"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "neuron"}, "spec": spec}
    assert kube.validate_documents([pod]) == []
    neuron_taint = {"key": "aws.amazon.com/neuron", "operator": "Exists", "effect": "NoSchedule"}
    assert neuron_taint in spec["tolerations"]
    assert values["scheduler"] == {"enabled": False}  # jobs take whole nodes with the default scheduler


def test_addon_pins_come_from_versions_yaml_once() -> None:
    env = dict(
        line.split("=", 1)
        for line in (EKS / "addons" / "versions.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    versions = yaml.safe_load((ROOT / "2.ami_and_containers" / "versions.yaml").read_text())["components"]
    assert env["TRAINING_OPERATOR"] == versions["training-operator"]
    assert env["MPI_OPERATOR"] == versions["mpi-operator"]
    makefile = (EKS / "Makefile").read_text()
    overlay = (EKS / "addons" / "training-operator" / "kustomization.yaml").read_text()
    assert f"?ref={env['TRAINING_OPERATOR']}\n" in overlay  # make addons applies it with kubectl -k
    for key in env:
        assert key in {"EKSCTL", "EKS_KUBERNETES", "TRAINING_OPERATOR"} or f"$({key})" in makefile
    assert not re.search(r"--version \d", makefile), "a chart version typed into the Makefile"
