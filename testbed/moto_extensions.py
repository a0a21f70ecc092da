"""Emulator extensions: what moto 5.2.5 lacks or gets wrong, patched in the emulator process only.

Every patch is one entry of ``REGISTRY``: a short id, the gap it fills (what plain moto 5.2.5 does
without it), where it is applied, how to install it, and a *canary*: a small check, run against plain
moto (in-process ``mock_aws``), that returns True while moto still has the gap. The canary test
(``testbed/tests/test_moto_extensions.py``) runs every canary in a fresh process where no patch is
applied, and fails with "moto now ...; remove patch ..." once moto no longer has a gap; it runs them
once more with every patch applied, where none may find its gap (so a canary really tests its patch).

Templates are never changed to suit moto; where even the backend is missing (placement groups,
capacity blocks), the template's own condition turns the resource off in the test and the README
says so. ``apply()`` installs the registry (``testbed.aws`` calls it in the server process).

    python -m testbed.moto_extensions --table              # the README's table of extensions
    python -m testbed.moto_extensions --canaries           # every canary on plain moto, as JSON
    python -m testbed.moto_extensions --canaries --applied  # the same with every patch applied
"""

from __future__ import annotations

import argparse
import functools
import ipaddress
import json
import logging
import re
import secrets
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from string import ascii_lowercase
from typing import Any

import boto3
import moto
import yaml
from moto import mock_aws
from moto.batch.models import ComputeEnvironment, JobDefinition, batch_backends
from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing
from moto.cloudformation import responses as cfn_responses
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.common_models import CloudFormationModel
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami, AmiBackend
from moto.ec2.models.flow_logs import FlowLogs
from moto.ec2.models.route_tables import RouteTable
from moto.ec2.models.subnets import SubnetRouteTableAssociation
from moto.ec2.models.vpcs import VPCEndPoint
from moto.ec2.responses.instances import InstanceResponse
from moto.fsx.models import FileSystem, FSxBackend, fsx_backends
from moto.fsx.responses import FSxResponse
from moto.iam.access_control import IAMPolicyStatement, PermissionResult
from moto.iam.exceptions import InvalidInput
from moto.iam.models import Role, iam_backends
from moto.iam.responses import IamResponse
from moto.s3.models import FakeBucket, s3_backends
from moto.sagemaker.models import ClusterNode, SageMakerModelBackend, sagemaker_backends
from moto.ssm.responses import SimpleSystemManagerResponse
from moto.utilities.utils import get_partition
from yaml import MappingNode

from testbed import iam_policy

MOTO_VERSION = "5.2.5"
ROOT = Path(__file__).resolve().parents[1]
LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Patch:
    """One emulator extension. ``gap`` and ``extension`` are Markdown, one sentence each; ``fixed`` says
    what moto does once the gap is gone ("moto now <fixed>")."""

    id: str
    extension: str
    gap: str
    fixed: str
    where: str
    install: Callable[[], None]
    canary: Callable[[], bool]


_APPLIED: set[str] = set()  # ids of the patches installed in this process
_MODELS: list[type] = []  # registered models: CloudFormationModel.__subclasses__() keeps weak references only


def _wrap(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
    """Replace ``owner.name`` by ``make(original)``, the original as stored (a classmethod stays one)."""
    original = vars(owner)[name] if name in vars(owner) else getattr(owner, name)
    setattr(owner, name, make(original))


def _register_model(model: type) -> Callable[[], None]:
    """An install that makes ``model`` a CloudFormation resource type: moto finds the resource models among
    the *direct* subclasses of ``CloudFormationModel``, so the subclass is made at install, not import."""

    def install() -> None:
        # moto's model metaclass reads a service name from a dotted __module__ (this may run as __main__).
        namespace = {"__module__": "testbed.moto_extensions"}
        _MODELS.append(type(model.__name__, (model, CloudFormationModel), namespace))
        for cache in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
            cache.cache_clear()

    return install


# --- canary helpers: plain moto in-process, each canary in its own fresh mock ---------------------------

CANARY_REGION = "us-east-1"
_ONE_RESOURCE = "Resources:\n  Log: {Type: AWS::Logs::LogGroup}\n"


def _on_plain_moto(check: Callable[[], bool]) -> Callable[[], bool]:
    """Run ``check`` inside a fresh ``mock_aws()`` (its state discarded afterwards)."""

    @functools.wraps(check)
    def canary() -> bool:
        with mock_aws():
            return check()

    return canary


def _aws(service: str) -> Any:
    return boto3.client(service, region_name=CANARY_REGION)


def _stack(body: str, name: str = "canary") -> dict[str, str] | None:
    """Create a stack from ``body`` (the template after its version line); its outputs, or None when moto
    rejected or failed it."""
    cloudformation = _aws("cloudformation")
    try:
        cloudformation.create_stack(
            StackName=name,
            TemplateBody='AWSTemplateFormatVersion: "2010-09-09"\n' + body,
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
        )
        stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    except Exception:  # moto raises its own exceptions, not only ClientError, on a template it cannot run
        return None
    if stack["StackStatus"] != "CREATE_COMPLETE":
        return None
    return {output["OutputKey"]: output.get("OutputValue") for output in stack.get("Outputs", [])}


def _delete_stack(name: str = "canary") -> bool:
    """Delete a stack; whether moto says it is deleted."""
    cloudformation = _aws("cloudformation")
    try:
        cloudformation.delete_stack(StackName=name)
        stacks = cloudformation.list_stacks()["StackSummaries"]
    except Exception:
        return False
    return any(s["StackName"] == name and s["StackStatus"] == "DELETE_COMPLETE" for s in stacks)


def _vpc_and_subnet() -> tuple[str, str]:
    ec2 = _aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.0.0/24")["Subnet"]["SubnetId"]
    return vpc, subnet


# --- CloudFormation intrinsic functions and YAML tags --------------------------------------------------


def cidr(ip_block: str, count: int | str, cidr_bits: int | str) -> list[str]:
    """``Fn::Cidr``: the first ``count`` subnets of ``ip_block`` with ``cidr_bits`` host bits each."""
    network = ipaddress.ip_network(ip_block, strict=False)
    prefix = network.max_prefixlen - int(cidr_bits)
    if prefix < network.prefixlen:
        raise ValueError(f"Fn::Cidr: {cidr_bits} host bits do not fit in {ip_block}")
    subnets = network.subnets(new_prefix=prefix)
    return [str(next(subnets)) for _ in range(int(count))]


def _clean_json_with_cidr(original: Any) -> Any:
    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, dict) and "Fn::Cidr" in resource_json:
            return cidr(*[parsing.clean_json(arg, resources_map) for arg in resource_json["Fn::Cidr"]])
        return original(resource_json, resources_map)

    return clean_json


def _clean_json_without_novalue(original: Any) -> Any:
    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, list):
            cleaned = [parsing.clean_json(item, resources_map) for item in resource_json]
            return [item for item in cleaned if item is not None]
        return original(resource_json, resources_map)

    return clean_json


def _yaml_condition_tag(original: Any) -> Any:
    def yaml_tag_constructor(loader: Any, tag: str, node: Any) -> Any:
        if tag == "!Condition":
            return {"Condition": node.value}
        return original(loader, tag, node)

    return yaml_tag_constructor


def _yaml_tag_on_mapping(original: Any) -> Any:
    def yaml_tag_constructor(loader: Any, tag: str, node: Any) -> Any:
        if isinstance(node, MappingNode):  # e.g. !ImportValue {"Fn::Sub": ...}
            name = "Ref" if tag == "!Ref" else f"Fn::{tag[1:]}"
            return {name: loader.construct_mapping(node, deep=True)}
        return original(loader, tag, node)

    return yaml_tag_constructor


def _wrap_yaml_tags(make: Callable[[Any], Any]) -> Callable[[], None]:
    """Both modules that parse templates hold their own reference to moto's tag constructor."""

    def install() -> None:
        for module in (cfn_models, cfn_responses):
            _wrap(module, "yaml_tag_constructor", make)

    return install


@_on_plain_moto
def _cidr_unresolved() -> bool:
    outputs = _stack(_ONE_RESOURCE + "Outputs:\n  Blocks: {Value: !Join [',', !Cidr [10.9.0.0/16, 2, 8]]}\n")
    return (outputs or {}).get("Blocks") != "10.9.0.0/24,10.9.1.0/24"


@_on_plain_moto
def _novalue_kept_in_lists() -> bool:
    outputs = _stack(_ONE_RESOURCE + "Outputs:\n  Joined: {Value: !Join [',', [a, !Ref AWS::NoValue]]}\n")
    return (outputs or {}).get("Joined") != "a"


@_on_plain_moto
def _condition_tag_misread() -> bool:
    body = "Conditions:\n  One: !Equals [a, a]\n  Both: !And [!Condition One, !Equals [b, b]]\n"
    outputs = _stack(body + _ONE_RESOURCE + "Outputs:\n  Picked: {Value: !If [Both, first, second]}\n")
    return (outputs or {}).get("Picked") != "first"


@_on_plain_moto
def _tag_on_mapping_kept_raw() -> bool:
    _stack(_ONE_RESOURCE + "Outputs:\n  Out: {Value: exported, Export: {Name: canary-export}}\n", "exporter")
    body = 'Outputs:\n  In: {Value: !ImportValue {"Fn::Join": ["-", [canary, export]]}}\n'
    return (_stack(_ONE_RESOURCE + body) or {}).get("In") != "exported"


