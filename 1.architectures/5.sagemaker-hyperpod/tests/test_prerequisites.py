"""HyperPod prerequisites on the AWS emulator, create_config.py against the deployed stacks,
validate_config.py passing and failing against emulated resources, and the template's conditions and
parameter constraints by offline rendering (the README's walkthrough is test_journey.py)."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from testbed.cfn import TemplateParameterError, load_template, render

FOLDER = Path(__file__).resolve().parents[1]
ROOT = FOLDER.parents[1]
PREREQ = FOLDER / "cluster-prerequisites.yaml"
VPC_ONE_AZ = ROOT / "1.architectures" / "1.vpc_network" / "vpc-one-az.yaml"
BASE_CONFIG = FOLDER / "LifecycleScripts" / "base-config"
ZONE, BACKUP_ZONE = "us-east-1a", "us-east-1c"


def run_tool(emulator, script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(FOLDER / script), *args],
        env=emulator.environ(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def stacks(aws_emulator):
    """A one-AZ VPC and the prerequisites with every option on (backup subnet, Lustre, OpenZFS)."""
    vpc = aws_emulator.deploy(VPC_ONE_AZ, "hp-vpc", {"AvailabilityZone": ZONE})
    prereq = aws_emulator.deploy(
        PREREQ,
        "hp-prereq",
        {"VpcStackName": "hp-vpc", "BackupAvailabilityZone": BACKUP_ZONE, "CreateFsxOpenZfs": "true"},
    )
    yield vpc, prereq
    s3 = aws_emulator.client("s3")
    for item in s3.list_objects_v2(Bucket=prereq["LifecycleBucketName"]).get("Contents", []):
        s3.delete_object(Bucket=prereq["LifecycleBucketName"], Key=item["Key"])
    aws_emulator.delete("hp-prereq")
    fsx = aws_emulator.client("fsx")
    for key in ("FsxLustreFileSystemId", "FsxOpenZfsFileSystemId"):  # retained by the stack, as on AWS
        fsx.delete_file_system(FileSystemId=prereq[key])
    aws_emulator.delete("hp-vpc")


@pytest.fixture(scope="module")
def rendered(aws_emulator, stacks, tmp_path_factory):
    """create_config.py's two files for the stacks, and the lifecycle scripts uploaded next to them."""
    _, prereq = stacks
    out = tmp_path_factory.mktemp("hp-config")
    done = run_tool(
        aws_emulator,
        "create_config.py",
        *("--stack", "hp-prereq", "--cluster-name", "hp-test", "--controller", "ml.m5.12xlarge"),
        *("--login", "ml.m5.4xlarge", "--worker", "ml.p5.48xlarge:2:gpu", "--worker", "ml.c5.4xlarge:1"),
        *("--out-dir", str(out)),
    )
    assert done.returncode == 0, done.stderr
    s3 = aws_emulator.client("s3")
    bucket = prereq["LifecycleBucketName"]
    for path in BASE_CONFIG.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.name != "provisioning_parameters.json":
            s3.put_object(
                Bucket=bucket, Key=f"base-config/{path.relative_to(BASE_CONFIG)}", Body=path.read_bytes()
            )
    params = (out / "provisioning_parameters.json").read_bytes()
    s3.put_object(Bucket=bucket, Key="base-config/provisioning_parameters.json", Body=params)
    return json.loads((out / "cluster-config.json").read_text()), json.loads(params)


# --- the prerequisites on the emulator --------------------------------------------------------------


@pytest.mark.aws_emulator
def test_backup_subnet_is_private_in_the_second_zone(aws_emulator, stacks):
    vpc, prereq = stacks
    ec2 = aws_emulator.client("ec2")
    subnet = ec2.describe_subnets(SubnetIds=[prereq["BackupPrivateSubnetId"]])["Subnets"][0]
    assert subnet["VpcId"] == vpc["VpcId"] and subnet["AvailabilityZone"] == BACKUP_ZONE
    assert subnet["CidrBlock"] == "10.0.192.0/19" and not subnet["MapPublicIpOnLaunch"]
    tables = ec2.describe_route_tables(
        Filters=[{"Name": "association.subnet-id", "Values": [prereq["BackupPrivateSubnetId"]]}]
    )["RouteTables"]
    assert [t["RouteTableId"] for t in tables] == [vpc["PrivateRouteTableId"]]  # NAT and S3 endpoint


