"""ParallelCluster: prerequisites template (emulator + offline rendering), create_config.py against stacks
deployed on the emulator, and the README walkthrough (which validates with aws-parallelcluster's schema
through `nox -s pcluster`). Not emulated: AWS::FSx::FileSystem (moto has no FSx backend), so the
emulator deploys the prerequisites with both file systems off; their conditions and outputs are checked by
rendering."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from testbed.cfn import TemplateParameterError, load_template, render
from testbed.walkthrough import run_walkthrough

FOLDER = Path(__file__).resolve().parents[1]
ROOT = FOLDER.parents[1]
PREREQ = FOLDER / "cluster-prerequisites.yaml"
VPC_ONE_AZ = ROOT / "1.architectures" / "1.vpc_network" / "vpc-one-az.yaml"
NO_FSX = {"CreateFsxLustre": "false", "CreateFsxOpenZfs": "false"}


def load_create_config():
    spec = importlib.util.spec_from_file_location("pcluster_create_config", FOLDER / "create_config.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


create_config = load_create_config()


def run_create_config(emulator, *args: str, region: str | None = None) -> subprocess.CompletedProcess:
    env = emulator.environ()
    if region:
        env["AWS_DEFAULT_REGION"] = region
    return subprocess.run(
        [sys.executable, str(FOLDER / "create_config.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def stacks(aws_emulator):
    """A one-AZ VPC (with public subnets) and the prerequisites on it, FSx off (not emulated)."""
    vpc = aws_emulator.deploy(VPC_ONE_AZ, "pc-vpc", {"AvailabilityZone": "us-east-1b"})
    prereq = aws_emulator.deploy(PREREQ, "pc-prereq", {"VpcStackName": "pc-vpc", **NO_FSX})
    yield vpc, prereq
    aws_emulator.delete("pc-prereq")
    aws_emulator.delete("pc-vpc")


@pytest.mark.aws_emulator
def test_readme_walkthrough_renders_validates_and_cleans_up(aws_emulator, artifacts_root, monkeypatch):
    aws_emulator.export(monkeypatch.setenv)
    monkeypatch.setenv("FSX", "false")  # moto has no FSx backend
    result = run_walkthrough(FOLDER / "README.md", "emulator", artifacts_root / "wt-pcluster", timeout=600)
    assert result.returncode == 0, result.output[-4000:]
    assert result.output.count("valid (aws-parallelcluster 3.16.1 cluster schema)") == 2, result.output[
        -3000:
    ]
    config = yaml.safe_load(
        (result.workdir / "1.architectures/2.aws-parallelcluster/build/gpu-efa.yaml").read_text()
    )
    assert config["Region"] == "us-east-1" and config["Imds"] == {"ImdsSupport": "v2.0"}
    (fsx,) = config["SharedStorage"]  # no stack file systems: ParallelCluster creates /fsx, /home stays local
    assert fsx["MountDir"] == "/fsx" and fsx["FsxLustreSettings"]["DeploymentType"] == "PERSISTENT_2"
    stacks = aws_emulator.client("cloudformation").list_stacks()["StackSummaries"]
    assert all(s["StackStatus"] == "DELETE_COMPLETE" for s in stacks if s["StackName"].startswith("ml-pc-"))


@pytest.mark.aws_emulator
def test_prerequisites_import_the_vpc_exports(aws_emulator, stacks):
    vpc, prereq = stacks
    assert prereq["VpcStackName"] == "pc-vpc" and "FsxLustreFileSystemId" not in prereq
    ec2 = aws_emulator.client("ec2")
    group = ec2.describe_security_groups(GroupIds=[prereq["HomeNfsSecurityGroupId"]])["SecurityGroups"][0]
    assert group["VpcId"] == vpc["VpcId"]
    rules = sorted((p["IpProtocol"], p["FromPort"], p["ToPort"]) for p in group["IpPermissions"])
    assert rules == [
        (proto, a, b) for proto in ("tcp", "udp") for a, b in ((111, 111), (2049, 2049), (20001, 20003))
    ]
    self_pair = {"UserId": "123456789012", "GroupId": prereq["HomeNfsSecurityGroupId"]}
    assert all(p["UserIdGroupPairs"] == [self_pair] and not p["IpRanges"] for p in group["IpPermissions"])
    exports = {e["Name"] for e in aws_emulator.client("cloudformation").list_exports()["Exports"]}
    assert {"pc-prereq-VpcStackName", "pc-prereq-HomeNfsSecurityGroupId"} <= exports


@pytest.mark.aws_emulator
@pytest.mark.parametrize("cluster", ["gpu-efa", "cpu-small"])
def test_create_config_uses_the_stack_outputs(aws_emulator, stacks, run_dir, cluster):
    vpc, prereq = stacks
    out = run_dir / f"{cluster}.yaml"
    done = run_create_config(
        aws_emulator, "--stack", "pc-prereq", "--cluster", cluster, "--key-name", "k", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(out.read_text())
    assert config["Region"] == "us-east-1"
    head = config["HeadNode"]
    assert head["Networking"]["SubnetId"] == vpc["PrimaryPublicSubnetId"]
    assert head["Networking"]["AdditionalSecurityGroups"] == [
        vpc["FsxLustreSecurityGroupId"],
        prereq["HomeNfsSecurityGroupId"],
    ]
    queue = config["Scheduling"]["SlurmQueues"][0]
    assert queue["Networking"]["SubnetIds"] == [vpc["PrimaryPrivateSubnetId"]]
    groups = queue["Networking"]["AdditionalSecurityGroups"]
    assert (vpc["EfaSecurityGroupId"] in groups) == (cluster == "gpu-efa")
    assert head["Iam"]["AdditionalIamPolicies"][0]["Policy"].startswith("arn:aws:iam::aws:policy/")


@pytest.mark.aws_emulator
def test_create_config_errors_name_the_bad_input(aws_emulator, stacks, run_dir):
    base = ["--cluster", "gpu-efa", "--key-name", "k", "--out", str(run_dir / "x.yaml")]
    cases = [
        (["--stack", "no-such-stack", *base], None, "stack 'no-such-stack' not found in region us-east-1"),
        (["--stack", "pc-vpc", *base], None, "stack 'pc-vpc' has no output 'VpcStackName'"),
        (["--stack", "pc-prereq", "--region", "us-west-2", *base], None, "not found in region us-west-2"),
        (["--stack", "pc-prereq", *base], "mars-north-1", "region 'mars-north-1' is not an AWS region"),
    ]
    for args, region, message in cases:
        done = run_create_config(aws_emulator, *args, region=region)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert not (run_dir / "x.yaml").exists()


PREREQ_OUT = {"VpcStackName": "v", "HomeNfsSecurityGroupId": "sg-1"}
FSX_OUT = {**PREREQ_OUT, "FsxLustreFileSystemId": "fs-1", "FsxOpenZfsRootVolumeId": "fsvol-1"}
VPC_OUT = {
    "PrimaryAvailabilityZone": "eu-west-1a",
    "PrimaryPrivateSubnetId": "subnet-p",
    "EfaSecurityGroupId": "sg-e",
    "FsxLustreSecurityGroupId": "sg-f",
}


def offline(template="gpu-efa", prereq=FSX_OUT, **options):
    return create_config.render(
        template,
        prereq,
        VPC_OUT,
        region="eu-west-1",
        partition="aws",
        prereq_stack="s",
        key_name="k",
        **options,
    )


@pytest.mark.parametrize("capacity", ["odcr", "capacity-block"])
def test_reserved_capacity_makes_static_nodes_without_placement_group(capacity):
    config = offline(capacity=capacity, capacity_reservation_id="cr-0123456789abcdef0", count=4)
    queue = config["Scheduling"]["SlurmQueues"][0]
    resource = queue["ComputeResources"][0]
    assert queue["CapacityType"] == ("CAPACITY_BLOCK" if capacity == "capacity-block" else "ONDEMAND")
    assert resource["MinCount"] == resource["MaxCount"] == 4
    assert resource["CapacityReservationTarget"] == {"CapacityReservationId": "cr-0123456789abcdef0"}
    assert queue["Networking"]["PlacementGroup"] == {"Enabled": False}


def test_on_demand_gpu_queue_scales_from_zero_in_a_placement_group_with_efa():
    config = offline(count=3)
    queue = config["Scheduling"]["SlurmQueues"][0]
    resource = queue["ComputeResources"][0]
    assert (resource["MinCount"], resource["MaxCount"], resource["Efa"]) == (0, 3, {"Enabled": True})
    assert queue["Networking"]["PlacementGroup"] == {"Enabled": True} and queue["CapacityType"] == "ONDEMAND"
    assert resource["Name"] == "p5-48xlarge" and config["HeadNode"]["Networking"]["SubnetId"] == "subnet-p"
    storage = {s["MountDir"]: s for s in config["SharedStorage"]}
    assert storage["/fsx"]["FsxLustreSettings"] == {"FileSystemId": "fs-1"}
    assert storage["/home"]["FsxOpenZfsSettings"] == {"VolumeId": "fsvol-1"}


def test_efa_follows_instance_types_yaml():
    facts = yaml.safe_load((ROOT / "1.architectures" / "instance-types.yaml").read_text())["instance_types"]
    for name, fact in facts.items():
        resource = offline(instance_type=name)["Scheduling"]["SlurmQueues"][0]["ComputeResources"][0]
        assert ("Efa" in resource) == (fact["efa"]["devices"] > 0), name


def test_cpu_cluster_without_stack_file_systems_has_no_shared_storage():
    config = offline("cpu-small", prereq=PREREQ_OUT)
    assert "SharedStorage" not in config
    assert "Efa" not in config["Scheduling"]["SlurmQueues"][0]["ComputeResources"][0]


@pytest.mark.parametrize(
    ("template", "options", "message"),
    [
        ("gpu-efa", {"capacity": "odcr"}, "needs --capacity-reservation-id"),
        (
            "gpu-efa",
            {"capacity": "capacity-block", "capacity_reservation_id": "r-1"},
            "needs --capacity-reservation-id",
        ),
        (
            "cpu-small",
            {"capacity": "odcr", "capacity_reservation_id": "cr-0123456789abcdef0"},
            "only the gpu-efa",
        ),
        ("gpu-efa", {"instance_type": "x9.huge"}, "x9.huge is not in instance-types.yaml"),
        ("gpu-efa", {"count": 0}, "--count 0"),
        ("nope", {}, "--cluster nope: no such template"),
    ],
)
def test_bad_options_are_one_line_errors(template, options, message):
    with pytest.raises(create_config.ConfigError, match=message) as caught:
        offline(template, **options)
    assert "\n" not in str(caught.value)


def test_wrong_region_for_the_vpc_is_rejected():
    with pytest.raises(
        create_config.ConfigError, match=r"in AZ eu-west-1a, not in region us-east-2: pass --region eu-west-1"
    ):
        create_config.render(
            "gpu-efa",
            PREREQ_OUT,
            VPC_OUT,
            region="us-east-2",
            partition="aws",
            prereq_stack="s",
            key_name="k",
        )


@pytest.mark.parametrize(
    ("lustre", "openzfs"), [("true", "true"), ("true", "false"), ("false", "true"), ("false", "false")]
)
def test_fsx_conditions_select_file_systems_and_outputs(lustre, openzfs):
    rendered = render(
        load_template(PREREQ),
        {"VpcStackName": "ml-vpc", "CreateFsxLustre": lustre, "CreateFsxOpenZfs": openzfs},
    )
    assert ("FsxLustre" in rendered.resources) == (lustre == "true")
    assert ("FsxOpenZfs" in rendered.resources) == (openzfs == "true")
    lustre_outputs = {"FsxLustreFileSystemId", "FsxLustreMountName", "FsxLustreDnsName"}
    assert (lustre_outputs <= set(rendered.outputs)) == (lustre == "true")
    assert ("FsxOpenZfsRootVolumeId" in rendered.outputs) == (openzfs == "true")
    assert {"VpcStackName", "HomeNfsSecurityGroupId"} <= set(
        rendered.outputs
    )  # always: create_config needs them


def test_lustre_is_persistent_2_and_outputs_are_exported_by_name():
    template = load_template(PREREQ)
    lustre = template["Resources"]["FsxLustre"]["Properties"]["LustreConfiguration"]
    assert lustre["DeploymentType"] == "PERSISTENT_2"
    for name, output in template["Outputs"].items():
        assert output["Export"]["Name"] == {"Fn::Sub": f"${{AWS::StackName}}-{name}"}
    vpc_outputs = set(load_template(VPC_ONE_AZ)["Outputs"])
    imported = {
        line.split("${VpcStackName}-")[1].strip()
        for line in PREQ_TEXT.splitlines()
        if "${VpcStackName}-" in line
    }
    assert imported and imported <= vpc_outputs  # every import is a VPC stack export name
    assert set(create_config.VPC_OUTPUTS) <= vpc_outputs and set(create_config.PREREQ_OUTPUTS) <= set(
        template["Outputs"]
    )


PREQ_TEXT = PREREQ.read_text()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"FsxLustreThroughputPerTiB": "300"}, "FsxLustreThroughputPerTiB='300' is not one of"),
        ({"FsxLustreStorageCapacityGiB": "100"}, "FsxLustreStorageCapacityGiB=100 is outside"),
        ({"CreateFsxOpenZfs": "yes"}, "CreateFsxOpenZfs='yes' is not one of"),
        ({"VpcStackName": "1bad name"}, "VpcStackName='1bad name' does not match"),
    ],
)
def test_bad_parameters_are_rejected(overrides, message):
    with pytest.raises(TemplateParameterError, match=message):
        render(load_template(PREREQ), {"VpcStackName": "ml-vpc", **overrides})


def test_no_hard_coded_region_account_or_az():
    files = [PREREQ, FOLDER / "create_config.py", *sorted((FOLDER / "clusters").glob("*.yaml"))]
    for path in files:
        text = path.read_text()
        assert "us-east-1" not in text and "123456789012" not in text, path
        assert "arn:aws:" not in text, path  # the partition comes from the region


def test_pcluster_session_is_part_of_make_test():
    assert '"pcluster"' in (ROOT / "noxfile.py").read_text()
    test_line = next(
        line for line in (ROOT / "Makefile").read_text().splitlines() if "$(NOX) -s lint security" in line
    )
    assert "pcluster" in test_line.split()
    assert os.path.isfile(FOLDER / "validate_config.py")