# --- AWS Batch -------------------------------------------------------------------------------------------


def _camel(value: Any) -> Any:
    """CloudFormation's PascalCase property keys as the Batch API's camelCase, at every depth."""
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: _camel(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_camel(item) for item in value]
    return value


def _compute_environment_with_service_linked_role(original: Any) -> Any:
    """No ``ServiceRole``: AWS Batch uses (and creates) its service-linked role; moto requires an ARN."""

    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json["Properties"]
        if not properties.get("ServiceRole"):
            iam = iam_backends[account_id][get_partition(region_name)]
            linked = "aws-service-role/batch.amazonaws.com/"
            role = next((r for r in iam.roles.values() if linked in r.arn), None)
            if role is None:
                role = iam.create_service_linked_role("batch.amazonaws.com", None, "")
            properties = {**properties, "ServiceRole": role.arn}
        json_ = {**cloudformation_json, "Properties": properties}
        return original.__func__(cls, resource_name, json_, account_id, region_name, **kwargs)

    return classmethod(create)


def _create_job_definition(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    """``AWS::Batch::JobDefinition`` with its ``Type`` (``multinode`` too) and camelCase nested properties."""
    properties = cloudformation_json["Properties"]
    backend = batch_backends[account_id][region_name]
    return backend.register_job_definition(
        def_name=properties.get("JobDefinitionName", resource_name),
        parameters=properties.get("Parameters", {}),
        _type=properties["Type"],
        tags=properties.get("Tags", {}),
        retry_strategy=_camel(properties.get("RetryStrategy", {})),
        container_properties=_camel(properties.get("ContainerProperties")),
        node_properties=_camel(properties.get("NodeProperties")),
        eks_properties=_camel(properties.get("EksProperties")),
        timeout=_camel(properties.get("Timeout", {})),
        platform_capabilities=properties.get("PlatformCapabilities", ["EC2"]),
        propagate_tags=properties.get("PropagateTags", False),
    )


_BATCH_ENVIRONMENT = """Resources:
  Vpc: {Type: AWS::EC2::VPC, Properties: {CidrBlock: 10.8.0.0/16}}
  Subnet: {Type: AWS::EC2::Subnet, Properties: {VpcId: !Ref Vpc, CidrBlock: 10.8.0.0/24}}
  Group: {Type: AWS::EC2::SecurityGroup, Properties: {GroupDescription: g, VpcId: !Ref Vpc}}
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
      ComputeResources: {Type: EC2, MinvCpus: 0, MaxvCpus: 8, InstanceTypes: [c5.large],
                         InstanceRole: !GetAtt Profile.Arn, Subnets: [!Ref Subnet],
                         SecurityGroupIds: [!Ref Group]}
Outputs:
  Environment: {Value: !Ref Environment}
"""


@_on_plain_moto
def _batch_needs_service_role() -> bool:
    outputs = _stack(_BATCH_ENVIRONMENT)
    if outputs is None:
        return True
    found = _aws("batch").describe_compute_environments(computeEnvironments=[outputs["Environment"]])
    roles = [environment.get("serviceRole", "") for environment in found["computeEnvironments"]]
    return not any("aws-service-role/batch.amazonaws.com/" in role for role in roles)


@_on_plain_moto
def _job_definition_always_container() -> bool:
    body = """Resources:
  Definition:
    Type: AWS::Batch::JobDefinition
    Properties:
      Type: multinode
      NodeProperties:
        NumNodes: 2
        MainNode: 0
        NodeRangeProperties:
          - TargetNodes: "0:"
            Container: {Image: example/image, ResourceRequirements: [{Type: VCPU, Value: "1"}]}
Outputs:
  Definition: {Value: !Ref Definition}
"""
    outputs = _stack(body)
    if outputs is None:
        return True
    # The API does not return a job definition's nodeProperties (moto's own gap): read the backend.
    found = batch_backends[DEFAULT_ACCOUNT_ID][CANARY_REGION].get_job_definition_by_arn(outputs["Definition"])
    return found is None or found.type != "multinode" or "numNodes" not in (found.node_properties or {})


# --- resource models moto lacks (its service backends exist) ---------------------------------------------


class _ExtensionModel:
    """What the extension models share; ``_register_model`` makes each a ``CloudFormationModel``."""

    CFN_TYPE = ""
    physical_resource_id: str

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.CFN_TYPE


class SecurityGroupEgress(_ExtensionModel):
    """``AWS::EC2::SecurityGroupEgress`` through the EC2 backend (moto has only the ingress twin)."""

    CFN_TYPE = "AWS::EC2::SecurityGroupEgress"

    def __init__(self, group_id: str, rule_id: str) -> None:
        self.group_id = group_id
        self.physical_resource_id = rule_id

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> SecurityGroupEgress:
        props = cloudformation_json["Properties"]
        ranges = [{"CidrIp": props["CidrIp"]}] if props.get("CidrIp") else []
        groups = (
            [{"GroupId": props["DestinationSecurityGroupId"]}]
            if "DestinationSecurityGroupId" in props
            else []
        )
        rules, _ = ec2_backends[account_id][region_name].authorize_security_group_egress(
            group_name_or_id=props["GroupId"],
            ip_protocol=str(props["IpProtocol"]),
            from_port=props.get("FromPort"),
            to_port=props.get("ToPort"),
            ip_ranges=ranges,
            source_groups=groups,
        )
        return cls(props["GroupId"], rules[0].id if rules else resource_name)


class BucketPolicy(_ExtensionModel):
    """``AWS::S3::BucketPolicy`` through the S3 backend."""

    CFN_TYPE = "AWS::S3::BucketPolicy"

    def __init__(self, bucket: str) -> None:
        self.bucket = self.physical_resource_id = bucket

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> BucketPolicy:
        props = cloudformation_json["Properties"]
        document = props["PolicyDocument"]
        policy = document if isinstance(document, str) else json.dumps(document)
        s3_backends[account_id][get_partition(region_name)].put_bucket_policy(
            props["Bucket"], policy.encode()
        )
        return cls(props["Bucket"])


class FsxFileSystem(_ExtensionModel):
    """``AWS::FSx::FileSystem`` through the FSx backend, with the attributes ``!GetAtt`` reads."""

    CFN_TYPE = "AWS::FSx::FileSystem"
    ATTRIBUTES = ("DNSName", "LustreMountName", "RootVolumeId", "ResourceARN")

    def __init__(self, file_system: Any) -> None:
        self.file_system = file_system
        self.physical_resource_id = file_system.file_system_id

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        fs = self.file_system
        values = {
            "DNSName": fs.dns_name,
            "LustreMountName": (fs.lustre_configuration or {}).get("MountName"),
            "RootVolumeId": (fs.open_zfs_configuration or {}).get("RootVolumeId"),
            "ResourceARN": fs.resource_arn,
        }
        if values.get(attribute_name) is None:
            from moto.cloudformation.exceptions import UnformattedGetAttTemplateException  # noqa: PLC0415

            raise UnformattedGetAttTemplateException()
        return values[attribute_name]

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> FsxFileSystem:
        props = cloudformation_json["Properties"]
        file_system = fsx_backends[account_id][region_name].create_file_system(
            client_request_token=resource_name,
            file_system_type=props["FileSystemType"],
            storage_capacity=int(props["StorageCapacity"]),
            storage_type=props.get("StorageType", "SSD"),
            subnet_ids=props["SubnetIds"],
            security_group_ids=props.get("SecurityGroupIds", []),
            tags=props.get("Tags"),
            kms_key_id=props.get("KmsKeyId"),
            windows_configuration=props.get("WindowsConfiguration"),
            lustre_configuration=props.get("LustreConfiguration"),
            ontap_configuration=props.get("OntapConfiguration"),
            file_system_type_version=props.get("FileSystemTypeVersion"),
            open_zfs_configuration=props.get("OpenZFSConfiguration"),
        )
        return cls(file_system)

    def delete(self, account_id: str, region_name: str) -> None:
        """Stack deletion (never reached with ``DeletionPolicy: Retain``, as on AWS)."""
        fsx_backends[account_id][region_name].delete_file_system(
            self.physical_resource_id, "", None, None, None
        )


@_on_plain_moto
def _security_group_egress_skipped() -> bool:
    body = """Resources:
  Vpc: {Type: AWS::EC2::VPC, Properties: {CidrBlock: 10.8.0.0/16}}
  Group: {Type: AWS::EC2::SecurityGroup, Properties: {GroupDescription: g, VpcId: !Ref Vpc}}
  SelfEgress:
    Type: AWS::EC2::SecurityGroupEgress
    Properties: {GroupId: !Ref Group, IpProtocol: "-1", DestinationSecurityGroupId: !Ref Group}
Outputs:
  Group: {Value: !Ref Group}
"""
    outputs = _stack(body)
    if outputs is None:
        return True
    group = _aws("ec2").describe_security_groups(GroupIds=[outputs["Group"]])["SecurityGroups"][0]
    pairs = [pair["GroupId"] for rule in group["IpPermissionsEgress"] for pair in rule["UserIdGroupPairs"]]
    return outputs["Group"] not in pairs


@_on_plain_moto
def _bucket_policy_skipped() -> bool:
    body = """Resources:
  Bucket: {Type: AWS::S3::Bucket, Properties: {BucketName: canary-bucket}}
  Policy:
    Type: AWS::S3::BucketPolicy
    Properties:
      Bucket: !Ref Bucket
      PolicyDocument:
        Statement: [{Effect: Deny, Principal: "*", Action: "s3:DeleteBucket", Resource: !GetAtt Bucket.Arn}]
"""
    if _stack(body) is None:
        return True
    try:
        _aws("s3").get_bucket_policy(Bucket="canary-bucket")
    except Exception:
        return True
    return False


@_on_plain_moto
def _fsx_model_missing() -> bool:
    _, subnet = _vpc_and_subnet()
    body = f"""Resources:
  Lustre:
    Type: AWS::FSx::FileSystem
    Properties: {{FileSystemType: LUSTRE, StorageCapacity: 1200, SubnetIds: [{subnet}],
                 LustreConfiguration: {{DeploymentType: PERSISTENT_2, PerUnitStorageThroughput: 250}}}}
Outputs:
  Dns: {{Value: !GetAtt Lustre.DNSName}}
"""
    outputs = _stack(body)
    return outputs is None or not _aws("fsx").describe_file_systems()["FileSystems"]


# --- FSx backend: what AWS gives a file system and moto does not -------------------------------------


def _file_system_with_aws_id(original: Any) -> Any:
    """AWS ids are ``fs-`` and 17 hex digits (moto makes 8, which validators such as ParallelCluster's
    reject); the DNS name, the ARN and the tags follow the id."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        old_id, old_arn = self.file_system_id, self.resource_arn
        self.file_system_id = f"fs-{secrets.token_hex(9)[:17]}"
        self.dns_name = self.dns_name.replace(old_id, self.file_system_id)
        self.resource_arn = old_arn.replace(old_id, self.file_system_id)
        tags = self.backend.tagger.list_tags_for_resource(old_arn)["Tags"]
        self.backend.tagger.delete_all_tags_for_resource(old_arn)
        if tags:
            self.backend.tagger.tag_resource(self.resource_arn, tags)

    return __init__


def _file_system_with_assigned_configuration(original: Any) -> Any:
    """AWS gives a Lustre file system an 8-letter ``MountName`` and an OpenZFS one a root volume."""

    def create_file_system(self: Any, **kwargs: Any) -> Any:
        if kwargs.get("file_system_type") == "LUSTRE":
            lustre = dict(kwargs.get("lustre_configuration") or {})
            lustre.setdefault("MountName", "".join(secrets.choice(ascii_lowercase) for _ in range(8)))
            kwargs["lustre_configuration"] = lustre
        if kwargs.get("file_system_type") == "OPENZFS":
            openzfs = dict(kwargs.get("open_zfs_configuration") or {})
            openzfs["RootVolumeId"] = f"fsvol-{secrets.token_hex(9)[:17]}"
            kwargs["open_zfs_configuration"] = openzfs
        return original(self, **kwargs)

    return create_file_system


def _file_system_with_network_interface(original: Any) -> Any:
    """AWS puts a file system in its subnet through a network interface carrying its security groups."""

    def create_file_system(self: Any, **kwargs: Any) -> Any:
        ec2 = ec2_backends[self.account_id][self.region_name]
        subnet = ec2.get_subnet(kwargs["subnet_ids"][0])  # AWS, too, rejects a subnet that does not exist
        file_system = original(self, **kwargs)
        eni = ec2.create_network_interface(
            subnet,
            None,
            group_ids=kwargs.get("security_group_ids") or [],
            description=f"ENI for FSx file system {file_system.file_system_id}",
        )
        file_system.network_interface_ids, file_system.vpc_id = [eni.id], subnet.vpc_id
        return file_system

    return create_file_system


def _file_system_dict_with_network(original: Any) -> Any:
    def to_dict(self: Any) -> dict[str, Any]:
        result = original(self)
        if getattr(self, "network_interface_ids", None):
            result.update(NetworkInterfaceIds=self.network_interface_ids, VpcId=self.vpc_id)
        return result

    return to_dict


def _delete_file_system_and_its_interfaces(original: Any) -> Any:
    def delete_file_system(self: Any, file_system_id: str, *args: Any, **kwargs: Any) -> Any:
        file_system = self.file_systems.get(file_system_id)
        result = original(self, file_system_id, *args, **kwargs)
        ec2 = ec2_backends[self.account_id][self.region_name]
        for eni_id in getattr(file_system, "network_interface_ids", []):
            ec2.enis.pop(eni_id, None)
        return result

    return delete_file_system


def _install_fsx_network_interfaces() -> None:
    _wrap(FSxBackend, "create_file_system", _file_system_with_network_interface)
    _wrap(FileSystem, "to_dict", _file_system_dict_with_network)
    _wrap(FSxBackend, "delete_file_system", _delete_file_system_and_its_interfaces)


def _create_file_system(
    file_system_type: str, subnet: str, groups: list[str] | None = None
) -> dict[str, Any]:
    return _aws("fsx").create_file_system(
        FileSystemType=file_system_type,
        StorageCapacity=1200 if file_system_type == "LUSTRE" else 64,
        SubnetIds=[subnet],
        SecurityGroupIds=groups or [],
    )["FileSystem"]


@_on_plain_moto
def _fsx_ids_short() -> bool:
    _, subnet = _vpc_and_subnet()
    return not re.fullmatch(r"fs-[0-9a-f]{17}", _create_file_system("LUSTRE", subnet)["FileSystemId"])


@_on_plain_moto
def _fsx_configuration_unassigned() -> bool:
    _, subnet = _vpc_and_subnet()
    lustre = _create_file_system("LUSTRE", subnet).get("LustreConfiguration") or {}
    openzfs = _create_file_system("OPENZFS", subnet).get("OpenZFSConfiguration") or {}
    return "MountName" not in lustre or "RootVolumeId" not in openzfs


@_on_plain_moto
def _fsx_without_network_interfaces() -> bool:
    vpc, subnet = _vpc_and_subnet()
    ec2 = _aws("ec2")
    group = ec2.create_security_group(GroupName="fsx", Description="fsx", VpcId=vpc)["GroupId"]
    created = _create_file_system("LUSTRE", subnet, [group])
    eni_ids = created.get("NetworkInterfaceIds")
    if not eni_ids or created.get("VpcId") != vpc:
        return True
    enis = ec2.describe_network_interfaces(NetworkInterfaceIds=eni_ids)["NetworkInterfaces"]
    in_group = all(group in [g["GroupId"] for g in eni["Groups"]] for eni in enis)
    _aws("fsx").delete_file_system(FileSystemId=created["FileSystemId"])
    left = [eni["NetworkInterfaceId"] for eni in ec2.describe_network_interfaces()["NetworkInterfaces"]]
    return not in_group or any(eni_id in left for eni_id in eni_ids)


# --- S3 ---------------------------------------------------------------------------------------------------


def _apply_bucket_properties(backend: Any, name: str, props: dict[str, Any]) -> None:
    """Apply the bucket properties moto's ``FakeBucket`` model ignores, through the S3 backend."""
    if "VersioningConfiguration" in props:
        backend.put_bucket_versioning(name, props["VersioningConfiguration"]["Status"])
    if "PublicAccessBlockConfiguration" in props:
        block = {key: str(value).lower() for key, value in props["PublicAccessBlockConfiguration"].items()}
        backend.put_public_access_block(name, block)
    if "OwnershipControls" in props:
        backend.put_bucket_ownership_controls(name, props["OwnershipControls"]["Rules"][0]["ObjectOwnership"])
    if "LifecycleConfiguration" in props:
        rules = [
            {"ID" if key == "Id" else key: value for key, value in rule.items()}
            for rule in props["LifecycleConfiguration"]["Rules"]
        ]
        backend.put_bucket_lifecycle_configuration(name, [{"Filter": {"Prefix": ""}, **r} for r in rules])


def _bucket_with_properties(original: Any) -> Any:
    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        bucket = original.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        props = cloudformation_json.get("Properties", {})
        _apply_bucket_properties(s3_backends[account_id][get_partition(region_name)], bucket.name, props)
        return bucket

    return classmethod(create)


# The request context S3 evaluates policy conditions in. The emulator serves HTTPS only (see
# testbed.aws), so every request it receives came over TLS.
REQUEST_CONTEXT = {"aws:securetransport": ["true"]}


def _bucket_permission_with_request_context(self: Any, action: str, resource: str) -> Any:
    """``FakeBucket.get_permission`` with conditions evaluated against ``REQUEST_CONTEXT``: a statement
    applies only when its conditions hold; one whose conditions cannot be evaluated gets moto's answer."""
    if self.policy is None:
        return PermissionResult.NEUTRAL
    result = PermissionResult.NEUTRAL
    for statement in iam_policy.as_list(json.loads(self.policy)["Statement"]):
        bare = {key: value for key, value in statement.items() if key != "Condition"}
        effect = IAMPolicyStatement(bare).is_action_permitted(action, resource)
        if effect == PermissionResult.NEUTRAL:
            continue
        try:
            holds = iam_policy.conditions_hold(statement.get("Condition") or {}, REQUEST_CONTEXT, set())
        except iam_policy.Unknown:  # an operator not modelled: moto's own answer for this statement
            effect, holds = IAMPolicyStatement(statement).is_action_permitted(action, resource), True
        if not holds:
            continue
        if effect == PermissionResult.DENIED:
            return effect
        result = effect
    return result


@_on_plain_moto
def _bucket_properties_ignored() -> bool:
    body = """Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: canary-bucket
      VersioningConfiguration: {Status: Enabled}
      PublicAccessBlockConfiguration: {BlockPublicAcls: true, BlockPublicPolicy: true,
                                       IgnorePublicAcls: true, RestrictPublicBuckets: true}
      OwnershipControls: {Rules: [{ObjectOwnership: BucketOwnerEnforced}]}
      LifecycleConfiguration: {Rules: [{Id: old, Status: Enabled, ExpirationInDays: 30}]}
"""
    if _stack(body) is None:
        return True
    s3 = _aws("s3")
    checks = (
        lambda: s3.get_bucket_versioning(Bucket="canary-bucket").get("Status") == "Enabled",
        lambda: s3.get_public_access_block(Bucket="canary-bucket")["PublicAccessBlockConfiguration"][
            "BlockPublicAcls"
        ],
        lambda: s3.get_bucket_ownership_controls(Bucket="canary-bucket")["OwnershipControls"]["Rules"],
        lambda: s3.get_bucket_lifecycle_configuration(Bucket="canary-bucket")["Rules"][0]["ID"] == "old",
    )
    return not all(_succeeds(check) for check in checks)


def _succeeds(check: Callable[[], Any]) -> bool:
    try:
        return bool(check())
    except Exception:
        return False


@_on_plain_moto
def _tls_only_policy_denies_all() -> bool:
    s3 = _aws("s3")
    s3.create_bucket(Bucket="canary-tls-only")
    deny_plaintext = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": ["arn:aws:s3:::canary-tls-only", "arn:aws:s3:::canary-tls-only/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    s3.put_bucket_policy(Bucket="canary-tls-only", Policy=json.dumps({"Statement": [deny_plaintext]}))
    return not _succeeds(lambda: s3.put_object(Bucket="canary-tls-only", Key="a", Body=b"1"))


# --- IAM roles in CloudFormation --------------------------------------------------------------------------


def _role_with_managed_policies(original: Any) -> Any:
    """Attach the ``ManagedPolicyArns``, remembered on the role as the ones its stack attached."""

    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        role = original.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        backend = iam_backends[account_id][get_partition(region_name)]
        role.stack_managed_policy_arns = cloudformation_json.get("Properties", {}).get(
            "ManagedPolicyArns", []
        )
        for arn in role.stack_managed_policy_arns:
            backend.attach_role_policy(arn, role.name)
        return role

    return classmethod(create)


def _role_with_json_policies(original: Any) -> Any:
    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        role = original.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        for policy in cloudformation_json.get("Properties", {}).get("Policies", []):
            document = policy["PolicyDocument"]  # stored as JSON, as PutRolePolicy does
            role.put_policy(
                policy["PolicyName"], document if isinstance(document, str) else json.dumps(document)
            )
        return role

    return classmethod(create)


def _role_delete_detaching_policies(original: Any) -> Any:
    """Detach the policies the stack attached (``ManagedPolicyArns``) before deleting the role, as
    CloudFormation does; one attached outside the stack still blocks the deletion, as on AWS."""

    def delete(cls, resource_name, cloudformation_json, account_id, region_name):
        backend = iam_backends[account_id][get_partition(region_name)]
        for role in [role for role in backend.roles.values() if role.name == resource_name]:
            attached = getattr(role, "stack_managed_policy_arns", [])
            for arn in [arn for arn in role.managed_policies if arn in attached]:
                backend.detach_role_policy(arn, role.name)
        original.__func__(cls, resource_name, cloudformation_json, account_id, region_name)

    return classmethod(delete)


_TRUST_EC2 = "{Statement: [{Effect: Allow, Principal: {Service: ec2.amazonaws.com}, Action: sts:AssumeRole}]}"


def _role_stack(properties: str) -> dict[str, str] | None:
    """A stack of one role trusted by EC2 with ``properties`` (YAML) besides; its name as output ``Name``."""
    return _stack(
        "Resources:\n  Role:\n    Type: AWS::IAM::Role\n    Properties:\n"
        f"      AssumeRolePolicyDocument: {_TRUST_EC2}\n      {properties}\n"
        "Outputs:\n  Name: {Value: !Ref Role}\n"
    )


def _customer_managed_policy() -> str:
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}],
    }
    policy = _aws("iam").create_policy(PolicyName="canary", PolicyDocument=json.dumps(document))
    return policy["Policy"]["Arn"]


