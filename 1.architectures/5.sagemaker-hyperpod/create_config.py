"""Render a HyperPod (Slurm) cluster-config.json and provisioning_parameters.json from stack outputs.

    python create_config.py --stack ml-hp-prereq --cluster-name ml-hp --controller ml.m5.12xlarge \\
        --worker ml.p5.48xlarge:2:gpu --out-dir build
    python create_config.py --stack ml-hp-prereq --groups groups.yaml --out-dir build

Reads the outputs of the prerequisites stack (cluster-prerequisites.yaml) and of the VPC stack it names
(1.architectures/1.vpc_network) with boto3 and writes, into ``--out-dir``:

- ``cluster-config.json``: the ``aws sagemaker create-cluster --cli-input-json`` input (instance groups
  with the lifecycle bucket, the execution role, EBS volume and threads per core; the private subnet and
  the EFA and FSx for Lustre security groups);
- ``provisioning_parameters.json``: the lifecycle program's input (group roles, Slurm partitions, FSx
  DNS and mount names), checked with the lifecycle program's own parser, as the nodes will read it.

Instance groups come from the command line (``--controller``, ``--login``, ``--worker`` repeated) or a
small YAML file (``--groups``; see groups-example.yaml). Bad input (missing stack or output, wrong
region, bad group) ends with one line on stderr naming it and exit status 2, and nothing is written.
Check the result against your account with validate_config.py before create-cluster.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import yaml
from botocore.exceptions import BotoCoreError, ClientError

FOLDER = Path(__file__).resolve().parent
sys.path[:0] = [str(FOLDER / "LifecycleScripts" / "base-config"), str(FOLDER.parent)]

from hyperpod_lifecycle import config as lifecycle_config  # noqa: E402 - the lifecycle program's parser
from stack_outputs import ConfigError, stack_outputs  # noqa: E402 - 1.architectures/stack_outputs.py

PREREQ_OUTPUTS = ("VpcStackName", "LifecycleBucketName", "ExecutionRoleArn")
VPC_OUTPUTS = ("PrimaryPrivateSubnetId", "EfaSecurityGroupId", "FsxLustreSecurityGroupId")
# The CreateCluster API's patterns for names, and the shape of a HyperPod instance type.
NAME = re.compile(r"(?=.{1,63}$)[a-zA-Z0-9](-*[a-zA-Z0-9])*")  # cluster and group names: at most 63
INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")
CONTROLLER_GROUP, LOGIN_GROUP = "controller-machine", "login-group"
DEFAULT_VOLUME_GIB = 500
LIFECYCLE_PREFIX = "base-config"


def parse_group(text: str, option: str, with_partition: bool) -> dict[str, Any]:
    """``TYPE[:COUNT]`` (``--login``) or ``TYPE:COUNT[:PARTITION]`` (``--worker``) as a group dict."""
    parts = text.split(":")
    limit = 3 if with_partition else 2
    if not 1 <= len(parts) <= limit or (with_partition and len(parts) < 2):
        shape = "TYPE:COUNT[:PARTITION]" if with_partition else "TYPE[:COUNT]"
        raise ConfigError(f"{option} {text!r}: expected {shape}, e.g. ml.p5.48xlarge:2:gpu")
    group: dict[str, Any] = {"instance_type": parts[0]}
    if len(parts) > 1:
        group["count"] = parts[1]
    if len(parts) > 2:
        group["partition"] = parts[2]
    return group


def groups_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The groups document (same shape as a --groups file) from the command line or that file."""
    if args.groups:
        if args.controller or args.login or args.worker:
            raise ConfigError("--groups replaces --controller/--login/--worker: give one or the other")
        try:
            spec = yaml.safe_load(args.groups.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"--groups {args.groups}: no such file") from None
        except IsADirectoryError:
            raise ConfigError(f"--groups {args.groups} is a folder; pass the YAML file") from None
        except UnicodeDecodeError:
            raise ConfigError(f"--groups {args.groups} is not UTF-8 text; pass the YAML file") from None
        except OSError as exc:
            raise ConfigError(f"--groups {args.groups}: cannot read it ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"--groups {args.groups}: not valid YAML ({exc.__class__.__name__})") from None
        if not isinstance(spec, dict):
            raise ConfigError(f"--groups {args.groups}: expected a mapping with controller and workers")
        unknown = sorted(set(spec) - {"cluster_name", "controller", "login", "workers"})
        if unknown:
            raise ConfigError(f"--groups {args.groups}: unknown key {unknown[0]!r} (see groups-example.yaml)")
        if args.cluster_name:
            spec["cluster_name"] = args.cluster_name
        return spec
    if not args.controller or not args.worker:
        raise ConfigError(
            "give --controller TYPE and at least one --worker TYPE:COUNT[:PARTITION], or --groups"
        )
    return {
        "cluster_name": args.cluster_name,
        "controller": {"instance_type": args.controller},
        "login": parse_group(args.login, "--login", with_partition=False) if args.login else None,
        "workers": [parse_group(text, "--worker", with_partition=True) for text in args.worker],
    }


def _count(value: Any, where: str) -> int:
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = 0
    if count < 1 or str(value).strip() != str(count):
        raise ConfigError(f"{where}: count {value!r} must be a whole number >= 1")
    return count


@functools.cache
def hyperpod_instance_types() -> frozenset[str]:
    """The instance types HyperPod takes: the ClusterInstanceType list of the installed botocore's
    SageMaker model (offline)."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.shape_for("ClusterInstanceType").enum)


def _group(
    role: str,
    default_name: str,
    item: Any,
    earlier: list[dict[str, Any]],
    threads_per_core: int,
    volume_gib: int,
) -> dict[str, Any]:
    """One validated group; ``earlier`` are the groups before it (names and partitions must be unique)."""
    if not isinstance(item, dict):
        raise ConfigError(f"{role} group {item!r}: expected a mapping with instance_type and count")
    name = str(item.get("name") or default_name)
    where = f"{role} group {name}"
    instance_type = str(item.get("instance_type", ""))
    if not INSTANCE_TYPE.match(instance_type):
        raise ConfigError(
            f"{where}: instance type {instance_type!r} is not a SageMaker type: use the ml. name "
            "(e.g. ml.p5.48xlarge)"
        )
    if instance_type not in hyperpod_instance_types():
        raise ConfigError(
            f"{where}: {instance_type} is not a HyperPod instance type (SageMaker's ClusterInstanceType "
            "list); pick one such as ml.p5.48xlarge or ml.trn1.32xlarge"
        )
    if not NAME.fullmatch(name) or name in {g["name"] for g in earlier}:
        raise ConfigError(f"{where}: the group name must be unique, of letters, digits and hyphens")
    if role == "controller" and item.get("count", 1) not in (1, "1"):
        raise ConfigError(f"{where}: a Slurm cluster has exactly one controller node; remove its count")
    count = 1 if role == "controller" else _count(item.get("count", 1), where)
    partition = str(item.get("partition") or name)
    if role == "worker" and partition in {g["partition"] for g in earlier if g["role"] == "worker"}:
        raise ConfigError(f"{where}: partition {partition!r} is used twice; give each group its own")
    tpc = item.get("threads_per_core", threads_per_core)
    if str(tpc) not in ("1", "2"):
        raise ConfigError(f"{where}: threads_per_core {tpc!r} must be 1 or 2")
    gib = _count(item.get("volume_gib", volume_gib), f"{where} volume_gib")
    if gib > 16384:
        raise ConfigError(f"{where}: volume_gib {gib} is above the EBS limit of 16384")
    return {
        "name": name,
        "role": role,
        "instance_type": instance_type,
        "count": count,
        "partition": partition,
        "threads_per_core": int(tpc),
        "volume_gib": gib,
    }


def normalise_groups(spec: dict[str, Any], threads_per_core: int, volume_gib: int) -> list[dict[str, Any]]:
    """Validated instance groups: name, role, type, count, partition, threads per core, volume."""
    if not spec.get("cluster_name") or not NAME.fullmatch(str(spec["cluster_name"])):
        raise ConfigError(
            f"cluster name {spec.get('cluster_name')!r}: give --cluster-name of letters, digits and hyphens "
            "(at most 63, starting with a letter or digit)"
        )
    controller = spec.get("controller")
    if not isinstance(controller, dict):
        raise ConfigError(
            "the controller group is missing: give --controller TYPE (or controller: in --groups)"
        )
    workers = spec.get("workers")
    if not isinstance(workers, list) or not workers:
        raise ConfigError("no worker group: give --worker TYPE:COUNT[:PARTITION] (or workers: in --groups)")
    entries = [("controller", CONTROLLER_GROUP, controller)]
    if spec.get("login"):
        entries.append(("login", LOGIN_GROUP, spec["login"]))
    entries += [("worker", f"worker-group-{i}", w) for i, w in enumerate(workers, start=1)]
    groups: list[dict[str, Any]] = []
    for role, default_name, item in entries:
        groups.append(_group(role, default_name, item, groups, threads_per_core, volume_gib))
    return groups


def cluster_config(
    cluster_name: str, groups: list[dict[str, Any]], prereq: dict[str, str], vpc: dict[str, str], subnet: str
) -> dict[str, Any]:
    """The ``create-cluster --cli-input-json`` document."""
    source = f"s3://{prereq['LifecycleBucketName']}/{LIFECYCLE_PREFIX}/"
    return {
        "ClusterName": cluster_name,
        "InstanceGroups": [
            {
                "InstanceGroupName": group["name"],
                "InstanceType": group["instance_type"],
                "InstanceCount": group["count"],
                "LifeCycleConfig": {"SourceS3Uri": source, "OnCreate": "on_create.sh"},
                "ExecutionRole": prereq["ExecutionRoleArn"],
                "ThreadsPerCore": group["threads_per_core"],
                "InstanceStorageConfigs": [{"EbsVolumeConfig": {"VolumeSizeInGB": group["volume_gib"]}}],
            }
            for group in groups
        ],
        "VpcConfig": {
            "SecurityGroupIds": [vpc["EfaSecurityGroupId"], vpc["FsxLustreSecurityGroupId"]],
            "Subnets": [subnet],
        },
        "NodeRecovery": "Automatic",
    }


def provisioning_parameters(groups: list[dict[str, Any]], fsx: dict[str, str]) -> dict[str, Any]:
    """The lifecycle program's ``provisioning_parameters.json``."""
    by_role = {role: [g for g in groups if g["role"] == role] for role in ("controller", "login", "worker")}
    params: dict[str, Any] = {
        "version": "1.0.0",
        "workload_manager": "slurm",
        "controller_group": by_role["controller"][0]["name"],
    }
    if by_role["login"]:
        params["login_group"] = by_role["login"][0]["name"]
    params["worker_groups"] = [
        {"instance_group_name": g["name"], "partition_name": g["partition"]} for g in by_role["worker"]
    ]
    params["fsx_dns_name"] = fsx["dns_name"]
    params["fsx_mountname"] = fsx["mount_name"]
    if fsx.get("openzfs_dns_name"):
        params["fsx_openzfs_dns_name"] = fsx["openzfs_dns_name"]
    return params


def check_with_lifecycle_parser(params: dict[str, Any], groups: list[dict[str, Any]]) -> None:
    """Parse and join ``params`` as the lifecycle program on a node will (one placeholder instance each)."""
    resource_config = {
        g["name"]: tuple(
            lifecycle_config.Instance(g["name"], f"{g['name']}-{i}", f"192.0.2.{i + 1}", g["instance_type"])
            for i in range(g["count"])
        )
        for g in groups
    }
    try:
        lifecycle_config.join(lifecycle_config.parse_provisioning_parameters(params), resource_config)
    except lifecycle_config.ConfigError as exc:
        raise ConfigError(f"the lifecycle program would reject the result: {exc}") from None


def lustre_of(fsx_client: Any, file_system_id: str) -> dict[str, str]:
    """DNS and mount name of an existing FSx for Lustre file system (``--fsx-file-system-id``)."""
    try:
        found = fsx_client.describe_file_systems(FileSystemIds=[file_system_id])["FileSystems"]
    except ClientError as exc:
        raise ConfigError(f"--fsx-file-system-id {file_system_id}: {exc}") from None
    if not found or found[0].get("FileSystemType") != "LUSTRE":
        raise ConfigError(
            f"--fsx-file-system-id {file_system_id}: no FSx for Lustre file system with this id"
        )
    return {"dns_name": found[0]["DNSName"], "mount_name": found[0]["LustreConfiguration"]["MountName"]}


def render(args: argparse.Namespace, session: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both documents, from the stacks (boto3 ``session``) and the arguments."""
    spec = groups_from_args(args)
    groups = normalise_groups(spec, args.threads_per_core, args.volume_gib)
    region = session.region_name
    if not region:
        raise ConfigError("no AWS region configured: pass --region or set AWS_DEFAULT_REGION")
    if region not in session.get_available_regions("sagemaker"):
        raise ConfigError(f"region {region!r} is not a SageMaker region: pass --region, e.g. us-west-2")
    cloudformation = session.client("cloudformation")
    prereq = stack_outputs(cloudformation, args.stack, region, PREREQ_OUTPUTS)
    vpc = stack_outputs(cloudformation, prereq["VpcStackName"], region, VPC_OUTPUTS)
    if args.subnet == "backup":
        if "BackupPrivateSubnetId" not in prereq:
            raise ConfigError(
                f"stack {args.stack!r} has no backup subnet: redeploy it with BackupAvailabilityZone set, "
                "or use --subnet primary"
            )
        subnet = prereq["BackupPrivateSubnetId"]
    else:
        subnet = vpc["PrimaryPrivateSubnetId"]
    if args.fsx_file_system_id:
        fsx = lustre_of(session.client("fsx"), args.fsx_file_system_id)
    elif "FsxLustreDnsName" in prereq:
        fsx = {"dns_name": prereq["FsxLustreDnsName"], "mount_name": prereq["FsxLustreMountName"]}
    else:
        raise ConfigError(
            f"stack {args.stack!r} has no FSx for Lustre file system (CreateFsxLustre=false): redeploy it "
            "with CreateFsxLustre=true, or pass --fsx-file-system-id fs-... of an existing one"
        )
    if prereq.get("FsxOpenZfsDnsName"):
        fsx["openzfs_dns_name"] = prereq["FsxOpenZfsDnsName"]
    config = cluster_config(spec["cluster_name"], groups, prereq, vpc, subnet)
    params = provisioning_parameters(groups, fsx)
    check_with_lifecycle_parser(params, groups)
    return config, params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="the prerequisites stack (cluster-prerequisites.yaml)")
    parser.add_argument("--region", help="AWS region of the stacks (default: your AWS configuration)")
    parser.add_argument("--cluster-name", help="the HyperPod cluster's name")
    parser.add_argument("--controller", metavar="TYPE", help="controller (slurmctld) instance type, ml.*")
    parser.add_argument("--login", metavar="TYPE[:COUNT]", help="optional login group")
    parser.add_argument(
        "--worker", metavar="TYPE:COUNT[:PARTITION]", action="append", help="a worker group (repeat for more)"
    )
    parser.add_argument(
        "--groups", type=Path, help="instance groups from a YAML file (see groups-example.yaml)"
    )
    parser.add_argument("--subnet", choices=("primary", "backup"), default="primary")
    parser.add_argument("--threads-per-core", type=int, default=1, choices=(1, 2))
    parser.add_argument("--volume-gib", type=int, default=DEFAULT_VOLUME_GIB, help="EBS volume per node")
    parser.add_argument(
        "--fsx-file-system-id", help="an existing FSx for Lustre file system instead of the stack's"
    )
    parser.add_argument("--out-dir", type=Path, default=Path("build"))
    args = parser.parse_args(argv)
    try:
        existing = next(p for p in (args.out_dir, *args.out_dir.absolute().parents) if p.exists())
        if not existing.is_dir():
            raise ConfigError(
                f"--out-dir {args.out_dir}: {existing} is a file; give a folder (created if missing)"
            )
        session = boto3.session.Session(region_name=args.region)
        config, params = render(args, session)
        write_outputs(args.out_dir, {"cluster-config.json": config, "provisioning_parameters.json": params})
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as exc:
        print(f"error: AWS call failed: {exc}", file=sys.stderr)
        return 2
    return 0


def write_outputs(folder: Path, documents: dict[str, Any]) -> None:
    """Both files or neither: each is written under a temporary name first, then all are renamed."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        staged = []
        for name, document in documents.items():
            temporary = folder / f".{name}.partial"
            temporary.write_text(json.dumps(document, indent=2) + "\n")
            staged.append((temporary, folder / name))
        for temporary, path in staged:
            temporary.replace(path)
            print(f"wrote {path}")
    except OSError as exc:
        for name in documents:
            (folder / f".{name}.partial").unlink(missing_ok=True)
        raise ConfigError(f"--out-dir {folder}: cannot write there ({exc.strerror})") from None


if __name__ == "__main__":
    sys.exit(main())
