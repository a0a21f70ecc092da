"""Check a HyperPod cluster-config.json and provisioning_parameters.json against the account.

    python validate_config.py --cluster-config build/cluster-config.json \\
        --provisioning-parameters build/provisioning_parameters.json

Prints one line per check, ``✓`` or ``✗`` with what was found and, on failure, the fix; then a summary.
Exit status: 0 when every check passes, 1 when any fails, 2 when the inputs cannot be read or a check
cannot run. Needs read access to EC2, FSx, S3 and IAM, including ``iam:SimulatePrincipalPolicy`` (boto3,
your AWS configuration or ``--region``). The checks:

- every group that provisioning_parameters.json names is an instance group of the cluster, and the
  controller group has one instance;
- every instance type is an ``ml.`` type whose EC2 type is offered in the subnet's Availability Zone;
- every subnet exists, is private (no route to an internet gateway, no public IPs on launch), and the
  security groups are in its VPC;
- one of the security groups allows all traffic from and to itself (ingress AND egress; EFA needs both);
- the FSx for Lustre DNS name is a Lustre file system's, its mount name is that file system's, and it
  shares a security group with the cluster (likewise the OpenZFS DNS name when given);
- the lifecycle scripts (``OnCreate`` and provisioning_parameters.json, equal to the local one) are
  under ``SourceS3Uri``;
- the execution role exists, trusts sagemaker.amazonaws.com, and IAM's policy simulator says it may
  ``s3:GetObject`` the lifecycle scripts and ``s3:ListBucket`` their bucket (the managed policy covers
  ``sagemaker-*`` buckets of the role's account only).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

ALL_TRAFFIC = "-1"
ACCESS_DENIED = ("AccessDenied", "AccessDeniedException")


class InputError(Exception):
    """Inputs that cannot be read; one line naming the file and the fix (exit status 2)."""


class CheckError(Exception):
    """A check that cannot run; one line naming the cause and the fix (exit status 2)."""


@dataclass
class Report:
    """The checks' results, printed as they come."""

    results: list[tuple[bool, str]] = field(default_factory=list)

    def check(self, ok: bool, name: str, detail: str) -> bool:
        self.results.append((ok, name))
        print(f"{'✓' if ok else '✗'} {name}: {detail}")
        return ok

    @property
    def failed(self) -> int:
        return sum(1 for ok, _ in self.results if not ok)


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise InputError(f"{what} {path} not found: render it with create_config.py first") from None
    except IsADirectoryError:
        raise InputError(f"{what} {path} is a folder; pass the JSON file create_config.py wrote") from None
    except UnicodeDecodeError:
        raise InputError(
            f"{what} {path} is not UTF-8 text; pass the JSON file create_config.py wrote"
        ) from None
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot read it ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} {path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None


# CreateCluster's pattern for InstanceGroups[].ExecutionRole.
EXECUTION_ROLE = re.compile(r"arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+")


def load_cluster_config(path: Path) -> dict[str, Any]:
    config = read_json(path, "cluster config")
    groups = config.get("InstanceGroups") if isinstance(config, dict) else None
    vpc = config.get("VpcConfig") if isinstance(config, dict) else None
    if not isinstance(groups, list) or not groups or not all(isinstance(g, dict) for g in groups):
        raise InputError(f"cluster config {path} has no InstanceGroups list: is it a create-cluster input?")
    if not isinstance(vpc, dict) or not vpc.get("Subnets") or not vpc.get("SecurityGroupIds"):
        raise InputError(f"cluster config {path} has no VpcConfig with Subnets and SecurityGroupIds")
    for group in groups:
        role = group.get("ExecutionRole")
        if not isinstance(role, str) or not EXECUTION_ROLE.fullmatch(role):
            raise InputError(
                f"cluster config {path}: instance group {group.get('InstanceGroupName')!r} has ExecutionRole "
                f"{role!r}; CreateCluster wants the role's ARN (arn:aws:iam::<account>:role/<name>)"
            )
    return config


def policy_document(value: Any) -> dict[str, Any]:
    """IAM returns documents as dicts (boto3) or URL-encoded JSON strings."""
    if isinstance(value, str):
        return json.loads(urllib.parse.unquote(value))
    return value


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def context_entries(role_arn: str, resource_account: str | None) -> list[dict[str, Any]]:
    """The request context of the role reading the scripts, for conditions such as the managed policy's
    ``aws:ResourceAccount`` equal to ``${aws:PrincipalAccount}``."""
    keys = {"aws:PrincipalArn": role_arn, "aws:PrincipalAccount": role_arn.split(":")[4]}
    if resource_account:
        keys["aws:ResourceAccount"] = resource_account
    return [
        {"ContextKeyName": key, "ContextKeyValues": [value], "ContextKeyType": "string"}
        for key, value in keys.items()
    ]


def simulate(iam: Any, role_arn: str, action: str, resource: str, context: list[dict[str, Any]]) -> dict:
    """IAM's policy simulator for the role's ``action`` on ``resource``: its evaluation result."""
    paginator = iam.get_paginator("simulate_principal_policy")
    pages = paginator.paginate(
        PolicySourceArn=role_arn, ActionNames=[action], ResourceArns=[resource], ContextEntries=context
    )
    try:
        results = [result for page in pages for result in page["EvaluationResults"]]
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ACCESS_DENIED:
            raise
        raise CheckError(
            f"iam:SimulatePrincipalPolicy on {role_arn} was denied to the caller: the execution role's "
            "permissions are checked with it; grant it to the caller (e.g. the IAMReadOnlyAccess managed "
            "policy) and rerun"
        ) from None
    matching = [r for r in results if r["EvalActionName"] == action and r["EvalResourceName"] == resource]
    if not matching:
        raise CheckError(f"iam:SimulatePrincipalPolicy returned no result for {action} on {resource}")
    return matching[0]


def denial(action: str, resource: str, result: dict[str, Any]) -> str:
    """``ACTION on RESOURCE (decision[; missing context KEYS])``: one denied request, as IAM explains it."""
    missing = set(result.get("MissingContextValues") or [])
    for specific in result.get("ResourceSpecificResults") or []:
        missing.update(specific.get("MissingContextValues") or [])
    why = result["EvalDecision"] + (f"; missing context {', '.join(sorted(missing))}" if missing else "")
    return f"{action} on {resource} ({why})"


class Validator:
    """The checks, against one account and region (boto3 ``session``)."""

    def __init__(self, session: Any, config: dict[str, Any], params: dict[str, Any], report: Report):
        self.ec2 = session.client("ec2")
        self.fsx = session.client("fsx")
        self.s3 = session.client("s3")
        self.iam = session.client("iam")
        self.config, self.params, self.report = config, params, report
        self.groups = {g.get("InstanceGroupName"): g for g in config["InstanceGroups"]}
        self.subnets = {
            subnet_id: self.find_subnet(subnet_id) for subnet_id in config["VpcConfig"]["Subnets"]
        }
        found = [subnet for subnet in self.subnets.values() if subnet]
        self.vpc_ids = {subnet["VpcId"] for subnet in found}
        self.zones = [subnet["AvailabilityZone"] for subnet in found]

    def find_subnet(self, subnet_id: str) -> dict[str, Any] | None:
        try:
            return self.ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]
        except ClientError:
            return None

    def run(self) -> None:
        self.check_groups()
        self.check_subnets()
        self.check_instance_types()
        self.check_security_groups()
        self.check_file_systems()
        self.check_lifecycle_and_role()

    def check_groups(self) -> None:
        named = [("controller_group", self.params.get("controller_group"))]
        if self.params.get("login_group"):
            named.append(("login_group", self.params["login_group"]))
        named += [
            ("worker_groups[].instance_group_name", w.get("instance_group_name"))
            for w in self.params.get("worker_groups") or []
            if isinstance(w, dict)
        ]
        if len(named) < 2:  # a controller and at least one worker group
            self.report.check(False, "groups", "provisioning_parameters.json lists no worker group")
        for key, name in named:
            self.report.check(
                name in self.groups,
                f"group {name}",
                f"{key} is an instance group of the cluster"
                if name in self.groups
                else f"{key} {name!r} is not an instance group ({', '.join(map(str, self.groups))}); "
                "make the names equal",
            )
        controller = self.groups.get(self.params.get("controller_group"))
        if controller is not None:
            count = controller.get("InstanceCount")
            self.report.check(
                count == 1,
                "controller count",
                f"InstanceCount {count}"
                + ("" if count == 1 else ": Slurm needs exactly one controller node"),
            )

    def check_subnets(self) -> None:
        for subnet_id, subnet in self.subnets.items():
            if subnet is None:
                self.report.check(
                    False, f"subnet {subnet_id}", "not found in this region: check the VPC stack"
                )
                continue
            gateways = self.internet_routes(subnet)
            public_ips = subnet.get("MapPublicIpOnLaunch", False)
            private = not gateways and not public_ips
            why = f"routes 0.0.0.0/0 to {', '.join(gateways)}" if gateways else "assigns public IPs on launch"
            self.report.check(
                private,
                f"subnet {subnet_id}",
                f"private, in {subnet['AvailabilityZone']}"
                if private
                else f"is public ({why}): use the VPC stack's private subnet",
            )

    def internet_routes(self, subnet: dict[str, Any]) -> list[str]:
        """Internet gateways that the subnet's route table (else the VPC's main one) sends 0.0.0.0/0 to."""
        tables = self.ec2.describe_route_tables(
            Filters=[{"Name": "association.subnet-id", "Values": [subnet["SubnetId"]]}]
        )["RouteTables"]
        if not tables:
            tables = self.ec2.describe_route_tables(
                Filters=[
                    {"Name": "vpc-id", "Values": [subnet["VpcId"]]},
                    {"Name": "association.main", "Values": ["true"]},
                ]
            )["RouteTables"]
        return [
            route["GatewayId"]
            for table in tables
            for route in table.get("Routes", [])
            if route.get("DestinationCidrBlock") == "0.0.0.0/0"
            and str(route.get("GatewayId", "")).startswith("igw-")
        ]

    def check_instance_types(self) -> None:
        for name, group in self.groups.items():
            instance_type = str(group.get("InstanceType", ""))
            check = f"instance type {name}"
            if not instance_type.startswith("ml."):
                self.report.check(
                    False, check, f"{instance_type!r} is not a SageMaker type: use ml.{instance_type}"
                )
                continue
            if not self.zones:
                self.report.check(
                    False, check, "no subnet of VpcConfig found, so no zone to look the type up in"
                )
                continue
            missing = [zone for zone in self.zones if not self.offered(instance_type[3:], zone)]
            self.report.check(
                not missing,
                check,
                f"{instance_type} offered in {', '.join(self.zones)}"
                if not missing
                else f"{instance_type[3:]} is not offered in {', '.join(missing)}: choose another type or AZ",
            )

    def offered(self, ec2_type: str, zone: str) -> bool:
        offerings = self.ec2.describe_instance_type_offerings(
            LocationType="availability-zone",
            Filters=[{"Name": "location", "Values": [zone]}, {"Name": "instance-type", "Values": [ec2_type]}],
        )["InstanceTypeOfferings"]
        return bool(offerings)

    def check_security_groups(self) -> None:
        ids = self.config["VpcConfig"]["SecurityGroupIds"]
        try:
            groups = self.ec2.describe_security_groups(GroupIds=ids)["SecurityGroups"]
        except ClientError as exc:
            self.report.check(
                False, "security groups", f"{', '.join(ids)}: {exc.response['Error']['Message']}"
            )
            return
        for group in groups:
            in_vpc = group["VpcId"] in self.vpc_ids
            self.report.check(
                in_vpc,
                f"security group {group['GroupId']}",
                f"in {group['VpcId']}" if in_vpc else f"in {group['VpcId']}, not a VpcConfig subnet's VPC",
            )
        efa = [g["GroupId"] for g in groups if self.self_referencing(g)]
        self.report.check(
            bool(efa),
            "EFA security group",
            f"{efa[0]} allows all traffic from and to itself"
            if efa
            else "no group allows all protocols from itself (ingress) AND to itself (egress): add the VPC "
            "stack's EfaSecurityGroupId",
        )

    @staticmethod
    def self_referencing(group: dict[str, Any]) -> bool:
        def has_self(permissions: list[dict[str, Any]]) -> bool:
            return any(
                p.get("IpProtocol") == ALL_TRAFFIC
                and any(pair.get("GroupId") == group["GroupId"] for pair in p.get("UserIdGroupPairs", []))
                for p in permissions
            )

        return has_self(group.get("IpPermissions", [])) and has_self(group.get("IpPermissionsEgress", []))

    def check_file_systems(self) -> None:
        file_systems = self.fsx.describe_file_systems()["FileSystems"]
        self.check_file_system(file_systems, "LUSTRE", "fsx_dns_name", self.params.get("fsx_dns_name"))
        if self.params.get("fsx_openzfs_dns_name"):
            self.check_file_system(
                file_systems, "OPENZFS", "fsx_openzfs_dns_name", self.params["fsx_openzfs_dns_name"]
            )

    def check_file_system(self, file_systems: list[dict[str, Any]], kind: str, key: str, dns: Any) -> None:
        found = [fs for fs in file_systems if fs.get("DNSName") == dns]
        if not found or found[0].get("FileSystemType") != kind:
            what = (
                f"a {found[0].get('FileSystemType')} file system"
                if found
                else "no file system in this region"
            )
            self.report.check(False, key, f"{dns!r} is {what}: use the prerequisites stack's output")
            return
        fs = found[0]
        self.report.check(True, key, f"{dns} is {kind} file system {fs['FileSystemId']}")
        if kind == "LUSTRE":
            mount = fs.get("LustreConfiguration", {}).get("MountName")
            wanted = self.params.get("fsx_mountname")
            self.report.check(
                mount == wanted,
                "fsx_mountname",
                f"{wanted} is the mount name of {fs['FileSystemId']}"
                if mount == wanted
                else f"{wanted!r} is not the mount name of {fs['FileSystemId']} ({mount}): use its MountName",
            )
        shared = sorted(self.file_system_groups(fs) & set(self.config["VpcConfig"]["SecurityGroupIds"]))
        self.report.check(
            bool(shared),
            f"{key} security group",
            f"the cluster and {fs['FileSystemId']} share {', '.join(shared)}"
            if shared
            else f"{fs['FileSystemId']} has none of the cluster's security groups: add one to VpcConfig",
        )

    def file_system_groups(self, fs: dict[str, Any]) -> set[str]:
        """Security groups of a file system: those of its network interfaces."""
        if not fs.get("NetworkInterfaceIds"):
            return set()
        interfaces = self.ec2.describe_network_interfaces(NetworkInterfaceIds=fs["NetworkInterfaceIds"])
        return {g["GroupId"] for eni in interfaces["NetworkInterfaces"] for g in eni.get("Groups", [])}

    def check_lifecycle_and_role(self) -> None:
        sources = {
            (
                g.get("LifeCycleConfig", {}).get("SourceS3Uri", ""),
                g.get("LifeCycleConfig", {}).get("OnCreate", ""),
            )
            for g in self.groups.values()
        }
        roles = {g.get("ExecutionRole", "") for g in self.groups.values()}
        role_arns = {role: self.check_role(role) for role in sorted(roles)}
        for uri, on_create in sorted(sources):
            parsed = urllib.parse.urlparse(uri)
            if parsed.scheme != "s3" or not parsed.netloc:
                self.report.check(False, "lifecycle", f"SourceS3Uri {uri!r} is not an s3:// URI")
                continue
            bucket, prefix = parsed.netloc, parsed.path.lstrip("/")
            if prefix and not prefix.endswith("/"):
                prefix += "/"
            self.check_object(bucket, prefix + on_create, "OnCreate script")
            self.check_uploaded_parameters(bucket, prefix + "provisioning_parameters.json")
            for role in [arn for arn in role_arns.values() if arn]:
                self.check_role_reads(role, bucket, prefix + on_create)

    def check_role_reads(self, role: str, bucket: str, key: str) -> None:
        """Whether the role may list the bucket and read the ``OnCreate`` script, as IAM's simulator says."""
        bucket_arn = f"arn:{role.split(':')[1]}:s3:::{bucket}"
        requests = [("s3:GetObject", f"{bucket_arn}/{key}"), ("s3:ListBucket", bucket_arn)]
        context = context_entries(role, self.bucket_account(bucket, role.split(":")[4]))
        results = [(action, arn, simulate(self.iam, role, action, arn, context)) for action, arn in requests]
        denied = [(action, arn, r) for action, arn, r in results if r["EvalDecision"] != "allowed"]
        explicit = any(r["EvalDecision"] == "explicitDeny" for _, _, r in denied)
        fix = (
            "a Deny of the role's policies or permissions boundary blocks it: narrow that Deny"
            if explicit
            else "name the bucket sagemaker-... (the managed policy's pattern) or grant it in the role"
        )
        self.report.check(
            not denied,
            "lifecycle bucket",
            f"the execution role may list s3://{bucket} and read {key}"
            if not denied
            else "the execution role's policies do not allow "
            + ", ".join(denial(action, arn, r) for action, arn, r in denied)
            + f": {fix}",
        )

    def bucket_account(self, bucket: str, account: str) -> str | None:
        """``account`` when it owns the bucket, else None (not known)."""
        try:
            self.s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=account)
        except ClientError:
            return None
        return account

    def check_object(self, bucket: str, key: str, what: str) -> bytes | None:
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            self.report.check(
                False, what, f"s3://{bucket}/{key}: {code}: upload the lifecycle scripts (README) first"
            )
            return None
        self.report.check(True, what, f"s3://{bucket}/{key} ({len(body)} bytes)")
        return body

    def check_uploaded_parameters(self, bucket: str, key: str) -> None:
        body = self.check_object(bucket, key, "uploaded provisioning_parameters.json")
        if body is None:
            return
        try:
            same = json.loads(body) == self.params
        except json.JSONDecodeError:
            same = False
        self.report.check(
            same,
            "uploaded parameters",
            "equal to the local file" if same else "differ from the local file: upload it again",
        )

    def check_role(self, arn: str) -> str | None:
        """Role checks; the role's ARN as IAM gives it, when it exists."""
        name = arn.rsplit("/", 1)[-1]
        try:
            role = self.iam.get_role(RoleName=name)["Role"]
        except ClientError:
            self.report.check(
                False, "execution role", f"{arn} not found: use the prerequisites stack's output"
            )
            return None
        trust = policy_document(role["AssumeRolePolicyDocument"])
        trusted = any(
            s.get("Effect") == "Allow"
            and "sagemaker.amazonaws.com" in as_list(s.get("Principal", {}).get("Service", []))
            for s in as_list(trust.get("Statement", []))
        )
        self.report.check(
            trusted,
            "execution role",
            f"{name} trusts sagemaker.amazonaws.com"
            if trusted
            else f"{name} does not trust sagemaker.amazonaws.com: fix its AssumeRolePolicyDocument",
        )
        return role["Arn"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cluster-config", type=Path, required=True)
    parser.add_argument(
        "--provisioning-parameters",
        type=Path,
        help="local provisioning_parameters.json (default: the one next to --cluster-config)",
    )
    parser.add_argument("--region", help="AWS region (default: your AWS configuration)")
    args = parser.parse_args(argv)
    params_path = args.provisioning_parameters or args.cluster_config.parent / "provisioning_parameters.json"
    report = Report()
    try:
        config = load_cluster_config(args.cluster_config)
        params = read_json(params_path, "provisioning parameters")
        if not isinstance(params, dict):
            raise InputError(f"provisioning parameters {params_path} must be a JSON object")
        session = boto3.session.Session(region_name=args.region)
        if not session.region_name:
            raise InputError("no AWS region configured: pass --region or set AWS_DEFAULT_REGION")
        print(f"# validate_config: cluster {config.get('ClusterName')} in {session.region_name}")
        Validator(session, config, params, report).run()
    except (InputError, CheckError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except NoCredentialsError:
        print("error: no AWS credentials: configure them (aws configure) and rerun", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as exc:
        print(f"error: AWS call failed: {exc}", file=sys.stderr)
        return 2
    total, failed = len(report.results), report.failed
    print(f"# {total} checks: {total - failed} passed, {failed} failed -> {'FAILED' if failed else 'OK'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