@_on_plain_moto
def _role_managed_policies_ignored() -> bool:
    arn = _customer_managed_policy()
    outputs = _role_stack(f"ManagedPolicyArns: [{arn}]")
    if outputs is None:
        return True
    attached = _aws("iam").list_attached_role_policies(RoleName=outputs["Name"])["AttachedPolicies"]
    return arn not in [policy["PolicyArn"] for policy in attached]


@_on_plain_moto
def _role_inline_policy_not_json() -> bool:
    statement = "{Effect: Allow, Action: ec2:DescribeVpcs, Resource: '*'}"
    outputs = _role_stack(f"Policies: [{{PolicyName: inline, PolicyDocument: {{Statement: [{statement}]}}}}]")
    if outputs is None:
        return True
    document = _aws("iam").get_role_policy(RoleName=outputs["Name"], PolicyName="inline")["PolicyDocument"]
    return not isinstance(document, dict)  # boto3 decodes a JSON document; moto stored a Python repr


@_on_plain_moto
def _role_delete_blocked_by_its_policies() -> bool:
    arn = _customer_managed_policy()
    outputs = _role_stack(f"ManagedPolicyArns: [{arn}]")
    if outputs is None:
        return True
    iam = _aws("iam")
    iam.attach_role_policy(RoleName=outputs["Name"], PolicyArn=arn)  # as ManagedPolicyArns does on AWS
    _delete_stack()
    return outputs["Name"] in [role["RoleName"] for role in iam.list_roles()["Roles"]]


