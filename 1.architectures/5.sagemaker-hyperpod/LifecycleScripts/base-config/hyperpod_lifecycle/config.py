"""The two inputs of a HyperPod node, validated together, and this node's place in them.

``resource_config.json`` is written by the service on every node (``InstanceGroups[].Name``,
``.Instances[].InstanceName``, ``.CustomerIpAddress``); ``provisioning_parameters.json`` is ours
(uploaded with the lifecycle scripts). Every disagreement between them is a ``ConfigError`` whose
one-line message names the file, the value and the fix.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Every value that lands in slurm.conf, /etc/fstab or a hostname is checked against that file's grammar
# (whole-string matches: a newline must never slip into a config line).
PARTITION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
GROUP_NAME = re.compile(r"(?=.{1,63}$)[a-zA-Z0-9](-*[a-zA-Z0-9])*")  # HyperPod's InstanceGroupName
HOSTNAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
MOUNT_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")  # FSx for Lustre MountName
SUPPORTED_WORKLOAD_MANAGERS = ("slurm",)


class ConfigError(ValueError):
    """Inputs that are missing, malformed or disagree; the message is one line with the fix."""


@dataclass(frozen=True)
class Instance:
    """One node of the cluster as the resource config lists it."""

    group: str
    name: str
    ip: str
    instance_type: str = ""

    @property
    def node_name(self) -> str:
        """The Slurm node name: the EC2 default hostname for the IP (``ip-10-1-2-3``)."""
        return "ip-" + self.ip.replace(".", "-")


@dataclass(frozen=True)
class WorkerGroup:
    """A worker instance group and the Slurm partition its nodes join."""

    instance_group_name: str
    partition_name: str


@dataclass(frozen=True)
class ProvisioningParameters:
    """``provisioning_parameters.json``, validated."""

    controller_group: str
    worker_groups: tuple[WorkerGroup, ...]
    fsx_dns_name: str
    fsx_mountname: str
    login_group: str | None = None
    fsx_openzfs_dns_name: str | None = None
    version: str = "1.0.0"
    workload_manager: str = "slurm"


@dataclass(frozen=True)
class ClusterLayout:
    """Both inputs joined: every instance with its group, and the group roles."""

    params: ProvisioningParameters
    groups: dict[str, tuple[Instance, ...]] = field(default_factory=dict)

    @property
    def controller(self) -> Instance:
        """The node that runs slurmctld (the first instance of the controller group)."""
        return self.groups[self.params.controller_group][0]

    def instance_by_ip(self, ip: str) -> Instance:
        """The instance whose CustomerIpAddress is ``ip``; ConfigError naming the known groups otherwise."""
        for instances in self.groups.values():
            for instance in instances:
                if instance.ip == ip:
                    return instance
        raise ConfigError(
            f"this node's IP {ip} is in no instance group of resource_config.json "
            f"(groups: {', '.join(sorted(self.groups))}); pass --ip with an address listed there, "
            "or check that the file belongs to this cluster"
        )

    def role(self, instance: Instance) -> str:
        """controller, login or worker."""
        if instance.group == self.params.controller_group:
            return "controller"
        if instance.group == self.params.login_group:
            return "login"
        return "worker"

    def partitions(self) -> dict[str, list[Instance]]:
        """Partition name -> its instances, in the order the worker groups are listed."""
        found: dict[str, list[Instance]] = {}
        for group in self.params.worker_groups:
            found.setdefault(group.partition_name, []).extend(self.groups[group.instance_group_name])
        return found


def read_json(path: Path, what: str) -> Any:
    """Parse a JSON file; ConfigError naming the file and the problem."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} not found; pass its path or check the lifecycle upload") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a folder; pass the JSON file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text; pass the JSON file") from None
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot read it ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{what} {path} is not valid JSON (line {exc.lineno}: {exc.msg}); fix the file"
        ) from None