@pytest.mark.aws_emulator
def test_file_systems_sit_in_the_private_subnet_with_their_groups(aws_emulator, stacks):
    vpc, prereq = stacks
    fsx = aws_emulator.client("fsx")
    found = {fs["FileSystemId"]: fs for fs in fsx.describe_file_systems()["FileSystems"]}
    lustre, home = found[prereq["FsxLustreFileSystemId"]], found[prereq["FsxOpenZfsFileSystemId"]]
    assert lustre["DNSName"] == prereq["FsxLustreDnsName"] and home["DNSName"] == prereq["FsxOpenZfsDnsName"]
    assert lustre["LustreConfiguration"]["MountName"] == prereq["FsxLustreMountName"]
    assert lustre["LustreConfiguration"]["DeploymentType"] == "PERSISTENT_2"
    assert lustre["SubnetIds"] == home["SubnetIds"] == [vpc["PrimaryPrivateSubnetId"]]
    ec2 = aws_emulator.client("ec2")

    def groups(fs):
        enis = ec2.describe_network_interfaces(NetworkInterfaceIds=fs["NetworkInterfaceIds"])
        return [g["GroupId"] for eni in enis["NetworkInterfaces"] for g in eni["Groups"]]

    assert groups(lustre) == [vpc["FsxLustreSecurityGroupId"]]
    assert groups(home) == [vpc["EfaSecurityGroupId"]]


@pytest.mark.aws_emulator
def test_execution_role_trust_and_policies(aws_emulator, stacks):
    _, prereq = stacks
    iam = aws_emulator.client("iam")
    name = prereq["ExecutionRoleArn"].rsplit("/", 1)[-1]
    trust = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "sagemaker.amazonaws.com"}]
    attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AmazonSageMakerClusterInstanceRolePolicy"]
    inline = iam.get_role_policy(RoleName=name, PolicyName="hyperpod-vpc-network-interfaces")[
        "PolicyDocument"
    ]
    for statement in inline["Statement"]:
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        if statement["Sid"] == "DescribeTheVpc":
            assert all(a.startswith("ec2:Describe") for a in statement["Action"])  # no resource-level form
        else:  # scoped to this account and region
            assert all(r.startswith("arn:aws:ec2:us-east-1:123456789012:") for r in resources), resources


@pytest.mark.aws_emulator
def test_lifecycle_bucket_is_private_encrypted_and_tls_only(aws_emulator, stacks):
    _, prereq = stacks
    bucket = prereq["LifecycleBucketName"]
    assert bucket.startswith("sagemaker-lifecycle-123456789012-") and len(bucket) <= 63
    s3 = aws_emulator.client("s3")
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    exports = {e["Name"] for e in aws_emulator.client("cloudformation").list_exports()["Exports"]}
    assert {f"hp-prereq-{key}" for key in prereq} <= exports


# --- create_config.py ---------------------------------------------------------------------------------