# --- stack outputs, route tables and EC2 deletions ------------------------------------------------------


def _exports_of_existing_outputs(self: Any) -> list[Any]:
    """``OutputMap.exports`` without the outputs whose ``Condition`` is false."""
    conditions = self._resource_map.lazy_condition_map
    outputs = self._output_json_map if self.outputs else {}
    return [
        parsing.Export(
            self._stack_id,
            parsing.clean_json(value["Export"].get("Name"), self._resource_map),
            parsing.clean_json(value.get("Value"), self._resource_map),
        )
        for value in outputs.values()
        if value.get("Export") and ("Condition" not in value or conditions[value["Condition"]])
    ]


def _create_association(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    """``AWS::EC2::SubnetRouteTableAssociation`` through ``associate_route_table``."""
    props = cloudformation_json["Properties"]
    backend = ec2_backends[account_id][region_name]
    table, subnet = props["RouteTableId"], props["SubnetId"]
    backend.associate_route_table(table, subnet_id=subnet)
    return backend.create_subnet_association(route_table_id=table, subnet_id=subnet)


def _delete_association(self: Any, account_id: str, region_name: str) -> None:
    backend = ec2_backends[account_id][region_name]
    table = backend.route_tables.get(self.route_table_id)
    if table is None:
        return  # already gone with its table
    for association_id, subnet_id in list(table._associations.items()):
        if subnet_id == self.subnet_id:
            backend.disassociate_route_table(association_id)


def _install_route_table_association() -> None:
    SubnetRouteTableAssociation.create_from_cloudformation_json = classmethod(_create_association)
    SubnetRouteTableAssociation.delete = _delete_association


def _delete_vpc_endpoint(self: Any, account_id: str, region_name: str) -> None:
    backend = ec2_backends[account_id][region_name]
    # The stack may have deleted a route table first: drop the endpoint's routes from those left.
    self.route_table_ids = [table for table in self.route_table_ids or [] if table in backend.route_tables]
    backend.delete_vpc_endpoints([self.id])


def _delete_flow_log(self: Any, account_id: str, region_name: str) -> None:
    ec2_backends[account_id][region_name].delete_flow_logs([self.id])


def _delete_route_table(self: Any, account_id: str, region_name: str) -> None:
    ec2_backends[account_id][region_name].delete_route_table(self.id)


def _add_delete(model: type, delete: Callable[..., None]) -> Callable[[], None]:
    """An install giving a model whose stack deletion moto skips a ``delete`` (moto calls it first)."""

    def install() -> None:
        model.delete = delete  # type: ignore[attr-defined]

    return install


@_on_plain_moto
def _conditional_export_kept() -> bool:
    body = _ONE_RESOURCE + (
        "Conditions:\n  Never: !Equals [a, b]\n"
        "Outputs:\n  Off: {Condition: Never, Value: x, Export: {Name: canary-off}}\n"
    )
    _stack(body)
    exports = _aws("cloudformation").list_exports()["Exports"]
    return "canary-off" in [export["Name"] for export in exports]


def _tables_of(subnet: str) -> list[str]:
    found = _aws("ec2").describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])
    return [table["RouteTableId"] for table in found["RouteTables"]]


