"""Emulator extensions: CloudFormation glue that moto 5.2.5 lacks where its service backend exists.

Each extension is small, registered by ``apply()`` inside the emulator process only, and exercised
by the emulator tests in ``testbed/tests/test_aws.py`` and the templates' deploys. Templates are
never changed to suit moto; where even the backend is missing (placement groups, capacity blocks),
the template's own condition turns the resource off in the test and the README says so.

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
| ``AWS::FSx::FileSystem`` | the model; AWS ids, mount name, root volume, ENIs | ``create_file_system`` |
| ``AWS::S3::Bucket`` properties | versioning, public access block, ownership, lifecycle | ``put_bucket_*`` |
| ``AWS::IAM::Role`` | ``ManagedPolicyArns`` ignored; inline policies not JSON | ``attach_role_policy`` |
| bucket policy conditions | ``Bool`` ignored; a TLS-only ``Deny`` denies all | none: policy evaluation |
| exports of conditional outputs | exported (value ``None``) when the output's condition is false | none |
| ``SubnetRouteTableAssociation`` | not recorded on the route table | ``associate_route_table`` |
| deleting ``SubnetRouteTableAssociation``, | skipped, so the VPC is never | ``disassociate_route_table``, |
| ``RouteTable``, ``VPCEndpoint``, ``FlowLog`` | deleted | ``delete_route_table`` and so on |
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from string import ascii_lowercase
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
from moto.fsx.models import FileSystem, FSxBackend, fsx_backends
from moto.iam.access_control import IAMPolicyStatement, PermissionResult
from moto.iam.models import Role, iam_backends
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


class FsxFileSystem(_ExtensionModel, CloudFormationModel):
    """``AWS::FSx::FileSystem`` through the FSx backend. AWS assigns a Lustre file system an 8-character
    mount name and an OpenZFS file system a root volume; moto's backend does neither, so they are
    generated here (same shapes) and stored in the file system's configuration, where
    ``describe-file-systems`` returns them as AWS does."""

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
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> FsxFileSystem:

        props = cloudformation_json["Properties"]
        lustre = dict(props["LustreConfiguration"]) if "LustreConfiguration" in props else None
        openzfs = dict(props["OpenZFSConfiguration"]) if "OpenZFSConfiguration" in props else None
        suffix = secrets.token_hex(9)[:17]
        if props["FileSystemType"] == "LUSTRE":
            lustre = lustre or {}
            lustre.setdefault("MountName", "".join(secrets.choice(ascii_lowercase) for _ in range(8)))
        if props["FileSystemType"] == "OPENZFS":
            openzfs = openzfs or {}
            openzfs["RootVolumeId"] = f"fsvol-{suffix}"
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
            lustre_configuration=lustre,
            ontap_configuration=props.get("OntapConfiguration"),
            file_system_type_version=props.get("FileSystemTypeVersion"),
            open_zfs_configuration=openzfs,
        )
        # AWS puts a file system in its subnet through network interfaces carrying its security groups.
        ec2 = ec2_backends[account_id][region_name]
        subnet = ec2.get_subnet(props["SubnetIds"][0])
        eni = ec2.create_network_interface(
            subnet,
            None,
            group_ids=props.get("SecurityGroupIds", []),
            description=f"ENI for FSx file system {file_system.file_system_id}",
        )
        file_system.network_interface_ids, file_system.vpc_id = [eni.id], subnet.vpc_id
        return cls(file_system)

    def delete(self, account_id: str, region_name: str) -> None:
        """Stack deletion (never reached with ``DeletionPolicy: Retain``, as on AWS)."""
        fsx_backends[account_id][region_name].delete_file_system(
            self.physical_resource_id, "", None, None, None
        )


def _file_system_with_aws_id(original):
    """Wrap ``FileSystem.__init__``: AWS ids are ``fs-`` and 17 hex digits (moto makes 8, which
    validators such as ParallelCluster's reject); the DNS name and ARN follow the id."""

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

    __init__.wrapped = original
    return __init__


def _file_system_dict_with_network(original):
    """Wrap ``FileSystem.to_dict``: add ``NetworkInterfaceIds`` and ``VpcId`` as AWS returns them."""

    def to_dict(self: Any) -> dict[str, Any]:
        result = original(self)
        if getattr(self, "network_interface_ids", None):
            result.update(NetworkInterfaceIds=self.network_interface_ids, VpcId=self.vpc_id)
        return result

    to_dict.wrapped = original
    return to_dict


def _delete_file_system_and_its_interfaces(original):
    """Wrap ``FSxBackend.delete_file_system``: its network interfaces go with it, as on AWS."""

    def delete_file_system(self: Any, file_system_id: str, *args: Any, **kwargs: Any) -> Any:
        file_system = self.file_systems.get(file_system_id)
        result = original(self, file_system_id, *args, **kwargs)
        ec2 = ec2_backends[self.account_id][self.region_name]
        for eni_id in getattr(file_system, "network_interface_ids", []):
            ec2.enis.pop(eni_id, None)
        return result

    delete_file_system.wrapped = original
    return delete_file_system


EXTENSION_MODELS = (SecurityGroupEgress, BucketPolicy, FsxFileSystem)
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


def _role_with_managed_policies(original):
    """Wrap ``Role.create_from_cloudformation_json``: attach the ``ManagedPolicyArns`` too, and store the
    inline ``Policies`` as JSON documents."""

    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):

        role = original.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        backend = iam_backends[account_id][get_partition(region_name)]
        for policy in cloudformation_json.get("Properties", {}).get("Policies", []):
            document = policy["PolicyDocument"]  # stored as JSON, as PutRolePolicy does (moto: Python repr)
            role.put_policy(
                policy["PolicyName"], document if isinstance(document, str) else json.dumps(document)
            )
        for arn in cloudformation_json.get("Properties", {}).get("ManagedPolicyArns", []):
            backend.attach_role_policy(arn, role.name)
        return role

    create.wrapped = original
    return classmethod(create)