@pytest.mark.aws_emulator
def test_create_config_takes_every_id_from_the_stacks(stacks, rendered):
    vpc, prereq = stacks
    config, params = rendered
    assert config["VpcConfig"] == {
        "SecurityGroupIds": [vpc["EfaSecurityGroupId"], vpc["FsxLustreSecurityGroupId"]],
        "Subnets": [vpc["PrimaryPrivateSubnetId"]],
    }
    groups = {g["InstanceGroupName"]: g for g in config["InstanceGroups"]}
    assert list(groups) == ["controller-machine", "login-group", "worker-group-1", "worker-group-2"]
    assert [g["InstanceCount"] for g in groups.values()] == [1, 1, 2, 1]
    for group in groups.values():
        assert group["ExecutionRole"] == prereq["ExecutionRoleArn"]
        assert group["LifeCycleConfig"] == {
            "SourceS3Uri": f"s3://{prereq['LifecycleBucketName']}/base-config/",
            "OnCreate": "on_create.sh",
        }
        assert group["ThreadsPerCore"] == 1
        assert group["InstanceStorageConfigs"] == [{"EbsVolumeConfig": {"VolumeSizeInGB": 500}}]
    assert params == {
        "version": "1.0.0",
        "workload_manager": "slurm",
        "controller_group": "controller-machine",
        "login_group": "login-group",
        "worker_groups": [
            {"instance_group_name": "worker-group-1", "partition_name": "gpu"},
            {"instance_group_name": "worker-group-2", "partition_name": "worker-group-2"},
        ],
        "fsx_dns_name": prereq["FsxLustreDnsName"],
        "fsx_mountname": prereq["FsxLustreMountName"],
        "fsx_openzfs_dns_name": prereq["FsxOpenZfsDnsName"],
    }


@pytest.mark.aws_emulator
def test_create_config_from_the_groups_file_in_the_backup_subnet(aws_emulator, stacks, tmp_path):
    _, prereq = stacks
    done = run_tool(
        aws_emulator,
        "create_config.py",
        *("--stack", "hp-prereq", "--groups", str(FOLDER / "groups-example.yaml"), "--subnet", "backup"),
        *("--out-dir", str(tmp_path)),
    )
    assert done.returncode == 0, done.stderr
    config = json.loads((tmp_path / "cluster-config.json").read_text())
    assert config["ClusterName"] == "ml-hp" and config["VpcConfig"]["Subnets"] == [
        prereq["BackupPrivateSubnetId"]
    ]
    cpu = next(g for g in config["InstanceGroups"] if g["InstanceGroupName"] == "cpu-workers")
    assert cpu["ThreadsPerCore"] == 2 and cpu["InstanceType"] == "ml.c5.4xlarge"
    params = json.loads((tmp_path / "provisioning_parameters.json").read_text())
    assert [w["partition_name"] for w in params["worker_groups"]] == ["gpu", "cpu"]


@pytest.mark.aws_emulator
def test_create_config_from_the_trainium_groups_file(aws_emulator, stacks, tmp_path):
    """The Trainium variant: every type is on HyperPod's instance type list (botocore's SageMaker
    ClusterInstanceType) and has its Slurm CPUs (instance_cores.py, from instance-types.yaml)."""
    done = run_tool(
        aws_emulator,
        "create_config.py",
        *("--stack", "hp-prereq", "--groups", str(FOLDER / "groups-trainium.yaml")),
        *("--out-dir", str(tmp_path)),
    )
    assert done.returncode == 0, done.stderr
    config = json.loads((tmp_path / "cluster-config.json").read_text())
    sagemaker = boto3.session.Session()._session.get_service_model("sagemaker")
    listed = set(sagemaker.shape_for("ClusterInstanceType").enum)
    sys.path.insert(0, str(BASE_CONFIG))
    from hyperpod_lifecycle.instance_cores import PHYSICAL_CORES  # noqa: PLC0415 - the lifecycle package

    groups = {g["InstanceGroupName"]: g for g in config["InstanceGroups"]}
    assert {g["InstanceType"] for g in groups.values()} <= listed
    workers = [g for g in groups.values() if g["InstanceType"].startswith("ml.trn")]
    assert [(g["InstanceType"], g["InstanceCount"]) for g in workers] == [("ml.trn1.32xlarge", 4)]
    assert PHYSICAL_CORES["ml.trn1.32xlarge"] == 64 and PHYSICAL_CORES["ml.trn2.48xlarge"] == 96
    params = json.loads((tmp_path / "provisioning_parameters.json").read_text())
    assert [w["partition_name"] for w in params["worker_groups"]] == ["trn"]