@_on_plain_moto
def _association_recorded_aside() -> bool:
    vpc, subnet = _vpc_and_subnet()
    table = _aws("ec2").create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    body = f"""Resources:
  Association:
    Type: AWS::EC2::SubnetRouteTableAssociation
    Properties: {{SubnetId: {subnet}, RouteTableId: {table}}}
"""
    if _stack(body) is None:
        return True
    shown = _tables_of(subnet) == [table]
    _delete_stack()
    return not shown or table in _tables_of(subnet)


def _left_after_stack_deletion(resource: str, describe: Callable[[str], list[Any]]) -> bool:
    """Deploy a stack of one resource (YAML; ``{vpc}``, ``{table}``: a VPC and route table made outside
    it) and delete it: whether the resource is left (or the stack could not be created or deleted)."""
    vpc, _ = _vpc_and_subnet()
    table = _aws("ec2").create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    resource = resource.format(vpc=vpc, table=table)
    outputs = _stack(f"Resources:\n  It: {resource}\nOutputs:\n  Id: {{Value: !Ref It}}\n")
    if outputs is None:
        return True
    deleted = _delete_stack()
    return not deleted or bool(describe(outputs["Id"]))


@_on_plain_moto
def _route_table_left() -> bool:
    return _left_after_stack_deletion(
        "{{Type: AWS::EC2::RouteTable, Properties: {{VpcId: {vpc}}}}}",
        lambda id_: _aws("ec2").describe_route_tables(Filters=[{"Name": "route-table-id", "Values": [id_]}])[
            "RouteTables"
        ],
    )


@_on_plain_moto
def _vpc_endpoint_left() -> bool:
    return _left_after_stack_deletion(
        "{{Type: AWS::EC2::VPCEndpoint, Properties: {{VpcId: {vpc}, ServiceName: com.amazonaws.us-east-1.s3,"
        " VpcEndpointType: Gateway, RouteTableIds: [{table}]}}}}",
        lambda id_: [  # a deleted endpoint is listed a while as "deleted", on AWS too
            e
            for e in _aws("ec2").describe_vpc_endpoints()["VpcEndpoints"]
            if e["VpcEndpointId"] == id_ and e["State"] != "deleted"
        ],
    )


@_on_plain_moto
def _flow_log_left() -> bool:
    return _left_after_stack_deletion(
        "{{Type: AWS::EC2::FlowLog, Properties: {{ResourceId: {vpc}, ResourceType: VPC, TrafficType: ALL,"
        " LogDestinationType: cloud-watch-logs, LogGroupName: canary,"
        " DeliverLogsPermissionArn: 'arn:aws:iam::123456789012:role/canary'}}}}",
        lambda id_: [f for f in _aws("ec2").describe_flow_logs()["FlowLogs"] if f["FlowLogId"] == id_],
    )


# --- iam:SimulatePrincipalPolicy ---------------------------------------------------------------------------

# Parameters of the API the emulator does not model: a request with one is refused, never half-answered.
_SIMULATION_UNMODELLED = ("PolicyExclusionList", "ResourcePolicy", "ResourceOwner", "CallerArn")


def _document(text: Any, name: str) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise InvalidInput(f"policy {name} is not a JSON document") from None


def _managed(policy: Any) -> iam_policy.Policy:
    """A managed policy's default version."""
    document = next(version.document for version in policy.versions if version.is_default)
    kind = "aws-managed" if ":iam::aws:policy/" in policy.arn else "user-managed"
    return iam_policy.Policy(policy.name, kind, _document(document, policy.arn))


def _policies_of(entity: Any, kind: str) -> list[iam_policy.Policy]:
    """A role's, user's or group's inline and attached managed policies."""
    inline = [
        iam_policy.Policy(name, kind, _document(document, name)) for name, document in entity.policies.items()
    ]
    return inline + [_managed(policy) for policy in entity.managed_policies.values()]


def _principal_policies(
    backend: Any, arn: str
) -> tuple[list[iam_policy.Policy], list[iam_policy.Policy] | None]:
    """The identity policies of the role or user ``arn`` (a user's groups' too) and its boundary."""
    resource = arn.split(":", 5)[5] if arn.count(":") >= 5 else ""
    kind, _, path_and_name = resource.partition("/")
    if kind == "role":
        entity, groups = backend.get_role_by_arn(arn), []
    elif kind == "user":
        name = path_and_name.rsplit("/", 1)[-1]
        entity, groups = backend.get_user(name), backend.get_groups_for_user(name)
    else:
        raise InvalidInput(f"PolicySourceArn {arn}: the emulator simulates roles and users only")
    identity = _policies_of(entity, kind) + [p for group in groups for p in _policies_of(group, "group")]
    boundary_arn = getattr(entity, "permissions_boundary_arn", None)
    boundary = [_managed(backend.get_policy(boundary_arn))] if boundary_arn else None
    return identity, boundary


def _context(entries: list[dict[str, Any]]) -> iam_policy.Context:
    return {entry["ContextKeyName"].lower(): list(entry.get("ContextKeyValues") or []) for entry in entries}


def _evaluation_result(action: str, resource: str, decision: iam_policy.Decision, listed: bool) -> dict:
    """One ``EvaluationResult`` (the API's shape); with ``ResourceArns`` given, the missing context values
    go under ``ResourceSpecificResults``, as AWS documents."""
    for unevaluated in decision.unevaluated:
        LOG.warning(
            "SimulatePrincipalPolicy %s on %s: a statement of %s was not evaluated (%s): implicitDeny",
            action,
            resource,
            unevaluated.policy.policy_id,
            unevaluated.reason,
        )
    statements = [
        {"SourcePolicyId": p.policy_id, "SourcePolicyType": p.policy_type} for p in decision.matched
    ]
    missing = sorted(decision.missing)
    boundary = {}
    if decision.allowed_by_boundary is not None:
        detail = {"AllowedByPermissionsBoundary": decision.allowed_by_boundary}
        boundary = {"PermissionsBoundaryDecisionDetail": detail}
    result = {
        "EvalActionName": action,
        "EvalResourceName": resource,
        "EvalDecision": decision.decision,
        "MatchedStatements": statements,
        "MissingContextValues": [] if listed else missing,
        **boundary,
    }
    if listed:
        specific = {"EvalResourceName": resource, "EvalResourceDecision": decision.decision}
        result["ResourceSpecificResults"] = [
            {**specific, "MatchedStatements": statements, "MissingContextValues": missing, **boundary}
        ]
    return result


def _simulated_policies(request: Any) -> tuple[list[iam_policy.Policy], list[iam_policy.Policy] | None]:
    """The principal's policies, plus ``PolicyInputList``; ``PermissionsBoundaryPolicyInputList`` in
    place of its boundary when given."""
    unmodelled = [name for name in _SIMULATION_UNMODELLED if request._get_param(name)]
    if unmodelled:
        raise InvalidInput(f"the emulator's SimulatePrincipalPolicy does not model {', '.join(unmodelled)}")
    identity, boundary = _principal_policies(request.backend, request._get_param("PolicySourceArn"))
    for i, text in enumerate(request._get_param("PolicyInputList") or [], 1):
        identity.append(iam_policy.Policy(f"PolicyInputList.{i}", "none", _document(text, "PolicyInputList")))
    boundaries = request._get_param("PermissionsBoundaryPolicyInputList") or []
    if boundaries:
        name = "PermissionsBoundaryPolicyInputList.1"
        boundary = [iam_policy.Policy(name, "none", _document(boundaries[0], name))]
    return identity, boundary


def _simulate_principal_policy(self: Any) -> ActionResult:
    """``IamResponse.simulate_principal_policy``: each action on each resource (default ``*``), paginated."""
    identity, boundary = _simulated_policies(self)
    context = _context(self._get_param("ContextEntries") or [])
    listed = self._get_param("ResourceArns") or []
    results = []
    for action in self._get_param("ActionNames") or []:
        for resource in listed or ["*"]:
            decision = iam_policy.evaluate(action, resource, identity, boundary, context)
            results.append(_evaluation_result(action, resource, decision, bool(listed)))
    start, size = int(self._get_param("Marker") or 0), self._get_int_param("MaxItems", 100)
    page = {"EvaluationResults": results[start : start + size], "IsTruncated": start + size < len(results)}
    if page["IsTruncated"]:
        page["Marker"] = str(start + size)
    return ActionResult(page)


