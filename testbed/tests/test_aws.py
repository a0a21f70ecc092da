"""testbed.aws: the emulator's lifecycle and CLI, stack helpers, and each emulator extension on its own."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from testbed.aws import AwsEmulator, EmulatorError, wait_for_stack
from testbed.moto_extensions import cidr

REPO_ROOT = Path(__file__).resolve().parents[2]


def template(tmp_path: Path, body: str) -> Path:
    """A small template file written for one test."""
    path = tmp_path / "template.yaml"
    path.write_text('AWSTemplateFormatVersion: "2010-09-09"\n' + body)
    return path


def test_cidr_matches_the_cloudformation_documentation():
    # The example of the Fn::Cidr reference page: !Cidr ["192.168.0.0/24", 6, 5]
    assert cidr("192.168.0.0/24", 6, 5) == [f"192.168.0.{i * 32}/27" for i in range(6)]
    assert cidr("10.0.0.0/16", "2", "13") == ["10.0.0.0/19", "10.0.32.0/19"]
    with pytest.raises(ValueError, match=r"17 host bits do not fit in 10\.0\.0\.0/16"):
        cidr("10.0.0.0/16", 1, 17)


def test_cli_up_status_down_prints_the_environment(tmp_path):
    state = tmp_path / "aws"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}

    def cli(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "testbed.aws", *args, "--state-dir", str(state)]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)

    up = cli("up")
    try:
        assert up.returncode == 0, up.stderr
        assert "export AWS_ENDPOINT_URL=https://127.0.0.1:" in up.stdout  # TLS, as AWS endpoints
        assert f"AWS_CA_BUNDLE={state / 'ca.crt'}" in up.stdout
        assert "AWS_ACCESS_KEY_ID=testing" in up.stdout and "AWS_DEFAULT_REGION=us-east-1" in up.stdout
        twice = cli("up")
        assert twice.returncode == 1 and "an emulator runs there; stop it first" in twice.stderr
        assert "AWS emulator running" in cli("status").stdout
        exports = up.stdout.splitlines()[-1].removeprefix("export ").split()
        aws_env = {**env, **dict(item.split("=", 1) for item in exports)}
        caller = subprocess.run(
            [str(Path(sys.executable).parent / "aws"), "sts", "get-caller-identity"],
            capture_output=True,
            text=True,
            env=aws_env,
            timeout=120,
            check=False,
        )
        assert caller.returncode == 0 and '"Account": "123456789012"' in caller.stdout, caller.stderr
        untrusted = subprocess.run(
            [str(Path(sys.executable).parent / "aws"), "sts", "get-caller-identity"],
            capture_output=True,
            text=True,
            env={k: v for k, v in aws_env.items() if k != "AWS_CA_BUNDLE"},  # the system's CAs only
            timeout=120,
            check=False,
        )
        assert untrusted.returncode != 0 and "SSL" in untrusted.stderr  # the certificate is really checked
        assert cli("down").returncode == 0 and not state.exists()
    finally:  # a failed assertion above must not leave the server running
        if (state / "emulator.json").exists():
            cli("down")
    gone = cli("status")
    assert gone.returncode == 2 and "no emulator state" in gone.stderr and "testbed.aws up" in gone.stderr


@pytest.mark.aws_emulator
def test_rejected_stack_names_the_missing_export(aws_emulator, tmp_path):
    body = "Resources:\n  Vpc:\n    Type: AWS::EC2::VPC\n    Properties:\n"
    body += "      CidrBlock: !ImportValue no-such-export\n"
    with pytest.raises((EmulatorError, ClientError), match=r"no-such-export"):
        aws_emulator.deploy(template(tmp_path, body), "broken-stack")


@pytest.mark.aws_emulator
def test_short_form_condition_and_novalue_in_lists(aws_emulator, tmp_path):
    body = """Parameters:
  Count: {Type: String, AllowedValues: ["1", "2"]}
Conditions:
  Two: !Equals [!Ref Count, "2"]
  AlsoTwo: !And [!Condition Two, !Equals ["a", "a"]]
Resources:
  Vpc: {Type: AWS::EC2::VPC, Properties: {CidrBlock: 10.9.0.0/16}}
  Second: {Type: AWS::EC2::Subnet, Condition: AlsoTwo, Properties: {VpcId: !Ref Vpc, CidrBlock: 10.9.1.0/24}}
  First:
    Type: AWS::EC2::Subnet
    Properties: {VpcId: !Ref Vpc, CidrBlock: !Select [0, !Cidr [10.9.0.0/16, 1, 8]]}
Outputs:
  Ids:
    Value: !Join [",", [!Ref First, !If [AlsoTwo, !Ref Second, !Ref AWS::NoValue]]]
  OnlyWithTwo:
    Condition: AlsoTwo
    Value: !Ref Second
    Export: {Name: !Sub "${AWS::StackName}-OnlyWithTwo"}