BAD_CREATE = [
    (["--stack", "nope"], "stack 'nope' not found in region us-east-1"),
    (["--stack", "hp-vpc"], "stack 'hp-vpc' has no output 'VpcStackName'"),
    (["--stack", "hp-prereq", "--region", "eu-west-1"], "stack 'hp-prereq' not found in region eu-west-1"),
    (["--stack", "hp-prereq", "--region", "mars-1"], "region 'mars-1' is not a SageMaker region"),
    (
        ["--stack", "hp-prereq", "--worker", "ml.p5.48xlarge"],
        "--worker 'ml.p5.48xlarge': expected TYPE:COUNT",
    ),
    (["--stack", "hp-prereq", "--worker", "p5.48xlarge:2"], "instance type 'p5.48xlarge' is not a SageMaker"),
    (
        ["--stack", "hp-prereq", "--worker", "ml.trn9.48xlarge:2"],
        "ml.trn9.48xlarge is not a HyperPod instance type",
    ),
    (["--stack", "hp-prereq", "--worker", "ml.p5.48xlarge:0"], "count '0' must be a whole number >= 1"),
    (
        ["--stack", "hp-prereq", "--worker", "ml.p5.48xlarge:1:gpu", "--worker", "ml.g5.8xlarge:1:gpu"],
        "partition 'gpu' is used twice",
    ),
]


@pytest.mark.aws_emulator
@pytest.mark.parametrize(("args", "message"), BAD_CREATE, ids=[m for _, m in BAD_CREATE])
def test_create_config_bad_input_is_one_line_and_writes_nothing(
    aws_emulator, stacks, tmp_path, args, message
):
    base = {"--cluster-name": "c", "--controller": "ml.m5.12xlarge", "--worker": "ml.p5.48xlarge:1"}
    given = set(args)
    defaults = [item for key, value in base.items() if key not in given for item in (key, value)]
    done = run_tool(aws_emulator, "create_config.py", *args, *defaults, "--out-dir", str(tmp_path / "out"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.aws_emulator
def test_create_config_without_lustre_names_the_fix_or_takes_an_existing_one(aws_emulator, stacks, tmp_path):
    _, prereq = stacks
    aws_emulator.deploy(PREREQ, "hp-nofsx", {"VpcStackName": "hp-vpc", "CreateFsxLustre": "false"})
    try:
        args = ["--stack", "hp-nofsx", "--cluster-name", "c", "--controller", "ml.m5.large"]
        args += ["--worker", "ml.c5.large:1", "--out-dir", str(tmp_path)]
        done = run_tool(aws_emulator, "create_config.py", *args)
        assert done.returncode == 2 and "--fsx-file-system-id" in done.stderr
        done = run_tool(aws_emulator, "create_config.py", *args, "--subnet", "backup")
        assert done.returncode == 2 and "has no backup subnet" in done.stderr
        done = run_tool(
            aws_emulator, "create_config.py", *args, "--fsx-file-system-id", "fs-0123456789abcdef0"
        )
        assert done.returncode == 2 and "no FSx for Lustre file system with this id" in done.stderr
        assert not (tmp_path / "cluster-config.json").exists()
        existing = prereq["FsxLustreFileSystemId"]  # another stack's file system, looked up by id
        done = run_tool(aws_emulator, "create_config.py", *args, "--fsx-file-system-id", existing)
        assert done.returncode == 0, done.stderr
        params = json.loads((tmp_path / "provisioning_parameters.json").read_text())
        assert (params["fsx_dns_name"], params["fsx_mountname"]) == (
            prereq["FsxLustreDnsName"],
            prereq["FsxLustreMountName"],
        )
    finally:
        aws_emulator.delete("hp-nofsx")


# --- validate_config.py -------------------------------------------------------------------------------


def validate(aws_emulator, folder: Path, config: dict, params: dict) -> subprocess.CompletedProcess:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cluster-config.json").write_text(json.dumps(config))
    (folder / "provisioning_parameters.json").write_text(json.dumps(params))
    return run_tool(
        aws_emulator, "validate_config.py", "--cluster-config", str(folder / "cluster-config.json")
    )


@pytest.mark.aws_emulator
def test_validate_passes_on_the_rendered_and_uploaded_config(aws_emulator, rendered, tmp_path):
    done = validate(aws_emulator, tmp_path, *rendered)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert all(line.startswith(("✓", "#")) for line in lines), done.stdout
    assert lines[-1] == "# 23 checks: 23 passed, 0 failed -> OK", done.stdout
    assert "✓ fsx_openzfs_dns_name security group: the cluster and fs-" in done.stdout


def _public_subnet(config, params, stacks, aws_emulator):
    config["VpcConfig"]["Subnets"] = [stacks[0]["PrimaryPublicSubnetId"]]


def _no_self_egress(config, params, stacks, aws_emulator):
    ec2 = aws_emulator.client("ec2")
    group = ec2.create_security_group(GroupName="hp-ingress-only", Description="x", VpcId=stacks[0]["VpcId"])
    gid = group["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=gid, IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": gid}]}]
    )
    config["VpcConfig"]["SecurityGroupIds"] = [gid, stacks[0]["FsxLustreSecurityGroupId"]]