def _role_delete_detaching_policies(original):
    """Wrap ``Role.delete_from_cloudformation_json``: detach managed policies first, as AWS does."""

    def delete(cls, resource_name, cloudformation_json, account_id, region_name):

        backend = iam_backends[account_id][get_partition(region_name)]
        for role in list(backend.roles.values()):
            if role.name == resource_name:
                for arn in list(role.managed_policies):
                    backend.detach_role_policy(arn, role.name)
        original.__func__(cls, resource_name, cloudformation_json, account_id, region_name)

    delete.wrapped = original
    return classmethod(delete)


# The request context S3 evaluates policy conditions in. The emulator serves HTTPS only (see
# testbed.aws), so every request it receives came over TLS.
REQUEST_CONTEXT = {"aws:SecureTransport": "true"}
CONDITION_OPERATORS = {
    "Bool": lambda expected, actual: actual.lower() in [e.lower() for e in expected],
    "StringEquals": lambda expected, actual: actual in expected,
    "StringNotEquals": lambda expected, actual: actual not in expected,
}


def _conditions_hold(conditions: dict[str, Any], context: dict[str, str]) -> bool | None:
    """IAM's condition block against ``context``: a key the request does not carry fails the condition
    (unless ``...IfExists``), as on AWS. ``None`` when an operator is not one of ``CONDITION_OPERATORS``."""
    for operator, pairs in conditions.items():
        base = operator.removesuffix("IfExists")
        if base not in CONDITION_OPERATORS:
            return None
        for key, expected in pairs.items():
            actual = context.get(key)
            if actual is None:
                if not operator.endswith("IfExists"):
                    return False
                continue
            values = [str(value) for value in (expected if isinstance(expected, list) else [expected])]
            if not CONDITION_OPERATORS[base](values, actual):
                return False
    return True


def _bucket_permission_with_request_context(self: Any, action: str, resource: str) -> Any:
    """``FakeBucket.get_permission`` with conditions evaluated against ``REQUEST_CONTEXT``. moto ignores
    ``Bool`` and returns DENIED from any statement whose condition fails, even an ``Allow``, or a
    ``Deny`` that does not apply; here a statement applies only when its conditions hold."""
    if self.policy is None:
        return PermissionResult.NEUTRAL
    statements = json.loads(self.policy)["Statement"]
    result = PermissionResult.NEUTRAL
    for statement in statements if isinstance(statements, list) else [statements]:
        bare = {key: value for key, value in statement.items() if key != "Condition"}
        effect = IAMPolicyStatement(bare).is_action_permitted(action, resource)
        if effect == PermissionResult.NEUTRAL:
            continue
        holds = _conditions_hold(statement.get("Condition") or {}, REQUEST_CONTEXT)
        if holds is None:  # an operator not modelled here: moto's own answer for this statement
            effect = IAMPolicyStatement(statement).is_action_permitted(action, resource)
        elif not holds:
            continue
        if effect == PermissionResult.DENIED:
            return effect
        result = effect
    return result


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
    """``AWS::EC2::SubnetRouteTableAssociation`` through ``associate_route_table``: moto's own glue
    records it aside, so ``describe-route-tables`` showed the subnet on no table (the main one)."""

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
    SubnetRouteTableAssociation.create_from_cloudformation_json = classmethod(_create_association)
    FakeBucket.get_permission = _bucket_permission_with_request_context
    if not hasattr(FileSystem.to_dict, "wrapped"):
        FileSystem.__init__ = _file_system_with_aws_id(FileSystem.__init__)
        FileSystem.to_dict = _file_system_dict_with_network(FileSystem.to_dict)
        FSxBackend.delete_file_system = _delete_file_system_and_its_interfaces(FSxBackend.delete_file_system)
    if not hasattr(Role.create_from_cloudformation_json, "wrapped"):
        Role.create_from_cloudformation_json = _role_with_managed_policies(
            Role.__dict__["create_from_cloudformation_json"]
        )
        Role.delete_from_cloudformation_json = _role_delete_detaching_policies(
            Role.__dict__["delete_from_cloudformation_json"]
        )
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
        "AWS::IAM::Role ManagedPolicyArns",
        "bucket policy conditions",
        "conditional exports",
        "subnet route table associations",
        "EC2 deletes",
    ]
