"""Emulator extensions: CloudFormation glue that moto 5.2.5 lacks where its service backend exists.

Each extension is small, registered by ``apply()`` inside the emulator process only, and exercised
by the emulator tests in ``testbed/tests/test_aws.py`` and the templates' deploys. Templates are
never changed to suit moto; where
even the backend is missing (FSx file systems, placement groups, capacity blocks), the template's own
condition turns the resource off in the test and the README says so.

| extension | what moto lacks | backend call used |
|---|---|---|
| ``Fn::Cidr`` | the intrinsic function (left unresolved) | none: ``ipaddress`` |
| short-form ``!Condition`` | read as ``Fn::Condition``, so always false | none: YAML tag |
| ``AWS::NoValue`` in lists | kept as ``None`` (breaks ``Fn::Join`` and lists of ids) | none |
| short-form tag on a mapping | ``!ImportValue {"Fn::Sub": ...}`` kept as raw YAML nodes | none: YAML tag |
| Batch compute environment | needs ``ServiceRole`` (AWS: linked role) | ``create_service_linked_role`` |
| Batch job definition | ``Type`` read as ``container``; PascalCase keys | ``register_job_definition`` |
| ``AWS::EC2::SecurityGroupEgress`` | the resource model | ``authorize_security_group_egress`` |
| ``AWS::S3::BucketPolicy`` | the resource model | ``put_bucket_policy`` |
| ``AWS::S3::Bucket`` properties | versioning, public access block, ownership, lifecycle | ``put_bucket_*`` |
| exports of conditional outputs | exported (value ``None``) when the output's condition is false | none |
| deleting ``SubnetRouteTableAssociation``, | skipped, so the VPC is never | ``disassociate_route_table``, |
| ``RouteTable``, ``VPCEndpoint``, ``FlowLog`` | deleted | ``delete_route_table`` and so on |
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import moto
from moto.batch.models import ComputeEnvironment, JobDefinition, batch_backends
from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing
from moto.cloudformation import responses as cfn_responses
from moto.core.common_models import CloudFormationModel
from moto.ec2.models import ec2_backends
from moto.ec2.models.flow_logs import FlowLogs
from moto.ec2.models.route_tables import RouteTable
from moto.ec2.models.subnets import SubnetRouteTableAssociation
from moto.ec2.models.vpcs import VPCEndPoint
from moto.iam.models import iam_backends
from moto.s3.models import FakeBucket, s3_backends
from moto.utilities.utils import get_partition
from yaml import MappingNode

MOTO_VERSION = "5.2.5"


def cidr(ip_block: str, count: int | str, cidr_bits: int | str) -> list[str]:
    """``Fn::Cidr``: the first ``count`` subnets of ``ip_block`` with ``cidr_bits`` host bits each."""
    network = ipaddress.ip_network(ip_block, strict=False)
    prefix = network.max_prefixlen - int(cidr_bits)
    if prefix < network.prefixlen:
        raise ValueError(f"Fn::Cidr: {cidr_bits} host bits do not fit in {ip_block}")
    subnets = network.subnets(new_prefix=prefix)
    blocks = [str(next(subnets)) for _ in range(int(count))]
    return blocks


def _clean_json_with_extensions(original):
    """Wrap moto's ``clean_json``: resolve ``Fn::Cidr`` and drop ``AWS::NoValue`` from lists."""

    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, dict) and "Fn::Cidr" in resource_json:
            args = [clean_json(arg, resources_map) for arg in resource_json["Fn::Cidr"]]
            return cidr(*args)
        if isinstance(resource_json, list):
            cleaned = [clean_json(item, resources_map) for item in resource_json]
            return [item for item in cleaned if item is not None]
        return original(resource_json, resources_map)

    clean_json.wrapped = original
    return clean_json


def _yaml_tags_with_condition(original):
    """Wrap moto's YAML tag constructor: ``!Condition Name`` means ``{"Condition": Name}``."""

    def yaml_tag_constructor(loader: Any, tag: str, node: Any) -> Any:
        if tag == "!Condition":
            return {"Condition": node.value}
        if isinstance(node, MappingNode):  # e.g. !ImportValue {"Fn::Sub": ...}; moto keeps raw nodes
            name = "Ref" if tag == "!Ref" else f"Fn::{tag[1:]}"
            return {name: loader.construct_mapping(node, deep=True)}
        return original(loader, tag, node)

    yaml_tag_constructor.wrapped = original
    return yaml_tag_constructor


class _ExtensionModel:
    """What both extension models share. A mixin, not a base: moto finds models among the *direct*
    subclasses of ``CloudFormationModel`` only, so each model still lists it as a base itself."""

    CFN_TYPE = ""
    physical_resource_id: str

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.CFN_TYPE


class SecurityGroupEgress(_ExtensionModel, CloudFormationModel):
    """``AWS::EC2::SecurityGroupEgress`` through the EC2 backend (moto has only the ingress twin)."""

    CFN_TYPE = "AWS::EC2::SecurityGroupEgress"

    def __init__(self, group_id: str, rule_id: str) -> None:
        self.group_id = group_id
        self.physical_resource_id = rule_id

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
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