def _unknown_subnet(config, params, stacks, aws_emulator):
    config["VpcConfig"]["Subnets"] = ["subnet-0123456789abcdef0"]


def _wrong_mount_name(config, params, stacks, aws_emulator):
    params["fsx_mountname"] = "zzzzzzzz"


def _dns_of_no_file_system(config, params, stacks, aws_emulator):
    params["fsx_dns_name"] = "fs-0123456789abcdef0.fsx.us-east-1.amazonaws.com"


def _ec2_type_name(config, params, stacks, aws_emulator):
    config["InstanceGroups"][2]["InstanceType"] = "p5.48xlarge"


def _type_not_offered_in_the_zone(config, params, stacks, aws_emulator):
    config["InstanceGroups"][2]["InstanceType"] = "ml.p4de.24xlarge"  # us-east-1b and -1c only


def _group_name_mismatch(config, params, stacks, aws_emulator):
    params["worker_groups"][0]["instance_group_name"] = "workers"


def _bucket_the_role_cannot_read(config, params, stacks, aws_emulator):
    s3 = aws_emulator.client("s3")
    s3.create_bucket(Bucket="hp-lifecycle-elsewhere")
    for name in ("on_create.sh", "provisioning_parameters.json"):
        body = json.dumps(params) if name.endswith(".json") else b"#!/bin/bash\n"
        s3.put_object(Bucket="hp-lifecycle-elsewhere", Key=f"scripts/{name}", Body=body)
    for group in config["InstanceGroups"]:
        group["LifeCycleConfig"]["SourceS3Uri"] = "s3://hp-lifecycle-elsewhere/scripts/"


SAGEMAKER_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
CLUSTER_INSTANCE_POLICY = "arn:aws:iam::aws:policy/AmazonSageMakerClusterInstanceRolePolicy"


def use_role(aws_emulator, config, name: str, statements: list[dict], managed: tuple[str, ...] = ()) -> None:
    """Make every group's execution role a new role with these inline statements (removed first if left
    from an earlier run) and managed policies."""
    iam = aws_emulator.client("iam")
    if name in [role["RoleName"] for role in iam.list_roles()["Roles"]]:
        for arn in managed:
            iam.detach_role_policy(RoleName=name, PolicyArn=arn)
        iam.delete_role_policy(RoleName=name, PolicyName="inline")
        iam.delete_role(RoleName=name)
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(SAGEMAKER_TRUST))["Role"]["Arn"]
    document = {"Version": "2012-10-17", "Statement": statements}
    iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=json.dumps(document))
    for policy in managed:
        iam.attach_role_policy(RoleName=name, PolicyArn=policy)
    for group in config["InstanceGroups"]:
        group["ExecutionRole"] = arn


def _deny_outside_approved_buckets(config, params, stacks, aws_emulator):
    # An explicit Deny by NotResource: the managed policy allows the sagemaker-* bucket, this denies it.
    deny = {"Effect": "Deny", "Action": "s3:*", "NotResource": ["arn:aws:s3:::approved-*"]}
    use_role(aws_emulator, config, "hp-deny-unapproved", [deny], (CLUSTER_INSTANCE_POLICY,))