"""
    path = template(tmp_path, body)
    two = aws_emulator.deploy(path, "ext-two", {"Count": "2"})
    assert len(two["Ids"].split(",")) == 2 and two["OnlyWithTwo"].startswith("subnet-")
    one = aws_emulator.deploy(path, "ext-one", {"Count": "1"})
    assert one["Ids"].startswith("subnet-") and "," not in one["Ids"] and "None" not in one["Ids"]
    exports = [e["Name"] for e in aws_emulator.client("cloudformation").list_exports()["Exports"]]
    assert "ext-two-OnlyWithTwo" in exports and "ext-one-OnlyWithTwo" not in exports
    subnet = aws_emulator.client("ec2").describe_subnets(SubnetIds=[one["Ids"]])["Subnets"][0]
    assert subnet["CidrBlock"] == "10.9.0.0/24"  # Fn::Cidr resolved
    for stack in ("ext-two", "ext-one"):
        aws_emulator.delete(stack)


@pytest.mark.aws_emulator
def test_security_group_egress_and_vpc_deletion(aws_emulator, tmp_path):
    body = """Resources:
  Vpc: {Type: AWS::EC2::VPC, Properties: {CidrBlock: 10.8.0.0/16}}
  Table: {Type: AWS::EC2::RouteTable, Properties: {VpcId: !Ref Vpc}}
  Subnet: {Type: AWS::EC2::Subnet, Properties: {VpcId: !Ref Vpc, CidrBlock: 10.8.0.0/24}}
  Association:
    Type: AWS::EC2::SubnetRouteTableAssociation
    Properties: {SubnetId: !Ref Subnet, RouteTableId: !Ref Table}
  Group: {Type: AWS::EC2::SecurityGroup, Properties: {GroupDescription: g, VpcId: !Ref Vpc}}
  SelfEgress:
    Type: AWS::EC2::SecurityGroupEgress
    Properties: {GroupId: !Ref Group, IpProtocol: "-1", DestinationSecurityGroupId: !Ref Group}
Outputs:
  Group: {Value: !Ref Group}
  Vpc: {Value: !Ref Vpc}
  Table: {Value: !Ref Table}
  Subnet: {Value: !Ref Subnet}
"""
    outputs = aws_emulator.deploy(template(tmp_path, body), "ext-egress")
    ec2 = aws_emulator.client("ec2")
    by_subnet = ec2.describe_route_tables(
        Filters=[{"Name": "association.subnet-id", "Values": [outputs["Subnet"]]}]
    )
    assert [t["RouteTableId"] for t in by_subnet["RouteTables"]] == [outputs["Table"]]  # on its table
    group = ec2.describe_security_groups(GroupIds=[outputs["Group"]])["SecurityGroups"][0]
    pairs = [pair["GroupId"] for rule in group["IpPermissionsEgress"] for pair in rule["UserIdGroupPairs"]]
    assert pairs == [outputs["Group"]]
    aws_emulator.delete("ext-egress")  # associations and route tables are deleted, so the VPC is too
    assert ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [outputs["Vpc"]]}])["Vpcs"] == []


def test_attach_without_state_names_the_fix(tmp_path):
    with pytest.raises(
        EmulatorError, match=r"no emulator state in .*; start one with `python -m testbed.aws up`"
    ):
        AwsEmulator.attach(tmp_path)


class FailedStackClient:
    """A CloudFormation client whose stack rolled back (the emulator rarely fails a stack)."""

    def describe_stacks(self, StackName):
        return {"Stacks": [{"StackName": StackName, "StackStatus": "ROLLBACK_COMPLETE"}]}

    def describe_stack_events(self, StackName):
        return {
            "StackEvents": [
                {
                    "LogicalResourceId": StackName,
                    "ResourceType": "AWS::CloudFormation::Stack",
                    "ResourceStatus": "ROLLBACK_COMPLETE",
                },
                {
                    "LogicalResourceId": "Fsx",
                    "ResourceType": "AWS::FSx::FileSystem",
                    "ResourceStatus": "CREATE_FAILED",
                    "ResourceStatusReason": "quota",
                },
            ]
        }


def test_failed_stack_raises_with_its_events_oldest_first():
    with pytest.raises(EmulatorError) as failure:
        wait_for_stack(FailedStackClient(), "ml-fsx")
    lines = str(failure.value).splitlines()
    assert lines[0] == "stack ml-fsx is ROLLBACK_COMPLETE:"
    assert lines[1] == "  Fsx (AWS::FSx::FileSystem) CREATE_FAILED quota"


@pytest.mark.aws_emulator
def test_batch_service_linked_role_multinode_job_definition_and_mapping_tags(aws_emulator, tmp_path):
    body = """Parameters:
  Prefix: {Type: String, Default: ext-batch}