def parse_resource_config(data: Any, source: str = "resource_config.json") -> dict[str, tuple[Instance, ...]]:
    """Group name -> instances from the service's resource config."""
    groups_data = data.get("InstanceGroups") if isinstance(data, dict) else None
    if not isinstance(groups_data, list) or not groups_data:
        raise ConfigError(f"{source} has no InstanceGroups list; it should be the file the service writes")
    groups: dict[str, tuple[Instance, ...]] = {}
    for group in groups_data:
        name = group.get("Name") if isinstance(group, dict) else None
        if not isinstance(name, str) or not name:
            raise ConfigError(
                f"{source}: an instance group has no Name; it should be the file the service writes"
            )
        instances = []
        instance_type = str(group.get("InstanceType") or "")
        items = group.get("Instances") or []
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise ConfigError(f"{source}: group {name} has Instances that are not a list of objects")
        for item in items:
            ip, instance_name = item.get("CustomerIpAddress"), item.get("InstanceName")
            if not isinstance(ip, str) or not re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", ip):
                raise ConfigError(f"{source}: group {name} has an instance without a CustomerIpAddress")
            instances.append(Instance(name, str(instance_name or ip), ip, instance_type))
        groups[name] = tuple(instances)
    return groups


def _required_text(data: dict, key: str, source: str, grammar: re.Pattern, what: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{source}: {key} is missing or empty; set it (see the README's example)")
    if not grammar.fullmatch(value.strip()):
        raise ConfigError(f"{source}: {key} {value!r} is not {what}; fix the value")
    return value.strip()


def _optional_text(data: dict, key: str, source: str, grammar: re.Pattern, what: str) -> str | None:
    if data.get(key) in (None, ""):
        return None
    return _required_text(data, key, source, grammar, what)


def parse_provisioning_parameters(
    data: Any, source: str = "provisioning_parameters.json"
) -> ProvisioningParameters:
    """Validate the shape of the provisioning parameters (names are checked against groups later)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a JSON object; see the README's example")
    manager = data.get("workload_manager", "slurm")
    if manager not in SUPPORTED_WORKLOAD_MANAGERS:
        raise ConfigError(f'{source}: workload_manager {manager!r} is not supported; set it to "slurm"')
    workers = data.get("worker_groups")
    if not isinstance(workers, list) or not workers:
        raise ConfigError(
            f"{source}: worker_groups must list at least one {{instance_group_name, partition_name}}"
        )
    groups = []
    for item in workers:
        name = item.get("instance_group_name") if isinstance(item, dict) else None
        partition = item.get("partition_name") if isinstance(item, dict) else None
        if (
            not isinstance(name, str)
            or not GROUP_NAME.fullmatch(name)
            or not isinstance(partition, str)
            or not PARTITION_NAME.fullmatch(partition)
        ):
            raise ConfigError(
                f"{source}: worker group {item!r} needs an instance_group_name (letters, digits, '-'; at "
                "most 63) and a partition_name of letters, digits, '-' or '_'"
            )
        groups.append(WorkerGroup(name, partition))
    return ProvisioningParameters(
        controller_group=_required_text(
            data, "controller_group", source, GROUP_NAME, "an instance group name"
        ),
        worker_groups=tuple(groups),
        fsx_dns_name=_required_text(data, "fsx_dns_name", source, HOSTNAME, "a DNS name"),
        fsx_mountname=_required_text(
            data, "fsx_mountname", source, MOUNT_NAME, "an FSx for Lustre mount name"
        ),
        login_group=_optional_text(data, "login_group", source, GROUP_NAME, "an instance group name"),
        fsx_openzfs_dns_name=_optional_text(data, "fsx_openzfs_dns_name", source, HOSTNAME, "a DNS name"),
        version=str(data.get("version", "1.0.0")),
        workload_manager=manager,
    )


def join(params: ProvisioningParameters, groups: dict[str, tuple[Instance, ...]]) -> ClusterLayout:
    """Check that every group named in the parameters exists (and has instances); the joined layout."""
    named = [("controller_group", params.controller_group)]
    named += [("login_group", params.login_group)] if params.login_group else []
    named += [("worker_groups[].instance_group_name", g.instance_group_name) for g in params.worker_groups]
    for key, name in named:
        if name not in groups:
            raise ConfigError(
                f"provisioning_parameters.json: {key} {name!r} is not an instance group of "
                f"resource_config.json ({', '.join(sorted(groups))}); make the names equal the "
                "InstanceGroupName values of the cluster"
            )
        if not groups[name]:
            raise ConfigError(
                f"resource_config.json: instance group {name!r} has no instances; give it InstanceCount >= 1"
            )
    return ClusterLayout(params, groups)


def load(resource_config: Path, provisioning_parameters: Path) -> ClusterLayout:
    """Read, validate and join both files."""
    groups = parse_resource_config(read_json(resource_config, "resource config"), str(resource_config))
    params = parse_provisioning_parameters(
        read_json(provisioning_parameters, "provisioning parameters"), str(provisioning_parameters)
    )
    return join(params, groups)