def _scripts_not_uploaded(config, params, stacks, aws_emulator):
    for group in config["InstanceGroups"]:
        group["LifeCycleConfig"]["SourceS3Uri"] = f"s3://{stacks[1]['LifecycleBucketName']}/elsewhere"


BROKEN = [  # what breaks, the first ✗ line, what it says, how many checks fail
    (_public_subnet, "✗ subnet subnet-", "is public (routes 0.0.0.0/0 to igw-", 1),
    # nothing is judged against an unknown subnet: its zone (4 instance types) and VPC (2 groups) are unknown
    (_unknown_subnet, "✗ subnet subnet-0123456789abcdef0", "not found in this region", 7),
    # the OpenZFS file system sits in the EFA group, so the cluster without it cannot reach /home either
    (_no_self_egress, "✗ EFA security group", "ingress) AND to itself (egress)", 2),
    # a changed provisioning_parameters.json also differs from the uploaded copy: two failures
    (_wrong_mount_name, "✗ fsx_mountname", "'zzzzzzzz' is not the mount name of fs-", 2),
    (_dns_of_no_file_system, "✗ fsx_dns_name", "is no file system in this region", 2),
    (_ec2_type_name, "✗ instance type worker-group-1", "'p5.48xlarge' is not a SageMaker type", 1),
    (
        _type_not_offered_in_the_zone,
        "✗ instance type worker-group-1",
        "p4de.24xlarge is not offered in us-east-1a",
        1,
    ),
    (_group_name_mismatch, "✗ group workers", "'workers' is not an instance group", 2),
    (
        _bucket_the_role_cannot_read,
        "✗ lifecycle bucket",
        "do not allow s3:GetObject on arn:aws:s3:::hp-lifecycle-elsewhere/scripts/on_create.sh "
        "(implicitDeny), s3:ListBucket on arn:aws:s3:::hp-lifecycle-elsewhere (implicitDeny): name the",
        1,
    ),
    (
        _deny_outside_approved_buckets,
        "✗ lifecycle bucket",
        "on_create.sh (explicitDeny), s3:ListBucket on arn:aws:s3:::sagemaker-",
        1,
    ),
    (_scripts_not_uploaded, "✗ OnCreate script", "elsewhere/on_create.sh: NoSuchKey", 2),
]


@pytest.mark.aws_emulator
@pytest.mark.parametrize(
    ("breaks", "check", "detail", "failures"), BROKEN, ids=[b[0].__name__.strip("_") for b in BROKEN]
)
def test_validate_fails_on_a_broken_config(
    aws_emulator, stacks, rendered, tmp_path, breaks, check, detail, failures
):
    config, params = copy.deepcopy(rendered)
    breaks(config, params, stacks, aws_emulator)
    done = validate(aws_emulator, tmp_path, config, params)
    assert done.returncode == 1, done.stdout + done.stderr
    failed = [line for line in done.stdout.splitlines() if line.startswith("✗")]
    assert len(failed) == failures and failed[0].startswith(check) and detail in failed[0], done.stdout
    assert done.stdout.splitlines()[-1].endswith(f" {failures} failed -> FAILED")


@pytest.mark.aws_emulator
def test_validate_honours_not_action_in_the_role(aws_emulator, stacks, rendered, tmp_path):
    # Everything but IAM, on any resource: reads a bucket that the managed policy's pattern does not cover.
    config, params = copy.deepcopy(rendered)
    _bucket_the_role_cannot_read(config, params, stacks, aws_emulator)
    use_role(
        aws_emulator, config, "hp-not-action", [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]
    )
    done = validate(aws_emulator, tmp_path, config, params)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "✓ lifecycle bucket: the execution role may list s3://hp-lifecycle-elsewhere and read" in done.stdout
    )