@_on_plain_moto
def _simulate_principal_policy_missing() -> bool:
    iam = _aws("iam")
    trust = {
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]
    }
    role = iam.create_role(RoleName="canary", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    allow = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
    iam.put_role_policy(RoleName="canary", PolicyName="read", PolicyDocument=json.dumps(allow))
    try:
        results = iam.simulate_principal_policy(
            PolicySourceArn=role, ActionNames=["s3:GetObject", "s3:PutObject"]
        )
    except Exception:
        return True
    decisions = [result["EvalDecision"] for result in results["EvaluationResults"]]
    return decisions != ["allowed", "implicitDeny"]


# --- SageMaker HyperPod clusters ---------------------------------------------------------------------------


def _cluster_name(backend: Any, name_or_arn: str) -> str:
    """AWS takes a cluster's name or ARN; with AWS-shaped ARNs the name is no longer in the ARN."""
    for name, cluster in backend.clusters.items():
        if name_or_arn == cluster.arn:
            return name
    return name_or_arn


def _by_cluster_name_or_arn(original: Any) -> Any:
    def method(self: Any, cluster_name: str, *args: Any, **kwargs: Any) -> Any:
        return original(self, _cluster_name(self, cluster_name), *args, **kwargs)

    return method


def _cluster_with_aws_nodes(original: Any) -> Any:
    """AWS names a cluster ``cluster/<12 characters>`` in its ARN, gives its nodes EC2 instance ids and
    puts each node in the cluster's first subnet with a network interface (the node's private IP)."""

    def create_cluster(self: Any, cluster_name: str, instance_groups: Any, vpc_config: Any, tags: Any) -> str:
        ec2 = ec2_backends[self.account_id][self.region_name]
        subnets = [ec2.get_subnet(s) for s in (vpc_config or {}).get("Subnets") or []]  # AWS rejects unknown
        original(
            self, cluster_name=cluster_name, instance_groups=instance_groups, vpc_config=vpc_config, tags=tags
        )
        cluster = self.clusters[cluster_name]
        cluster_id = "".join(secrets.choice(ascii_lowercase + "0123456789") for _ in range(12))
        partition = get_partition(self.region_name)
        cluster.arn = f"arn:{partition}:sagemaker:{self.region_name}:{self.account_id}:cluster/{cluster_id}"
        nodes = {}
        for node in cluster.nodes.values():
            node.instance_id = f"i-{secrets.token_hex(9)[:17]}"
            node.network = None
            if subnets:
                eni = ec2.create_network_interface(
                    subnets[0],
                    None,
                    group_ids=vpc_config.get("SecurityGroupIds") or [],
                    description=f"SageMaker HyperPod cluster {cluster_name} node {node.instance_id}",
                )
                node.network = (eni.id, eni.private_ip_address, subnets[0])
            nodes[node.instance_id] = node
        cluster.nodes = nodes
        return cluster.arn

    return create_cluster


def _delete_cluster_and_its_interfaces(original: Any) -> Any:
    def delete_cluster(self: Any, cluster_name: str) -> str:
        cluster = self.clusters.get(cluster_name)
        arn = original(self, cluster_name)
        ec2 = ec2_backends[self.account_id][self.region_name]
        for node in cluster.nodes.values() if cluster else []:
            if getattr(node, "network", None):
                ec2.enis.pop(node.network[0], None)
        return arn

    return delete_cluster


def _node_address(node: Any) -> dict[str, Any]:
    if not getattr(node, "network", None):
        return {}
    _, ip, subnet = node.network
    domain = "ec2.internal" if node.region_name == "us-east-1" else f"{node.region_name}.compute.internal"
    return {
        "PrivatePrimaryIp": ip,
        "PrivateDnsHostname": f"ip-{ip.replace('.', '-')}.{domain}",
        "Placement": {
            "AvailabilityZone": subnet.availability_zone,
            "AvailabilityZoneId": subnet.availability_zone_id,
        },
    }


def _node_with_address(original: Any) -> Any:
    def describe(self: Any) -> dict[str, Any]:
        return {**original(self), **_node_address(self)}

    return describe


def _summary_with_hostname(original: Any) -> Any:
    def summary(self: Any) -> dict[str, Any]:
        hostname = _node_address(self).get("PrivateDnsHostname")
        return {**original(self), **({"PrivateDnsHostname": hostname} if hostname else {})}

    return summary


def _install_sagemaker_cluster_nodes() -> None:
    _wrap(SageMakerModelBackend, "create_cluster", _cluster_with_aws_nodes)
    for name in ("describe_cluster", "describe_cluster_node", "list_cluster_nodes"):
        _wrap(SageMakerModelBackend, name, _by_cluster_name_or_arn)
    _wrap(SageMakerModelBackend, "delete_cluster", _delete_cluster_and_its_interfaces)
    _wrap(SageMakerModelBackend, "delete_cluster", _by_cluster_name_or_arn)
    _wrap(ClusterNode, "describe", _node_with_address)
    _wrap(ClusterNode, "summary", _summary_with_hostname)


@_on_plain_moto
def _cluster_nodes_without_address() -> bool:
    vpc, subnet = _vpc_and_subnet()
    group_id = _aws("ec2").create_security_group(GroupName="canary", Description="canary", VpcId=vpc)[
        "GroupId"
    ]
    sagemaker = _aws("sagemaker")
    group = {
        "InstanceGroupName": "workers",
        "InstanceType": "ml.c5.xlarge",
        "InstanceCount": 1,
        "LifeCycleConfig": {"SourceS3Uri": "s3://sagemaker-canary/base/", "OnCreate": "on_create.sh"},
        "ExecutionRole": "arn:aws:iam::123456789012:role/canary",
        "ThreadsPerCore": 1,
    }
    arn = sagemaker.create_cluster(
        ClusterName="canary",
        InstanceGroups=[group],
        VpcConfig={"SecurityGroupIds": [group_id], "Subnets": [subnet]},
    )["ClusterArn"]
    (node,) = sagemaker.list_cluster_nodes(ClusterName=arn)["ClusterNodeSummaries"]
    details = sagemaker.describe_cluster_node(ClusterName="canary", NodeId=node["InstanceId"])["NodeDetails"]
    return (
        arn.endswith("/canary")
        or not node["InstanceId"].startswith("i-")
        or "PrivatePrimaryIp" not in details
    )


# --- ssm:StartSession ---------------------------------------------------------------------------------------


def _session_target_exists(account_id: str, region: str, target: str) -> bool:
    """An EC2 instance of the emulator (``i-...``) or a HyperPod node,
    ``sagemaker-cluster:<cluster id>_<instance group>-<instance id>``."""
    if target.startswith("sagemaker-cluster:"):
        backend = sagemaker_backends[account_id][region]
        wanted = target.removeprefix("sagemaker-cluster:")
        return any(
            f"{cluster.arn.rsplit('/', 1)[-1]}_{node.instance_group_name}-{node.instance_id}" == wanted
            for cluster in backend.clusters.values()
            for node in cluster.nodes.values()
        )
    ec2 = ec2_backends[account_id][region]
    return any(
        target == instance.id
        for reservation in ec2.reservations.values()
        for instance in reservation.instances
    )


def _start_session(self: Any) -> str:
    """``SimpleSystemManagerResponse.start_session``: a session to a node that exists (else AWS's
    TargetNotConnected); the data channel is the Session Manager plugin's to open."""
    target = self._get_param("Target") or ""
    if not _session_target_exists(self.current_account, self.region, target):
        raise JsonRESTError("TargetNotConnected", f"{target} is not connected.")
    session_id = f"botocore-session-{secrets.token_hex(9)[:17]}"
    stream = (
        f"wss://ssmmessages.{self.region}.amazonaws.com/v1/data-channel/{session_id}?role=publish_subscribe"
    )
    token = secrets.token_urlsafe(24)
    return json.dumps({"SessionId": session_id, "TokenValue": token, "StreamUrl": stream})


def _terminate_session(self: Any) -> str:
    return json.dumps({"SessionId": self._get_param("SessionId")})


def _install_start_session() -> None:
    SimpleSystemManagerResponse.start_session = _start_session
    SimpleSystemManagerResponse.terminate_session = _terminate_session


@_on_plain_moto
def _start_session_missing() -> bool:
    _, subnet = _vpc_and_subnet()
    ec2 = _aws("ec2")
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet)
    try:
        _aws("ssm").start_session(Target=instance["Instances"][0]["InstanceId"])
    except Exception:
        return True
    return False


# --- AWS ParallelCluster's official AMIs -----------------------------------------------------------------

# The pinned aws-parallelcluster looks its official AMI up by name, owned by `amazon` (pcluster.aws.ec2
# get_official_image_id): aws-parallelcluster-<version>-<OS name part>-<architecture>*.
PCLUSTER_VERSION = yaml.safe_load((ROOT / "2.ami_and_containers" / "versions.yaml").read_text())["python"][
    "aws-parallelcluster"
]
PCLUSTER_OS_NAME_PARTS = {"ubuntu2204": "ubuntu-2204-lts-hvm", "ubuntu2404": "ubuntu-2404-lts-hvm"}
PCLUSTER_OS_NAME_PARTS["alinux2023"] = "amzn2023-hvm"
PCLUSTER_AMI_OWNER = "247102896272"  # the account that publishes them, alias amazon
PCLUSTER_AMI_DATE = "202601010000 2026-01-01T00-00-00.000Z"


def _with_pcluster_amis(original: Any) -> Any:
    """Each region's AMI catalogue also holds ParallelCluster's official images of the pinned version, one
    per OS and architecture, made from an image of moto's catalogue of that architecture (its root
    device mapping and snapshot)."""

    def load_amis(self: Any) -> None:
        original(self)
        for architecture in ("x86_64", "arm64"):
            source = next((a for a in self.amis.values() if a.architecture == architecture), None)
            if source is None:
                continue
            for os_name, part in PCLUSTER_OS_NAME_PARTS.items():
                name = f"aws-parallelcluster-{PCLUSTER_VERSION}-{part}-{architecture}-{PCLUSTER_AMI_DATE}"
                ami_id = f"ami-{secrets.token_hex(9)[:17]}"
                ami = Ami(
                    self,
                    ami_id,
                    source_ami=source,
                    name=name,
                    description=f"AWS ParallelCluster AMI for {os_name}",
                    owner_id=PCLUSTER_AMI_OWNER,
                    owner_alias="amazon",
                )
                ami.architecture = architecture
                self.amis[ami_id] = ami

    return load_amis


