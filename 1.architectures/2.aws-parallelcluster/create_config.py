"""Render an AWS ParallelCluster v3 cluster config from the prerequisites and VPC stacks' outputs.

    python create_config.py --stack ml-pcluster-prereq --cluster gpu-efa --key-name my-key \\
        --instance-type p5.48xlarge --count 2 --capacity odcr --capacity-reservation-id cr-... \\
        --out build/gpu-efa.yaml

Reads the outputs of the prerequisites stack (cluster-prerequisites.yaml) and of the VPC stack it names
(1.architectures/1.vpc_network) with boto3, fills a template of ``clusters/``, sets the GPU queue's
capacity (on-demand with a placement group, an On-Demand Capacity Reservation, or a capacity block) and
the shared storage (/fsx, /home), and writes the YAML. Region and AZ come from your AWS configuration and
the stacks; nothing is hard-coded. Bad input (missing stack or output, wrong region, bad option) ends with
one line on stderr naming it and exit status 2. Validate the result offline with validate_config.py.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.exceptions import BotoCoreError

FOLDER = Path(__file__).resolve().parent
sys.path.insert(0, str(FOLDER.parent))

from stack_outputs import ConfigError, stack_outputs  # noqa: E402 - 1.architectures/stack_outputs.py

TEMPLATES = {path.stem: path for path in sorted((FOLDER / "clusters").glob("*.yaml"))}
INSTANCE_TYPES = FOLDER.parent / "instance-types.yaml"
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
CAPACITY = ("ondemand", "odcr", "capacity-block")
OS_CHOICES = ("ubuntu2204", "ubuntu2404", "alinux2023", "rhel9", "rocky9")
PREREQ_OUTPUTS = ("VpcStackName", "HomeNfsSecurityGroupId")
VPC_OUTPUTS = (
    "PrimaryAvailabilityZone",
    "PrimaryPrivateSubnetId",
    "EfaSecurityGroupId",
    "FsxLustreSecurityGroupId",
)
DEFAULTS = {  # per template: instance type, node count, head node type
    "gpu-efa": ("p5.48xlarge", 2, "m5.8xlarge"),
    "cpu-small": ("c5.xlarge", 2, "c5.large"),
    "trn-efa": ("trn1.32xlarge", 2, "m5.8xlarge"),
}
# ParallelCluster creates /fsx when the prerequisites stack has no Lustre file system (GPU cluster only).
MANAGED_LUSTRE = {
    "StorageCapacity": 1200,
    "DeploymentType": "PERSISTENT_2",
    "PerUnitStorageThroughput": 250,
    "DataCompressionType": "LZ4",
    "DeletionPolicy": "Retain",
}


def efa_devices(instance_type: str) -> int:
    """EFA devices of ``instance_type`` from 1.architectures/instance-types.yaml."""
    facts = yaml.safe_load(INSTANCE_TYPES.read_text())["instance_types"]
    if instance_type not in facts:
        raise ConfigError(
            f"--instance-type {instance_type} is not in {INSTANCE_TYPES.name}: use one of "
            f"{', '.join(sorted(facts))} or add it there (GPUs, EFA devices)"
        )
    return int(facts[instance_type]["efa"]["devices"])


def accelerator_kind(instance_type: str) -> str:
    """The accelerator kind (gpu, trainium) of ``instance_type`` in 1.architectures/instance-types.yaml."""
    efa_devices(instance_type)  # the same error for a type the file lacks
    facts = yaml.safe_load(INSTANCE_TYPES.read_text())["instance_types"]
    return str(facts[instance_type]["accelerator"]["kind"])


def render(
    template: str,
    prereq: dict[str, str],
    vpc: dict[str, str],
    *,
    region: str,
    partition: str,
    prereq_stack: str,
    key_name: str,
    instance_type: str | None = None,
    count: int | None = None,
    head_node_instance_type: str | None = None,
    os_name: str = "ubuntu2204",
    capacity: str = "ondemand",
    capacity_reservation_id: str | None = None,
) -> dict[str, Any]:
    """The cluster config as a dict, from stack outputs and options (no AWS call)."""
    if template not in TEMPLATES:
        raise ConfigError(f"--cluster {template}: no such template; use one of {', '.join(TEMPLATES)}")
    default_type, default_count, default_head = DEFAULTS[template]
    instance_type = instance_type or default_type
    count = default_count if count is None else count
    if count < 1:
        raise ConfigError(f"--count {count}: at least one compute node")
    zone = vpc["PrimaryAvailabilityZone"]
    if not zone.startswith(region):
        raise ConfigError(
            f"VPC stack {prereq['VpcStackName']!r} is in AZ {zone}, not in region {region}: pass --region "
            f"{zone[:-1]}"
        )
    gpu = template in ("gpu-efa", "trn-efa")  # an accelerator queue: EFA, reservations, a managed /fsx
    if capacity != "ondemand" and not gpu:
        raise ConfigError(f"--capacity {capacity}: only the gpu-efa and trn-efa clusters take a reservation")
    if template == "trn-efa" and accelerator_kind(instance_type) != "trainium":
        raise ConfigError(
            f"--instance-type {instance_type} is not a Trainium type; use --cluster gpu-efa for it"
        )
    if capacity != "ondemand" and not re.fullmatch(r"cr-[0-9a-f]{8,17}", capacity_reservation_id or ""):
        raise ConfigError(f"--capacity {capacity} needs --capacity-reservation-id cr-<hex> (the reservation)")
    values = {
        "Region": region,
        "Partition": partition,
        "Os": os_name,
        "HeadNodeInstanceType": head_node_instance_type or default_head,
        "HeadNodeSubnetId": vpc.get("PrimaryPublicSubnetId", vpc["PrimaryPrivateSubnetId"]),
        "ComputeSubnetId": vpc["PrimaryPrivateSubnetId"],
        "EfaSecurityGroupId": vpc["EfaSecurityGroupId"],
        "FsxLustreSecurityGroupId": vpc["FsxLustreSecurityGroupId"],
        "HomeNfsSecurityGroupId": prereq["HomeNfsSecurityGroupId"],
        "KeyName": key_name,
        "InstanceType": instance_type,
        "ComputeResourceName": re.sub(r"[^a-z0-9]+", "-", instance_type.lower())[:25].strip("-"),
        "Count": str(count),
        "PrerequisitesStack": prereq_stack,
    }
    text = PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), TEMPLATES[template].read_text())
    left = sorted(set(PLACEHOLDER.findall(text)))
    if left:
        raise ConfigError(f"{TEMPLATES[template].name}: unknown placeholder(s) {left}; fix the template")
    config = yaml.safe_load(text)
    queue = config["Scheduling"]["SlurmQueues"][0]
    resource = queue["ComputeResources"][0]
    if gpu:
        devices = efa_devices(instance_type)
        if devices == 0:
            resource.pop("Efa")
        if capacity != "ondemand":
            # Reserved nodes are static: all of them start with the cluster and stay up.
            queue["CapacityType"] = "CAPACITY_BLOCK" if capacity == "capacity-block" else "ONDEMAND"
            resource["MinCount"] = resource["MaxCount"] = count
            resource["CapacityReservationTarget"] = {"CapacityReservationId": capacity_reservation_id}
            # The reservation decides placement; a cluster placement group of our own would not match it.
            queue["Networking"]["PlacementGroup"]["Enabled"] = False
    config["SharedStorage"] = shared_storage(prereq, managed_lustre=gpu)
    if not config["SharedStorage"]:
        del config["SharedStorage"]
    return config


def shared_storage(prereq: dict[str, str], managed_lustre: bool) -> list[dict[str, Any]]:
    """/fsx (the stack's Lustre, or one ParallelCluster creates) and /home (the stack's OpenZFS)."""
    storage: list[dict[str, Any]] = []
    if "FsxLustreFileSystemId" in prereq:
        lustre = {"FileSystemId": prereq["FsxLustreFileSystemId"]}
        storage.append(
            {"MountDir": "/fsx", "Name": "fsx", "StorageType": "FsxLustre", "FsxLustreSettings": lustre}
        )
    elif managed_lustre:
        settings = dict(MANAGED_LUSTRE)
        storage.append(
            {"MountDir": "/fsx", "Name": "fsx", "StorageType": "FsxLustre", "FsxLustreSettings": settings}
        )
    if "FsxOpenZfsRootVolumeId" in prereq:
        home = {"VolumeId": prereq["FsxOpenZfsRootVolumeId"]}
        storage.append(
            {"MountDir": "/home", "Name": "home", "StorageType": "FsxOpenZfs", "FsxOpenZfsSettings": home}
        )
    return storage


def resolve_region(requested: str | None) -> tuple[boto3.session.Session, str]:
    """A boto3 session in ``requested`` (or the configured region), which must be a known region."""
    session = boto3.session.Session(region_name=requested) if requested else boto3.session.Session()
    region = session.region_name
    if not region:
        raise ConfigError("no AWS region: pass --region or set AWS_REGION (or a default in your AWS profile)")
    if region not in session.get_available_regions("cloudformation"):
        raise ConfigError(
            f"region {region!r} is not an AWS region: pass --region with one of `aws ec2 describe-regions`"
        )
    return session, region


# EC2 key pair names: printable ASCII, at most 255 characters (CreateKeyPair's limit).
KEY_NAME = re.compile(r"[\x20-\x7e]{1,255}")


def check_arguments(args: argparse.Namespace) -> None:
    """What can be judged before any AWS call: names that land in the YAML, the output path."""
    if not KEY_NAME.fullmatch(args.key_name) or args.key_name != args.key_name.strip():
        raise ConfigError(
            f"--key-name {args.key_name!r} is not an EC2 key pair name (printable ASCII, 1-255 characters, "
            "no surrounding spaces); see `aws ec2 describe-key-pairs`"
        )
    if args.out.is_dir():
        raise ConfigError(f"--out {args.out} is a folder; give the cluster YAML's file name")
    if args.count is not None and args.count < 1:
        raise ConfigError(f"--count {args.count} must be at least 1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="the prerequisites stack (cluster-prerequisites.yaml)")
    parser.add_argument("--cluster", required=True, choices=sorted(TEMPLATES), help="template in clusters/")
    parser.add_argument("--key-name", required=True, help="EC2 key pair for SSH to the head node")
    parser.add_argument("--out", type=Path, required=True, help="where to write the cluster YAML")
    parser.add_argument("--region", help="default: AWS_REGION or your profile's region")
    parser.add_argument(
        "--instance-type", help="compute instance type (gpu-efa: p5.48xlarge, cpu-small: c5.xlarge)"
    )
    parser.add_argument("--count", type=int, help="compute nodes (default 2)")
    parser.add_argument("--head-node-instance-type")
    parser.add_argument("--os", dest="os_name", default="ubuntu2204", choices=OS_CHOICES)
    parser.add_argument("--capacity", default="ondemand", choices=CAPACITY)
    parser.add_argument("--capacity-reservation-id", help="cr-... for --capacity odcr or capacity-block")
    args = parser.parse_args(argv)
    try:
        check_arguments(args)
        session, region = resolve_region(args.region)
        cloudformation = session.client("cloudformation")
        prereq = stack_outputs(cloudformation, args.stack, region, PREREQ_OUTPUTS)
        vpc = stack_outputs(cloudformation, prereq["VpcStackName"], region, VPC_OUTPUTS)
        config = render(
            args.cluster,
            prereq,
            vpc,
            region=region,
            partition=session.get_partition_for_region(region),
            prereq_stack=args.stack,
            key_name=args.key_name,
            instance_type=args.instance_type,
            count=args.count,
            head_node_instance_type=args.head_node_instance_type,
            os_name=args.os_name,
            capacity=args.capacity,
            capacity_reservation_id=args.capacity_reservation_id,
        )
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BotoCoreError as exc:
        print(f"error: AWS call failed ({exc}): check your credentials and network", file=sys.stderr)
        return 2
    header = (
        f"# Rendered by create_config.py from stacks {args.stack} and {prereq['VpcStackName']} ({region}).\n"
    )
    temporary = args.out.with_name(f".{args.out.name}.partial")
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(header + yaml.safe_dump(config, sort_keys=False))
        temporary.replace(args.out)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        print(
            f"error: --out {args.out}: cannot write it ({exc.strerror}); choose another path", file=sys.stderr
        )
        return 2
    storage = ", ".join(f"{s['MountDir']} ({s['StorageType']})" for s in config.get("SharedStorage", []))
    print(f"wrote {args.out}: {args.cluster}, {region}, shared storage: {storage or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