class BucketPolicy(_ExtensionModel, CloudFormationModel):
    """``AWS::S3::BucketPolicy`` through the S3 backend."""

    CFN_TYPE = "AWS::S3::BucketPolicy"

    def __init__(self, bucket: str) -> None:
        self.bucket = self.physical_resource_id = bucket

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> BucketPolicy:

        props = cloudformation_json["Properties"]
        document = props["PolicyDocument"]
        policy = document if isinstance(document, str) else json.dumps(document)
        s3_backends[account_id][get_partition(region_name)].put_bucket_policy(
            props["Bucket"], policy.encode()
        )
        return cls(props["Bucket"])


EXTENSION_MODELS = (SecurityGroupEgress, BucketPolicy)
BUCKET_PROPERTIES = ("VersioningConfiguration", "PublicAccessBlockConfiguration", "OwnershipControls")


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


def _bucket_with_properties(original):
    """Wrap ``FakeBucket.create_from_cloudformation_json`` to apply ``BUCKET_PROPERTIES`` too."""

    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):

        bucket = original.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        props = cloudformation_json.get("Properties", {})
        _apply_bucket_properties(s3_backends[account_id][get_partition(region_name)], bucket.name, props)
        return bucket

    create.wrapped = original
    return classmethod(create)


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


def _delete_association(self: Any, account_id: str, region_name: str) -> None:

    backend = ec2_backends[account_id][region_name]
    table = backend.route_tables.get(self.route_table_id)
    if table is None:
        return  # already gone with its table
    for association_id, subnet_id in list(table._associations.items()):
        if subnet_id == self.subnet_id:
            backend.disassociate_route_table(association_id)


def _delete_vpc_endpoint(self: Any, account_id: str, region_name: str) -> None:

    backend = ec2_backends[account_id][region_name]
    # The stack may have deleted a route table first: drop the endpoint's routes from those left.
    self.route_table_ids = [table for table in self.route_table_ids or [] if table in backend.route_tables]
    backend.delete_vpc_endpoints([self.id])


def _delete_flow_log(self: Any, account_id: str, region_name: str) -> None:

    ec2_backends[account_id][region_name].delete_flow_logs([self.id])


def _delete_route_table(self: Any, account_id: str, region_name: str) -> None:

    ec2_backends[account_id][region_name].delete_route_table(self.id)


def _register_deletes() -> None:
    """Give the EC2 models whose stack deletion moto skips a ``delete`` (moto calls it first)."""

    for model, delete in (
        (SubnetRouteTableAssociation, _delete_association),
        (VPCEndPoint, _delete_vpc_endpoint),
        (FlowLogs, _delete_flow_log),
        (RouteTable, _delete_route_table),
    ):
        if not hasattr(model, "delete"):
            model.delete = delete


def _camel(value: Any) -> Any:
    """CloudFormation's PascalCase property keys as the Batch API's camelCase, at every depth."""
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: _camel(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_camel(item) for item in value]
    return value


def _compute_environment_with_service_linked_role(original):
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
        json = {**cloudformation_json, "Properties": properties}
        return original.__func__(cls, resource_name, json, account_id, region_name, **kwargs)

    create.wrapped = original
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


def apply() -> list[str]:
    """Register every extension in this process; return what was added (idempotent)."""

    if moto.__version__ != MOTO_VERSION:
        raise RuntimeError(f"moto {moto.__version__} found; the extensions are written for {MOTO_VERSION}")
    if not hasattr(parsing.clean_json, "wrapped"):
        parsing.clean_json = _clean_json_with_extensions(parsing.clean_json)

    for module in (cfn_models, cfn_responses):
        if not hasattr(module.yaml_tag_constructor, "wrapped"):
            module.yaml_tag_constructor = _yaml_tags_with_condition(module.yaml_tag_constructor)

    if not hasattr(FakeBucket.create_from_cloudformation_json, "wrapped"):
        FakeBucket.create_from_cloudformation_json = _bucket_with_properties(
            FakeBucket.__dict__["create_from_cloudformation_json"]
        )
    if not hasattr(ComputeEnvironment.create_from_cloudformation_json, "wrapped"):
        ComputeEnvironment.create_from_cloudformation_json = _compute_environment_with_service_linked_role(
            ComputeEnvironment.__dict__["create_from_cloudformation_json"]
        )
    JobDefinition.create_from_cloudformation_json = classmethod(_create_job_definition)
    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
    if getattr(parsing.OutputMap.exports, "fget", None) is not _exports_of_existing_outputs:
        parsing.OutputMap.exports = property(_exports_of_existing_outputs)
    _register_deletes()
    models = [model.cloudformation_type() for model in EXTENSION_MODELS]
    return [
        "Fn::Cidr",
        "!Condition",
        "short-form tags on mappings",
        "Batch service-linked role",
        "AWS::Batch::JobDefinition",
        "AWS::NoValue in lists",
        *models,
        "AWS::S3::Bucket properties",
        "conditional exports",
        "EC2 deletes",
    ]