@_on_plain_moto
def _pcluster_amis_missing() -> bool:
    name = f"aws-parallelcluster-{PCLUSTER_VERSION}-ubuntu-2204-lts-hvm-x86_64*"
    images = _aws("ec2").describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": [name]}])
    return not images["Images"]


# --- EC2 RunInstances with instance-store block device mappings ------------------------------------------


def _is_instance_store(device_mapping: dict[str, Any]) -> bool:
    return "Ebs" not in device_mapping and str(device_mapping.get("VirtualName") or "").startswith(
        "ephemeral"
    )


def _instance_store_mapping_accepted(original: Any) -> Any:
    """An instance-store mapping (``VirtualName: ephemeralN``, no ``Ebs``), which ParallelCluster's launch
    templates send for every NVMe disk, is valid as on AWS; the rest is checked as moto checks it."""

    def validate(device_mapping: dict[str, Any]) -> None:
        if not _is_instance_store(device_mapping):
            original(device_mapping)

    return staticmethod(validate)


def _instance_store_is_no_ebs_volume(original: Any) -> Any:
    """The instance's own disks get no EBS volume (moto would make one from each parsed mapping)."""

    def parse(self: Any) -> list[dict[str, Any]]:
        return [mapping for mapping in original(self) if not _is_instance_store(_without_empty_ebs(mapping))]

    return parse


def _without_empty_ebs(mapping: dict[str, Any]) -> dict[str, Any]:
    """A parsed mapping as it was given: moto's template fills ``Ebs`` with Nones for every mapping."""
    ebs = mapping.get("Ebs") or {}
    filled = ebs.get("SnapshotId") or ebs.get("VolumeSize")
    return mapping if filled else {key: value for key, value in mapping.items() if key != "Ebs"}


def _install_instance_store_mappings() -> None:
    _wrap(InstanceResponse, "_validate_block_device_mapping", _instance_store_mapping_accepted)
    _wrap(InstanceResponse, "_parse_block_device_mapping", _instance_store_is_no_ebs_volume)


@_on_plain_moto
def _instance_store_mapping_refused() -> bool:
    _, subnet = _vpc_and_subnet()
    mapping = [{"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"}]
    try:
        _aws("ec2").run_instances(
            ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet, BlockDeviceMappings=mapping
        )
    except Exception:
        return True
    return False


# --- FSx DescribeVolumes ---------------------------------------------------------------------------------


def _describe_volumes(self: Any) -> Any:
    """``FSxResponse.describe_volumes``: the root volume of each OpenZFS file system (its id from the
    fsx-file-system-configuration extension), or VolumeNotFound for an id none has."""
    wanted = set(json.loads(self.body or "{}").get("VolumeIds") or [])
    volumes = []
    for fs in self.fsx_backend.file_systems.values():
        root = (fs.open_zfs_configuration or {}).get("RootVolumeId")
        if root and (not wanted or root in wanted):
            volume = {"VolumeId": root, "FileSystemId": fs.file_system_id, "VolumeType": "OPENZFS"}
            volume |= {"Lifecycle": "AVAILABLE", "Name": "fsx"}
            volume["OpenZFSConfiguration"] = {"VolumePath": "/fsx", "ParentVolumeId": None}
            volumes.append(volume)
    missing = sorted(wanted - {volume["VolumeId"] for volume in volumes})
    if missing:
        raise JsonRESTError("VolumeNotFound", f"Volume {missing[0]} not found")
    return json.dumps({"Volumes": volumes})


@_on_plain_moto
def _describe_volumes_missing() -> bool:
    try:
        _aws("fsx").describe_volumes()
    except Exception:
        return True
    return False


# --- the registry ----------------------------------------------------------------------------------------

_ROLE_CREATE = "`iam.models.Role.create_from_cloudformation_json` (wrapped)"