Resources:
  Vpc: {Type: AWS::EC2::VPC, Properties: {CidrBlock: 10.8.0.0/16}}
  Subnet: {Type: AWS::EC2::Subnet, Properties: {VpcId: !Ref Vpc, CidrBlock: 10.8.0.0/24}}
  Group:
    Type: AWS::EC2::SecurityGroup
    Properties: {GroupDescription: g, VpcId: !Ref Vpc}
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {Statement: [{Effect: Allow, Principal: {Service: ec2.amazonaws.com},
                                              Action: sts:AssumeRole}]}
  Profile: {Type: AWS::IAM::InstanceProfile, Properties: {Roles: [!Ref Role]}}
  Environment:
    Type: AWS::Batch::ComputeEnvironment
    Properties:
      Type: MANAGED
      ComputeResources:
        Type: EC2
        MinvCpus: 0
        MaxvCpus: 8
        InstanceTypes: [c5.large]
        InstanceRole: !GetAtt Profile.Arn
        Subnets: [!Ref Subnet]
        SecurityGroupIds: [!Ref Group]
  Definition:
    Type: AWS::Batch::JobDefinition
    Properties:
      Type: multinode
      NodeProperties:
        NumNodes: 2
        MainNode: 0
        NodeRangeProperties:
          - TargetNodes: "0:"
            Container:
              Image: !Join [":", [example/image, "1.0"]]
              ResourceRequirements: [{Type: VCPU, Value: "1"}, {Type: MEMORY, Value: "512"}]
Outputs:
  Environment: {Value: !Ref Environment}
  Definition: {Value: !Ref Definition}
  Imported: {Value: !ImportValue {"Fn::Sub": "${Prefix}-export"}}
"""
    exporter = tmp_path / "exporter.yaml"
    exporter.write_text(
        'AWSTemplateFormatVersion: "2010-09-09"\nResources:\n'
        "  Log: {Type: AWS::Logs::LogGroup}\n"
        "Outputs:\n  Out: {Value: exported, Export: {Name: ext-batch-export}}\n"
    )
    aws_emulator.deploy(exporter, "ext-exporter")
    outputs = aws_emulator.deploy(template(tmp_path, body), "ext-batch")
    batch = aws_emulator.client("batch")
    (environment,) = batch.describe_compute_environments(computeEnvironments=[outputs["Environment"]])[
        "computeEnvironments"
    ]
    assert "aws-service-role/batch.amazonaws.com/" in environment["serviceRole"]  # no ServiceRole given
    (definition,) = batch.describe_job_definitions(jobDefinitions=[outputs["Definition"]])["jobDefinitions"]
    assert definition["type"] == "multinode"
    assert outputs["Imported"] == "exported"  # a short-form tag on a mapping node
    aws_emulator.delete("ext-batch")
    aws_emulator.delete("ext-exporter")


@pytest.mark.aws_emulator
def test_fsx_file_systems_with_their_attributes(aws_emulator, tmp_path):
    body = """Resources:
  Vpc: {Type: AWS::EC2::VPC, Properties: {CidrBlock: 10.7.0.0/16}}
  Subnet: {Type: AWS::EC2::Subnet, Properties: {VpcId: !Ref Vpc, CidrBlock: 10.7.0.0/24}}
  Group: {Type: AWS::EC2::SecurityGroup, Properties: {GroupDescription: fsx, VpcId: !Ref Vpc}}
  Lustre:
    Type: AWS::FSx::FileSystem
    Properties:
      FileSystemType: LUSTRE
      StorageCapacity: 1200
      SubnetIds: [!Ref Subnet]
      SecurityGroupIds: [!Ref Group]
      LustreConfiguration: {DeploymentType: PERSISTENT_2, PerUnitStorageThroughput: 250}
  Home:
    Type: AWS::FSx::FileSystem
    DeletionPolicy: Retain
    Properties:
      FileSystemType: OPENZFS
      StorageCapacity: 64
      SubnetIds: [!Ref Subnet]
      OpenZFSConfiguration: {DeploymentType: SINGLE_AZ_2, ThroughputCapacity: 160}
Outputs:
  LustreId: {Value: !Ref Lustre}
  LustreDns: {Value: !GetAtt Lustre.DNSName}
  LustreMount: {Value: !GetAtt Lustre.LustreMountName}
  HomeId: {Value: !Ref Home}
  HomeRoot: {Value: !GetAtt Home.RootVolumeId}
  Group: {Value: !Ref Group}
