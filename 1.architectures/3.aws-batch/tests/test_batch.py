"""AWS Batch template: README walkthrough on the emulator (VPC -> Batch by exports, submit-job), the
EFA mapping against instance-types.yaml, offline rendering of capacity and placement conditions, and the
job's command: the image's batch_mnp.py launcher, one rank per GPU (the launcher itself is run for real
across local nodes by 4.validation_observability/6.nccl-tests/tests/test_batch_mnp.py).
The emulator has no placement groups: the walkthrough runs with UsePlacementGroup=false (README)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from testbed.cfn import TemplateParameterError, load_template, render
from testbed.walkthrough import run_walkthrough

FOLDER = Path(__file__).resolve().parents[1]
TEMPLATE = FOLDER / "aws-batch-nccl.yaml"
INSTANCE_TYPES = yaml.safe_load((FOLDER.parent / "instance-types.yaml").read_text())["instance_types"]
VPC_TEMPLATE = FOLDER.parent / "1.vpc_network" / "vpc-one-az.yaml"
IMAGE = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/nccl-tests:v2.17.9"
NCCL_TESTS = FOLDER.parents[1] / "4.validation_observability" / "6.nccl-tests"


def active(items: list, conditions: dict[str, bool]) -> list:
    """The list items CloudFormation keeps: plain ones and ``Fn::If`` whose condition holds."""
    kept = []
    for item in items:
        if isinstance(item, dict) and "Fn::If" in item:
            name, yes, no = item["Fn::If"]
            chosen = yes if conditions[name] else no
            if chosen != {"Ref": "AWS::NoValue"}:
                kept.append(chosen)
        else:
            kept.append(item)
    return kept


def job_container(template: dict) -> dict:
    node_range = template["Resources"]["NcclTestsJobDefinition"]["Properties"]["NodeProperties"]
    return node_range["NodeRangeProperties"][0]["Container"]


def job_command(template: dict, instance_type: str) -> list[str]:
    """The container command with its FindInMap items resolved for the instance type."""
    mapping = template["Mappings"]["EfaByInstanceType"][instance_type]
    command = job_container(template)["Command"]
    return [mapping[item["Fn::FindInMap"][2]] if isinstance(item, dict) else item for item in command]


def rendered(overrides: dict[str, str]):
    template = load_template(TEMPLATE)
    return template, render(template, {"NcclTestsImage": IMAGE, **overrides})


@pytest.mark.aws_emulator
def test_readme_walkthrough_chains_vpc_and_batch_and_submits(aws_emulator, artifacts_root, monkeypatch):
    aws_emulator.export(monkeypatch.setenv)
    monkeypatch.setenv("PLACEMENT_GROUP", "false")  # no placement-group model in the emulator
    result = run_walkthrough(FOLDER / "README.md", "emulator", artifacts_root / "wt-batch", timeout=300)
    assert result.returncode == 0, result.output[-4000:]
    assert "nccl-tests-2-nodes\tarn:aws:batch:" in result.output
    stacks = aws_emulator.client("cloudformation").list_stacks()["StackSummaries"]
    assert all(
        s["StackStatus"] == "DELETE_COMPLETE" for s in stacks if s["StackName"] in ("ml-vpc", "ml-batch")
    )


@pytest.mark.aws_emulator
def test_deployed_launch_template_and_compute_environment(aws_emulator):
    aws_emulator.deploy(
        VPC_TEMPLATE, "bvpc", {"AvailabilityZone": "us-east-1b", "CreatePublicSubnets": "false"}
    )
    params = {"VpcStackName": "bvpc", "InstanceType": "p4d.24xlarge", "UsePlacementGroup": "false"}
    outputs = aws_emulator.deploy(TEMPLATE, "bbatch", {**params, "NcclTestsImage": IMAGE})
    ec2, batch = aws_emulator.client("ec2"), aws_emulator.client("batch")
    data = ec2.describe_launch_template_versions(LaunchTemplateId=outputs["LaunchTemplateId"])[
        "LaunchTemplateVersions"
    ][0]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    nics = data["NetworkInterfaces"]
    assert [(n["NetworkCardIndex"], n["DeviceIndex"], n["InterfaceType"]) for n in nics] == [
        (0, 0, "efa"),
        (1, 1, "efa"),
        (2, 1, "efa"),
        (3, 1, "efa"),
    ]
    exports = {e["Name"]: e["Value"] for e in aws_emulator.client("cloudformation").list_exports()["Exports"]}
    assert all(n["Groups"] == [exports["bvpc-EfaSecurityGroupId"]] for n in nics)
    (environment,) = batch.describe_compute_environments(
        computeEnvironments=[outputs["ComputeEnvironmentArn"]]
    )["computeEnvironments"]
    resources = environment["computeResources"]
    assert resources["subnets"] == [exports["bvpc-PrimaryPrivateSubnetId"]]
    assert resources["instanceTypes"] == ["p4d.24xlarge"] and "placementGroup" not in resources
    (job,) = batch.describe_job_definitions(jobDefinitions=[outputs["JobDefinitionArn"]])["jobDefinitions"]
    assert job["timeout"] == {"attemptDurationSeconds": 3600}  # a hung mpirun does not run forever
    aws_emulator.delete("bbatch")
    aws_emulator.delete("bvpc")


def test_mapping_matches_instance_types_yaml():
    template = load_template(TEMPLATE)
    mapping = template["Mappings"]["EfaByInstanceType"]
    gpu_with_efa = {
        name: facts
        for name, facts in INSTANCE_TYPES.items()
        if facts["accelerator"]["kind"] == "gpu" and facts["efa"]["devices"] >= 1
    }
    assert set(mapping) == set(gpu_with_efa)
    assert template["Parameters"]["InstanceType"]["AllowedValues"] == list(mapping)
    for name, facts in gpu_with_efa.items():
        assert mapping[name] == {
            "Devices": str(facts["efa"]["devices"]),
            "DeviceRdma": str(facts["efa"]["device_rdma"]).lower(),
            "Gpus": str(facts["accelerator"]["count"]),
        }, name


@pytest.mark.parametrize("instance_type", sorted(load_template(TEMPLATE)["Mappings"]["EfaByInstanceType"]))
def test_efa_interfaces_devices_and_rdma_follow_the_instance_type(instance_type):
    template, result = rendered({"InstanceType": instance_type})
    devices = INSTANCE_TYPES[instance_type]["efa"]["devices"]
    data = template["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]
    nics = active(data["NetworkInterfaces"], result.conditions)
    assert [n["NetworkCardIndex"] for n in nics] == list(range(devices))
    assert [n["DeviceIndex"] for n in nics] == [0] + [1] * (devices - 1)
    container = template["Resources"]["NcclTestsJobDefinition"]["Properties"]["NodeProperties"][
        "NodeRangeProperties"
    ][0]["Container"]
    uverbs = active(container["LinuxParameters"]["Devices"], result.conditions)
    assert [d["HostPath"] for d in uverbs] == [f"/dev/infiniband/uverbs{i}" for i in range(devices)]
    names = [e["Name"] for e in active(container["Environment"], result.conditions)]
    assert ("FI_EFA_USE_DEVICE_RDMA" in names) == INSTANCE_TYPES[instance_type]["efa"]["device_rdma"]


@pytest.mark.parametrize(
    ("mode", "reserved", "block"),
    [("on-demand", False, False), ("odcr", True, False), ("capacity-block", True, True)],
)
def test_capacity_modes(mode, reserved, block):
    reservation = "" if mode == "on-demand" else "cr-0123456789abcdef0"
    template, result = rendered({"CapacityMode": mode, "CapacityReservationId": reservation})
    assert result.conditions["ReservedCapacity"] is reserved and result.conditions["CapacityBlock"] is block
    data = template["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["CapacityReservationSpecification"]["Fn::If"][0] == "ReservedCapacity"
    assert data["InstanceMarketOptions"]["Fn::If"][:2] == ["CapacityBlock", {"MarketType": "capacity-block"}]


@pytest.mark.parametrize("enabled", ["true", "false"])
def test_placement_group_condition_is_not_inverted(enabled):
    template, result = rendered({"UsePlacementGroup": enabled})
    assert ("PlacementGroup" in result.resources) is (enabled == "true")
    group = template["Resources"]["PlacementGroup"]
    assert group["Condition"] == "PlacementGroupOn" and group["Properties"]["Strategy"] == "cluster"
    used = template["Resources"]["ComputeEnvironment"]["Properties"]["ComputeResources"]["PlacementGroup"]
    assert used == {"Fn::If": ["PlacementGroupOn", {"Ref": "PlacementGroup"}, {"Ref": "AWS::NoValue"}]}


def test_imports_are_exports_of_the_vpc_stack():
    text = TEMPLATE.read_text()
    vpc_outputs = load_template(VPC_TEMPLATE)["Outputs"]
    for name in ("PrimaryPrivateSubnetId", "EfaSecurityGroupId"):
        assert f"${{VpcStackName}}-{name}" in text
        assert vpc_outputs[name]["Export"]["Name"] == {"Fn::Sub": f"${{AWS::StackName}}-{name}"}
    assert "us-east-1" not in text and "123456789012" not in text


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"InstanceType": "p3.16xlarge"}, r"InstanceType='p3.16xlarge' is not one of"),
        ({"CapacityMode": "spot"}, r"CapacityMode='spot' is not one of"),
        ({"CapacityReservationId": "cr-123"}, r"CapacityReservationId='cr-123' does not match"),
        ({"NcclTestsImage": "example/nccl-tests:latest"}, r"NcclTestsImage=.* does not match: .*version tag"),
        ({"NcclTestsImage": "example/nccl-tests"}, r"NcclTestsImage=.* does not match"),
        ({"NumNodes": "1"}, r"NumNodes=1 is outside \[2, 64\]"),
        ({"JobTimeoutSeconds": "30"}, r"JobTimeoutSeconds=30 is outside \[60, 86400\]"),
        ({"UsePlacementGroup": "yes"}, r"UsePlacementGroup='yes' is not one of"),
    ],
)
def test_bad_parameters_are_rejected(overrides, message):
    with pytest.raises(TemplateParameterError, match=message):
        rendered(overrides)


@pytest.mark.parametrize("instance_type", sorted(load_template(TEMPLATE)["Mappings"]["EfaByInstanceType"]))
def test_job_runs_one_mpirun_over_all_nodes_with_one_rank_per_gpu(instance_type):
    template = load_template(TEMPLATE)
    gpus = str(INSTANCE_TYPES[instance_type]["accelerator"]["count"])
    assert job_command(template, instance_type) == [
        "batch_mnp.py", "--slots", gpus, "--ssh", "--",
        "/opt/nccl-tests/all_reduce_perf",
        "-b", "8", "-e", "16G", "-f", "2", "-g", "1", "-c", "1", "-n", "100",
    ]  # fmt: skip
    requirements = {r["Type"]: r["Value"] for r in job_container(template)["ResourceRequirements"]}
    gpu_requirement = requirements["GPU"]["Fn::FindInMap"]
    assert template["Mappings"][gpu_requirement[0]][instance_type][gpu_requirement[2]] == gpus


def test_nccl_tests_arguments_are_those_of_the_slurm_job():
    """One set of nccl-tests arguments: the Batch job's are the sbatch's defaults (6.nccl-tests)."""
    sbatch = (
        FOLDER.parents[1] / "4.validation_observability/6.nccl-tests/slurm/nccl-tests.sbatch"
    ).read_text()
    line = re.search(r'command=\("\$NCCL_TESTS_DIR/\$\{test\}_perf"(.*?)\)', sbatch, re.DOTALL)[1]
    sbatch_args = [re.sub(r'^"\$\{\w+:-(.*)\}"$', r"\1", word) for word in line.split()]
    batch_args = job_command(load_template(TEMPLATE), "p5.48xlarge")
    assert batch_args[batch_args.index("/opt/nccl-tests/all_reduce_perf") + 1 :] == sbatch_args


def test_command_is_the_launcher_the_image_installs_and_its_options_parse():
    dockerfile = (NCCL_TESTS / "nccl-tests.Dockerfile").read_text()
    assert "COPY --chmod=755 batch_mnp.py /usr/local/bin/batch_mnp.py" in dockerfile
    assert "!batch_mnp.py" in (NCCL_TESTS / ".dockerignore").read_text().splitlines()
    command = job_command(load_template(TEMPLATE), "p5.48xlarge")
    outside_batch = {k: v for k, v in os.environ.items() if not k.startswith("AWS_BATCH_")}
    result = subprocess.run(
        [sys.executable, str(NCCL_TESTS / command[0]), *command[1:]],
        env=outside_batch,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    # The options are read first: what is left to complain about is the Batch environment only.
    assert result.returncode == 2
    assert result.stderr.startswith("batch_mnp: error: AWS_BATCH_JOB_NUM_NODES is not set"), result.stderr