REGISTRY: tuple[Patch, ...] = (
    Patch(
        "fn-cidr",
        "`Fn::Cidr`",
        "the intrinsic function is left unresolved (an output of it reads `Fn::Cidr`)",
        "resolves Fn::Cidr",
        "`cloudformation.parsing.clean_json` (wrapped)",
        lambda: _wrap(parsing, "clean_json", _clean_json_with_cidr),
        _cidr_unresolved,
    ),
    Patch(
        "novalue-in-lists",
        "`AWS::NoValue` inside lists",
        "kept as `None`, so `Fn::Join` gives `a,None` and lists of ids carry a `None`",
        "drops AWS::NoValue from lists",
        "`cloudformation.parsing.clean_json` (wrapped)",
        lambda: _wrap(parsing, "clean_json", _clean_json_without_novalue),
        _novalue_kept_in_lists,
    ),
    Patch(
        "condition-tag",
        "short-form `!Condition`",
        "read as `Fn::Condition`, so a condition built on another one is always false",
        "reads the short-form !Condition tag",
        "`yaml_tag_constructor` of `cloudformation.models` and `.responses` (wrapped)",
        _wrap_yaml_tags(_yaml_condition_tag),
        _condition_tag_misread,
    ),
    Patch(
        "tag-on-mapping",
        'short-form tags on a mapping (`!ImportValue {"Fn::Sub": ...}`)',
        "kept as raw YAML nodes, so the import (or other function) fails",
        "reads short-form tags on mappings",
        "`yaml_tag_constructor` of `cloudformation.models` and `.responses` (wrapped)",
        _wrap_yaml_tags(_yaml_tag_on_mapping),
        _tag_on_mapping_kept_raw,
    ),
    Patch(
        "batch-service-linked-role",
        "`AWS::Batch::ComputeEnvironment` without `ServiceRole`",
        "rejected; AWS uses the Batch service-linked role, created here through IAM",
        "creates a compute environment without ServiceRole",
        "`batch.models.ComputeEnvironment.create_from_cloudformation_json` (wrapped)",
        lambda: _wrap(
            ComputeEnvironment,
            "create_from_cloudformation_json",
            _compute_environment_with_service_linked_role,
        ),
        _batch_needs_service_role,
    ),
    Patch(
        "batch-job-definition",
        "`AWS::Batch::JobDefinition`",
        "always registered as `container` (so `multinode` fails), nested keys left PascalCase",
        "registers job definitions with their Type and camelCase nested keys",
        "`batch.models.JobDefinition.create_from_cloudformation_json` (replaced)",
        lambda: setattr(
            JobDefinition, "create_from_cloudformation_json", classmethod(_create_job_definition)
        ),
        _job_definition_always_container,
    ),
    Patch(
        "sg-egress",
        "`AWS::EC2::SecurityGroupEgress`",
        "no model: the rule is silently not created",
        "models AWS::EC2::SecurityGroupEgress",
        "a `CloudFormationModel` subclass (added)",
        _register_model(SecurityGroupEgress),
        _security_group_egress_skipped,
    ),
    Patch(
        "bucket-policy",
        "`AWS::S3::BucketPolicy`",
        "no model: the policy is silently not attached",
        "models AWS::S3::BucketPolicy",
        "a `CloudFormationModel` subclass (added)",
        _register_model(BucketPolicy),
        _bucket_policy_skipped,
    ),
    Patch(
        "fsx-file-system",
        "`AWS::FSx::FileSystem` (Lustre, OpenZFS)",
        "no model although the FSx backend exists: silently skipped, and `!GetAtt` on it fails the stack",
        "models AWS::FSx::FileSystem",
        "a `CloudFormationModel` subclass (added)",
        _register_model(FsxFileSystem),
        _fsx_model_missing,
    ),
    Patch(
        "fsx-ids",
        "FSx file system ids",
        "`fs-` and 8 hex digits; AWS makes 17, and ParallelCluster's schema rejects 8",
        "makes FSx ids of AWS's shape",
        "`fsx.models.FileSystem.__init__` (wrapped)",
        lambda: _wrap(FileSystem, "__init__", _file_system_with_aws_id),
        _fsx_ids_short,
    ),
    Patch(
        "fsx-assigned-configuration",
        "Lustre `MountName`, OpenZFS `RootVolumeId`",
        "not assigned by `CreateFileSystem`, where AWS assigns both",
        "assigns a Lustre MountName and an OpenZFS RootVolumeId",
        "`fsx.models.FSxBackend.create_file_system` (wrapped)",
        lambda: _wrap(FSxBackend, "create_file_system", _file_system_with_assigned_configuration),
        _fsx_configuration_unassigned,
    ),
    Patch(
        "fsx-network-interfaces",
        "FSx network interfaces",
        "none created, so a file system has no `NetworkInterfaceIds` or `VpcId` and its security groups "
        "cannot be found; the extension creates one in its first subnet with its groups, deleted with it",
        "gives a file system a network interface in its subnet and deletes it with the file system",
        "`FSxBackend.create_file_system`, `.delete_file_system`, `FileSystem.to_dict` (wrapped)",
        _install_fsx_network_interfaces,
        _fsx_without_network_interfaces,
    ),
    Patch(
        "bucket-properties",
        "`AWS::S3::Bucket` versioning, public access block, ownership controls, lifecycle rules",
        "ignored",
        "applies a bucket's versioning, public access block, ownership controls and lifecycle rules",
        "`s3.models.FakeBucket.create_from_cloudformation_json` (wrapped)",
        lambda: _wrap(FakeBucket, "create_from_cloudformation_json", _bucket_with_properties),
        _bucket_properties_ignored,
    ),
    Patch(
        "bucket-policy-conditions",
        "bucket policy conditions (`aws:SecureTransport`)",
        "`Bool` ignored, and a statement whose condition fails returns Deny, so the TLS-only `Deny` every "
        "bucket here carries denies every request; the extension applies a statement only when its "
        "conditions hold, with `aws:SecureTransport` true (the emulator serves HTTPS only)",
        "lets requests through a TLS-only bucket policy",
        "`s3.models.FakeBucket.get_permission` (replaced)",
        lambda: setattr(FakeBucket, "get_permission", _bucket_permission_with_request_context),
        _tls_only_policy_denies_all,
    ),
    Patch(
        "role-managed-policies",
        "`AWS::IAM::Role` `ManagedPolicyArns`",
        "ignored",
        "attaches a role's ManagedPolicyArns",
        _ROLE_CREATE,
        lambda: _wrap(Role, "create_from_cloudformation_json", _role_with_managed_policies),
        _role_managed_policies_ignored,
    ),
    Patch(
        "role-inline-policies",
        "`AWS::IAM::Role` `Policies`",
        "stored as a Python `repr`, not JSON, so `GetRolePolicy` returns a document no JSON parser reads",
        "stores a role's inline policies as JSON",
        _ROLE_CREATE,
        lambda: _wrap(Role, "create_from_cloudformation_json", _role_with_json_policies),
        _role_inline_policy_not_json,
    ),
    Patch(
        "role-delete-detaches",
        "deleting an `AWS::IAM::Role` with `ManagedPolicyArns`",
        "fails (`DeleteConflict`): moto does not detach them first, as CloudFormation does",
        "detaches a role's ManagedPolicyArns before deleting it",
        "`iam.models.Role.delete_from_cloudformation_json` (wrapped)",
        lambda: _wrap(Role, "delete_from_cloudformation_json", _role_delete_detaching_policies),
        _role_delete_blocked_by_its_policies,
    ),
    Patch(
        "conditional-exports",
        "exports of outputs whose `Condition` is false",
        "exported, with the value `None`",
        "skips the exports of outputs whose condition is false",
        "`cloudformation.parsing.OutputMap.exports` (replaced)",
        lambda: setattr(parsing.OutputMap, "exports", property(_exports_of_existing_outputs)),
        _conditional_export_kept,
    ),
    Patch(
        "route-table-association",
        "`AWS::EC2::SubnetRouteTableAssociation`",
        "recorded aside, not on the route table: `describe-route-tables` shows the subnet on the VPC's "
        "main table",
        "associates the subnet with the route table (and disassociates it on deletion)",
        "`ec2.models.subnets.SubnetRouteTableAssociation.create_from_cloudformation_json` (replaced), "
        "`.delete` (added)",
        _install_route_table_association,
        _association_recorded_aside,
    ),
    Patch(
        "delete-route-table",
        "deleting an `AWS::EC2::RouteTable`",
        "skipped, so the route table stays and its VPC cannot be deleted",
        "deletes a stack's route tables",
        "`ec2.models.route_tables.RouteTable.delete` (added)",
        _add_delete(RouteTable, _delete_route_table),
        _route_table_left,
    ),
    Patch(
        "delete-vpc-endpoint",
        "deleting an `AWS::EC2::VPCEndpoint`",
        "skipped, so the endpoint stays and its VPC cannot be deleted",
        "deletes a stack's VPC endpoints",
        "`ec2.models.vpcs.VPCEndPoint.delete` (added)",
        _add_delete(VPCEndPoint, _delete_vpc_endpoint),
        _vpc_endpoint_left,
    ),
    Patch(
        "delete-flow-log",
        "deleting an `AWS::EC2::FlowLog`",
        "skipped, so the flow log stays and its VPC cannot be deleted",
        "deletes a stack's flow logs",
        "`ec2.models.flow_logs.FlowLogs.delete` (added)",
        _add_delete(FlowLogs, _delete_flow_log),
        _flow_log_left,
    ),
    Patch(
        "iam-simulate-principal-policy",
        "`iam:SimulatePrincipalPolicy`",
        "not implemented; the extension evaluates a role's or user's inline and managed policies (default "
        "versions) and permissions boundary, as documented in [`iam_policy.py`](iam_policy.py)",
        "implements SimulatePrincipalPolicy",
        "`iam.responses.IamResponse.simulate_principal_policy` (added)",
        lambda: setattr(IamResponse, "simulate_principal_policy", _simulate_principal_policy),
        _simulate_principal_policy_missing,
    ),
    Patch(
        "sagemaker-cluster-nodes",
        "SageMaker HyperPod cluster ARNs and nodes",
        "the ARN ends in the cluster's name, where AWS puts a 12-character id (the SSM target's "
        "`<cluster-id>`), a node's id is `<group>-<n>`, not an EC2 instance id, and a node has no private "
        "IP, host name or placement; the extension gives every node a network interface in the cluster's "
        "first subnet, deleted with the cluster, and finds clusters by name or ARN",
        "gives clusters AWS-shaped ARNs and nodes instance ids and private IPs",
        "`sagemaker.models.SageMakerModelBackend`'s cluster methods, `ClusterNode.describe` and `.summary` "
        "(wrapped)",
        _install_sagemaker_cluster_nodes,
        _cluster_nodes_without_address,
    ),
    Patch(
        "ssm-start-session",
        "`ssm:StartSession` and `ssm:TerminateSession`",
        "not implemented; the extension starts a session only to a node that exists (an EC2 instance or a "
        "HyperPod node's `sagemaker-cluster:` target, else AWS's TargetNotConnected) and returns the ids "
        "the Session Manager plugin takes",
        "implements StartSession",
        "`ssm.responses.SimpleSystemManagerResponse.start_session`, `.terminate_session` (added)",
        _install_start_session,
        _start_session_missing,
    ),
    Patch(
        "pcluster-official-amis",
        "AWS ParallelCluster's official AMIs",
        "not in moto's catalogue, and an image made through the API belongs to the caller, never to "
        "`amazon`; the extension adds the pinned version's images (ubuntu2204, ubuntu2404, alinux2023; "
        "x86_64 and arm64) owned by `amazon`, so `pcluster` finds them as on AWS",
        "holds ParallelCluster's official AMIs",
        "`ec2.models.amis.AmiBackend._load_amis` (wrapped)",
        lambda: _wrap(AmiBackend, "_load_amis", _with_pcluster_amis),
        _pcluster_amis_missing,
    ),
    Patch(
        "ec2-instance-store-mappings",
        "instance-store block device mappings in `RunInstances`",
        "refused with MissingParameter (no `Ebs`), so ParallelCluster's launch template dry runs fail; "
        "moto's dry run checks nothing else (capacity, quotas, AZ offering, EFA interfaces stay real-AWS "
        "checks)",
        "accepts instance-store mappings",
        "`ec2.responses.instances.InstanceResponse._validate_block_device_mapping`, "
        "`._parse_block_device_mapping` (wrapped)",
        _install_instance_store_mappings,
        _instance_store_mapping_refused,
    ),
    Patch(
        "fsx-describe-volumes",
        "FSx `DescribeVolumes`",
        "not implemented (HTTP 500); the extension lists each OpenZFS file system's root volume (`/fsx`) and "
        "answers VolumeNotFound for an unknown id, which ParallelCluster reads for `FsxOpenZfsSettings`",
        "implements DescribeVolumes",
        "`fsx.responses.FSxResponse.describe_volumes` (added)",
        lambda: setattr(FSxResponse, "describe_volumes", _describe_volumes),
        _describe_volumes_missing,
    ),
)


def apply() -> list[str]:
    """Install every patch of ``REGISTRY`` in this process (idempotent); return their ids."""
    if moto.__version__ != MOTO_VERSION:
        raise RuntimeError(f"moto {moto.__version__} found; the extensions are written for {MOTO_VERSION}")
    for patch in REGISTRY:
        if patch.id not in _APPLIED:
            patch.install()
            _APPLIED.add(patch.id)
    return [patch.id for patch in REGISTRY]


def table() -> str:
    """The README's Markdown table of the extensions, one row per patch."""
    rows = [f"| patch | extension | moto {MOTO_VERSION} without it | applied to |", "|---|---|---|---|"]
    rows += [f"| `{p.id}` | {p.extension} | {p.gap} | {p.where} |" for p in REGISTRY]
    return "\n".join(rows)


def run_canaries() -> dict[str, dict[str, Any]]:
    """Every canary's answer in this process: ``{"gap": bool}``, or ``{"error": traceback}``."""
    results: dict[str, dict[str, Any]] = {}
    for patch in REGISTRY:
        try:
            results[patch.id] = {"gap": bool(patch.canary())}
        except Exception:
            results[patch.id] = {"error": traceback.format_exc(limit=-4)}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The emulator's moto patches: their table and canaries.")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--table", action="store_true", help="print the README's Markdown table")
    what.add_argument("--canaries", action="store_true", help="run every canary; one JSON line on stdout")
    parser.add_argument("--applied", action="store_true", help="with --canaries: apply every patch first")
    args = parser.parse_args(argv)
    if args.table:
        print(table())
        return 0
    if args.applied:
        apply()
    elif _APPLIED:
        raise RuntimeError(f"patches {sorted(_APPLIED)} are applied: canaries need plain moto")
    print(json.dumps({"applied": sorted(_APPLIED), "results": run_canaries()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