"""
    outputs = aws_emulator.deploy(template(tmp_path, body), "ext-fsx", {})
    fsx = aws_emulator.client("fsx")
    found = {fs["FileSystemId"]: fs for fs in fsx.describe_file_systems()["FileSystems"]}
    lustre, home = found[outputs["LustreId"]], found[outputs["HomeId"]]
    assert lustre["DNSName"] == outputs["LustreDns"] == f"{outputs['LustreId']}.fsx.us-east-1.amazonaws.com"
    assert re.fullmatch(r"fs-[0-9a-f]{17}", outputs["LustreId"]), outputs["LustreId"]  # AWS's id shape
    assert lustre["LustreConfiguration"]["MountName"] == outputs["LustreMount"]
    assert len(outputs["LustreMount"]) == 8 and outputs["LustreMount"].isalpha()
    assert lustre["LustreConfiguration"]["DeploymentType"] == "PERSISTENT_2"
    assert home["FileSystemType"] == "OPENZFS" and outputs["HomeRoot"].startswith("fsvol-")
    assert home["OpenZFSConfiguration"]["RootVolumeId"] == outputs["HomeRoot"]
    ec2 = aws_emulator.client("ec2")
    (eni,) = ec2.describe_network_interfaces(NetworkInterfaceIds=lustre["NetworkInterfaceIds"])[
        "NetworkInterfaces"
    ]
    assert [g["GroupId"] for g in eni["Groups"]] == [outputs["Group"]] and eni["VpcId"] == lustre["VpcId"]
    aws_emulator.delete("ext-fsx")
    left = {fs["FileSystemId"] for fs in fsx.describe_file_systems()["FileSystems"]}
    assert outputs["LustreId"] not in left and outputs["HomeId"] in left  # DeletionPolicy: Retain kept it
    fsx.delete_file_system(FileSystemId=outputs["HomeId"])
    left_enis = ec2.describe_network_interfaces()["NetworkInterfaces"]
    assert not [e for e in left_enis if "FSx" in e.get("Description", "")]  # they go with the file system


@pytest.mark.aws_emulator
def test_role_managed_policies_attach_and_detach_on_delete(aws_emulator, tmp_path):
    body = """Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement: [{Effect: Allow, Principal: {Service: sagemaker.amazonaws.com}, Action: sts:AssumeRole}]
      ManagedPolicyArns:
        - !Sub "arn:${AWS::Partition}:iam::aws:policy/AmazonSageMakerClusterInstanceRolePolicy"
      Policies:
        - PolicyName: inline
          PolicyDocument: {Statement: [{Effect: Allow, Action: ec2:DescribeVpcs, Resource: "*"}]}
Outputs:
  Name: {Value: !Ref Role}
"""
    name = aws_emulator.deploy(template(tmp_path, body), "ext-role", {})["Name"]
    iam = aws_emulator.client("iam")
    attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AmazonSageMakerClusterInstanceRolePolicy"]
    policy = iam.get_policy_version(PolicyArn=attached[0]["PolicyArn"], VersionId="v1")["PolicyVersion"]
    assert "arn:aws:s3:::sagemaker-*" in json.dumps(policy["Document"])  # the real managed document
    inline = iam.get_role_policy(RoleName=name, PolicyName="inline")["PolicyDocument"]
    assert inline["Statement"][0]["Action"] == "ec2:DescribeVpcs"  # a JSON document, decoded by boto3
    aws_emulator.delete("ext-role")
    assert name not in [role["RoleName"] for role in iam.list_roles()["Roles"]]


@pytest.mark.aws_emulator
def test_tls_only_bucket_policy_lets_sdk_requests_through_and_deny_still_denies(aws_emulator, tmp_path):
    s3 = aws_emulator.client("s3")
    s3.create_bucket(Bucket="ext-tls-only")
    statement = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": ["arn:aws:s3:::ext-tls-only", "arn:aws:s3:::ext-tls-only/*"],
    }
    tls_only = {**statement, "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    s3.put_bucket_policy(Bucket="ext-tls-only", Policy=json.dumps({"Statement": [tls_only]}))
    s3.put_object(Bucket="ext-tls-only", Key="a", Body=b"1")  # an SDK request: over TLS on AWS
    assert s3.get_object(Bucket="ext-tls-only", Key="a")["Body"].read() == b"1"
    plaintext_only = {**statement, "Condition": {"Bool": {"aws:SecureTransport": "true"}}}
    s3.put_bucket_policy(Bucket="ext-tls-only", Policy=json.dumps({"Statement": [plaintext_only]}))
    with pytest.raises(ClientError, match=r"403|AccessDenied"):
        s3.put_object(Bucket="ext-tls-only", Key="b", Body=b"2")
    s3.delete_bucket_policy(Bucket="ext-tls-only")
    s3.delete_object(Bucket="ext-tls-only", Key="a")
    s3.delete_bucket(Bucket="ext-tls-only")