def load_validator(monkeypatch):
    """validate_config.py as a module of this process (registered for its dataclasses while the test runs)."""
    spec = importlib.util.spec_from_file_location("hyperpod_validate_config", FOLDER / "validate_config.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.aws_emulator
def test_validate_without_simulate_permission_is_one_error_line(
    aws_emulator, rendered, tmp_path, monkeypatch, capsys
):
    """The caller may not call iam:SimulatePrincipalPolicy: IAM answers AccessDenied (injected here as AWS
    sends it; the emulator does not check the caller's permissions)."""
    denied = {
        "Error": {
            "Code": "AccessDenied",
            "Message": "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: "
            "iam:SimulatePrincipalPolicy",
        },
        "ResponseMetadata": {"HTTPStatusCode": 403},
    }
    session_class = boto3.session.Session

    def session(**kwargs):
        created = session_class(**kwargs)
        created.events.register(
            "before-call.iam.SimulatePrincipalPolicy",
            lambda **_: (AWSResponse("https://iam.amazonaws.com/", 403, {}, None), denied),
        )
        return created

    validator = load_validator(monkeypatch)
    aws_emulator.export(monkeypatch.setenv)
    monkeypatch.setattr(validator.boto3.session, "Session", session)
    (tmp_path / "cluster-config.json").write_text(json.dumps(rendered[0]))
    (tmp_path / "provisioning_parameters.json").write_text(json.dumps(rendered[1]))
    code = validator.main(["--cluster-config", str(tmp_path / "cluster-config.json")])
    out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("error: iam:SimulatePrincipalPolicy on arn:aws:iam::123456789012:role/") and (
        "grant it to the caller" in err
    ), err
    assert "✓ execution role" in out and "lifecycle bucket" not in out


@pytest.mark.aws_emulator
def test_validate_unreadable_input_is_one_line_exit_2(aws_emulator, tmp_path):
    done = run_tool(aws_emulator, "validate_config.py", "--cluster-config", str(tmp_path / "none.json"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "create_config.py" in done.stderr
    (tmp_path / "cluster-config.json").write_text('{"ClusterName": "x"}')
    done = run_tool(
        aws_emulator, "validate_config.py", "--cluster-config", str(tmp_path / "cluster-config.json")
    )
    assert done.returncode == 2 and "has no InstanceGroups list" in done.stderr


# --- offline rendering ---------------------------------------------------------------------------------


@pytest.mark.parametrize("backup", ["", "us-west-2b"])
@pytest.mark.parametrize(("lustre", "openzfs"), [("true", "false"), ("false", "true")])
def test_conditions_select_resources_and_outputs(backup, lustre, openzfs):
    rendered = render(
        load_template(PREREQ),
        {
            "VpcStackName": "v",
            "BackupAvailabilityZone": backup,
            "CreateFsxLustre": lustre,
            "CreateFsxOpenZfs": openzfs,
        },
    )
    assert ("BackupPrivateSubnet" in rendered.resources) == bool(backup)
    assert ("BackupPrivateSubnetId" in rendered.outputs) == bool(backup)
    assert ("FsxLustre" in rendered.resources) == (lustre == "true")
    assert ({"FsxLustreDnsName", "FsxLustreMountName"} <= set(rendered.outputs)) == (lustre == "true")
    assert ("FsxOpenZfsDnsName" in rendered.outputs) == (openzfs == "true")
    assert {"VpcStackName", "LifecycleBucketName", "ExecutionRoleArn"} <= set(rendered.outputs)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"BackupAvailabilityZone": "us-west-2"}, "BackupAvailabilityZone"),
        ({"BackupSubnetCidr": "10.0.0.0/8"}, "BackupSubnetCidr"),
        ({"FsxLustreThroughputPerTiB": "300"}, "FsxLustreThroughputPerTiB"),
        ({"FsxLustreStorageCapacityGiB": "600"}, "FsxLustreStorageCapacityGiB"),
        ({"CreateFsxOpenZfs": "yes"}, "CreateFsxOpenZfs"),
        ({"VpcStackName": "1-starts-with-a-digit"}, "VpcStackName"),
    ],
)
def test_bad_parameter_values_are_rejected(overrides, message):
    with pytest.raises(TemplateParameterError, match=message):
        render(load_template(PREREQ), {"VpcStackName": "v", **overrides})
