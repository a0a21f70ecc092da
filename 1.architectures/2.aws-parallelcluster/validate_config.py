"""Validate ParallelCluster v3 cluster configs with aws-parallelcluster's own schema, and its validators.

    python validate_config.py build/gpu-efa.yaml build/cpu-small.yaml
    python validate_config.py --examples     # every template x capacity option, rendered from sample outputs
    python validate_config.py --against-aws build/gpu-efa.yaml    # + the validators, against your account

Loads each file with ``pcluster.schemas.cluster_schema.ClusterSchema().load`` (no AWS call). With
``--against-aws`` it then runs the package's full validators (``BaseClusterConfig.validate``, what
``pcluster create-cluster`` runs before it creates anything): they call AWS (instance types and their
offerings in the region, the official ParallelCluster AMI, subnets, security groups, the key pair, IAM
policies, ...) with your credentials, or the emulator that ``AWS_ENDPOINT_URL`` points at. Needs the
``aws-parallelcluster`` package, which lives in its own environment (from the repository root:
``nox -s pcluster -- FILES``). Prints one line per config, then with ``--against-aws`` one line per
finding (level, validator, message); exits 1 when any config is invalid or has an ERROR finding.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import logging
import os
import pkgutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

FOLDER = Path(__file__).resolve().parent
LEVELS = ("ERROR", "WARNING", "INFO")


def flatten(messages: Any, prefix: str = "") -> list[str]:
    """marshmallow's nested error dict as ``Key.Path: message`` lines."""
    if isinstance(messages, dict):
        return [line for key, value in messages.items() for line in flatten(value, f"{prefix}{key}.")]
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [f"{prefix.rstrip('.') or '(top)'}: {' '.join(messages)}"]
    if isinstance(messages, list):
        return [line for item in messages for line in flatten(item, prefix)]
    return [f"{prefix.rstrip('.') or '(top)'}: {messages}"]


def load(path: Path) -> tuple[Any, list[str]]:
    """The cluster config object of one file and its schema problems (object None when there are any)."""
    from marshmallow import ValidationError  # noqa: PLC0415 - only in the pcluster environment
    from pcluster.schemas.cluster_schema import ClusterSchema  # noqa: PLC0415

    config = yaml.safe_load(path.read_text())
    if not isinstance(config, dict) or not config.get("Region"):
        return None, ["Region: missing (the cluster's region; create_config.py writes it)"]
    os.environ["AWS_DEFAULT_REGION"] = config["Region"]  # pcluster's models read the region from here
    logging.disable(logging.CRITICAL)  # offline: pcluster logs its failed AWS look-ups (capacity blocks)
    try:
        return ClusterSchema(cluster_name=path.stem).load(config), []
    except ValidationError as exc:
        return None, flatten(exc.messages)
    finally:
        logging.disable(logging.NOTSET)


def validate(path: Path) -> list[str]:
    """Schema problems of one config file (empty when valid)."""
    return load(path)[1]


def known_validators() -> set[str]:
    """Names of every validator class of aws-parallelcluster (what ``type:NAME`` may name)."""
    import pcluster.config.cluster_config  # noqa: PLC0415, F401 - first: the validators import it back
    import pcluster.validators as package  # noqa: PLC0415
    from pcluster.validators.common import Validator  # noqa: PLC0415

    names = set()
    for module in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
        for name, member in inspect.getmembers(importlib.import_module(module.name), inspect.isclass):
            if issubclass(member, Validator) and not inspect.isabstract(member):
                names.add(name)
    return names


def one_line(text: Any) -> str:
    return " ".join(str(text).split())


def validate_against_aws(
    config: Any, suppress: set[str], official_ami_owner: str | None
) -> tuple[list[tuple[str, str, str]], dict[str, int]]:
    """Run the package's validators on a loaded config: ``([(level, validator, message)], counts)``.

    ``suppress``: validator class names not to run (``pcluster --suppress-validators type:NAME``).
    ``official_ami_owner``: where to look up the official ParallelCluster AMI (None: as pcluster does,
    owner ``amazon`` or the config's ``DevSettings.AmiSearchFilters``). A failed AWS look-up that
    ParallelCluster makes while preparing the validators (a subnet or instance type that does not
    exist, no official AMI) ends the run with one ERROR named after the AWS call.
    """
    from pcluster.aws.aws_api import AWSApi  # noqa: PLC0415
    from pcluster.aws.common import AWSClientError, Cache  # noqa: PLC0415
    from pcluster.config.cluster_config import AmiSearchFilters  # noqa: PLC0415
    from pcluster.config.common import ValidatorSuppressor  # noqa: PLC0415

    class Recorder(ValidatorSuppressor):
        """Suppresses the named validators and counts what runs and what does not."""

        def __init__(self) -> None:
            self.counts = {"run": 0, "suppressed": 0}

        def suppress_validator(self, validator: Any) -> bool:
            hit = validator.type in suppress
            self.counts["suppressed" if hit else "run"] += 1
            return hit

    AWSApi.reset()
    Cache.clear_all()
    recorder = Recorder()
    findings: list[tuple[str, str, str]] = []
    logging.disable(logging.CRITICAL)  # pcluster logs each failed AWS call; the findings say it once
    try:
        if official_ami_owner:
            config.official_ami = AWSApi.instance().ec2.get_official_image_id(
                config.image.os, config.head_node.architecture, AmiSearchFilters(owner=official_ami_owner)
            )
        results = config.validate([recorder])
        findings = [(str(r.level), r.validator_type, one_line(r.message)) for r in results]
    except AWSClientError as exc:
        findings = [("ERROR", exc.function_name or "AWS", f"{one_line(exc)} (validation stopped there)")]
    except Exception as exc:  # pcluster reports any of these as "Invalid cluster configuration"
        findings = [("ERROR", type(exc).__name__, f"{one_line(exc)} (validation stopped there)")]
    finally:
        logging.disable(logging.NOTSET)
    unique = list(dict.fromkeys(findings))  # the same check on head node and queue reports twice
    unique.sort(key=lambda finding: LEVELS.index(finding[0]) if finding[0] in LEVELS else 0)
    return unique, recorder.counts


def example_configs(folder: Path) -> list[Path]:
    """Each template with each capacity option, rendered from sample stack outputs (no AWS call)."""
    spec = importlib.util.spec_from_file_location("create_config", FOLDER / "create_config.py")
    create_config = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(create_config)
    prereq = {
        "VpcStackName": "ml-vpc",
        "HomeNfsSecurityGroupId": "sg-0123456789abcdef0",
        "FsxLustreFileSystemId": "fs-0123456789abcdef0",
        "FsxOpenZfsRootVolumeId": "fsvol-0123456789abcdef0",
    }
    vpc = {
        "PrimaryAvailabilityZone": "us-west-2a",
        "PrimaryPrivateSubnetId": "subnet-0123456789abcdef0",
        "PrimaryPublicSubnetId": "subnet-0123456789abcdef1",
        "EfaSecurityGroupId": "sg-0123456789abcdef1",
        "FsxLustreSecurityGroupId": "sg-0123456789abcdef2",
    }
    variants = [
        ("cpu-small", {}, prereq),
        ("gpu-efa", {"capacity": "ondemand"}, prereq),
        ("gpu-efa", {"capacity": "odcr", "capacity_reservation_id": "cr-0123456789abcdef0"}, prereq),
        (
            "gpu-efa",
            {"capacity": "capacity-block", "capacity_reservation_id": "cr-0123456789abcdef0"},
            prereq,
        ),
        (
            "gpu-efa",
            {"instance_type": "g5.12xlarge"},
            {k: prereq[k] for k in ("VpcStackName", "HomeNfsSecurityGroupId")},
        ),
        ("trn-efa", {"capacity": "ondemand"}, prereq),
        (
            "trn-efa",
            {
                "instance_type": "trn2.48xlarge",
                "capacity": "capacity-block",
                "capacity_reservation_id": "cr-0123456789abcdef0",
            },
            prereq,
        ),
    ]
    paths = []
    for index, (template, options, outputs) in enumerate(variants):
        config = create_config.render(
            template,
            outputs,
            vpc,
            region="us-west-2",
            partition="aws",
            prereq_stack="ml-pcluster-prereq",
            key_name="example-key",
            **options,
        )
        path = folder / f"example-{index}-{template}-{options.get('capacity', 'ondemand')}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        paths.append(path)
    return paths


def must_fail(folder: Path, example: Path) -> tuple[Path, list[str]]:
    """A copy of ``example`` with a misspelled key: proves the schema check rejects what it should."""
    config = yaml.safe_load(example.read_text())
    resource = config["Scheduling"]["SlurmQueues"][0]["ComputeResources"][0]
    resource["MaxNodes"] = resource.pop("MaxCount")
    path = folder / "misspelled-key.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, validate(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", type=Path)
    parser.add_argument("--examples", action="store_true", help="also validate the rendered examples")
    parser.add_argument(
        "--against-aws",
        action="store_true",
        help="after the schema, run aws-parallelcluster's validators, which call AWS (your credentials, "
        "or the emulator AWS_ENDPOINT_URL points at)",
    )
    parser.add_argument(
        "--suppress-validator",
        dest="suppress_validators",
        action="append",
        default=[],
        metavar="type:NAME",
        help="with --against-aws: a validator not to run (repeatable), as pcluster's --suppress-validators",
    )
    parser.add_argument(
        "--official-ami-owner",
        metavar="OWNER",
        help="with --against-aws: owner (account id, or self) of the official ParallelCluster AMI to look "
        "up; default as pcluster: amazon",
    )
    args = parser.parse_args(argv)
    if importlib.util.find_spec("pcluster") is None:
        print(
            "error: aws-parallelcluster is not installed here; from the repository root run "
            "`nox -s pcluster -- FILES` (its own environment)",
            file=sys.stderr,
        )
        return 2
    if not args.configs and not args.examples:
        parser.error("give config files or --examples")
    if args.against_aws and args.examples:
        parser.error("--against-aws checks your rendered configs: the examples hold sample IDs")
    if not args.against_aws and (args.suppress_validators or args.official_ami_owner):
        parser.error("--suppress-validator and --official-ami-owner go with --against-aws")
    missing = [str(path) for path in args.configs if not path.is_file()]
    if missing:
        print(
            f"error: no such config file {missing[0]}: render it with create_config.py first", file=sys.stderr
        )
        return 2
    from importlib.metadata import version  # noqa: PLC0415

    pcluster_version = version("aws-parallelcluster")
    suppress = set()
    if args.against_aws:
        suppress = {item.removeprefix("type:") for item in args.suppress_validators}
        bad = [item for item in args.suppress_validators if not item.startswith("type:")]
        bad += [f"type:{name}" for name in sorted(suppress - known_validators())]
        if bad:
            print(
                f"error: --suppress-validator {bad[0]}: not type:NAME of an "
                f"aws-parallelcluster {pcluster_version} validator",
                file=sys.stderr,
            )
            return 2

    failed = 0
    with tempfile.TemporaryDirectory() as scratch:
        paths = list(args.configs) + (example_configs(Path(scratch)) if args.examples else [])
        for path in paths:
            config, problems = load(path)
            label = path.name if args.examples and path.parent == Path(scratch) else str(path)
            if problems:
                failed += 1
                print(f"{label}: INVALID: {'; '.join(problems)}")
            elif args.against_aws:
                failed += report_against_aws(
                    label, config, suppress, args.official_ami_owner, pcluster_version
                )
            else:
                print(f"{label}: valid (aws-parallelcluster {pcluster_version} cluster schema)")
        if args.examples:
            bad, problems = must_fail(Path(scratch), paths[-1])
            print(f"{bad.name} (must be rejected): {'; '.join(problems) or 'ACCEPTED'}")
            failed += 0 if problems else 1
    return 1 if failed else 0


def report_against_aws(
    label: str, config: Any, suppress: set[str], ami_owner: str | None, version: str
) -> int:
    """Print the config's line and one line per finding; 1 when a finding is an ERROR."""
    findings, counts = validate_against_aws(config, suppress, ami_owner)
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    where = f"AWS {config.region}" + (f" at {endpoint}" if endpoint else "")
    tally = ", ".join(f"{sum(level == found for found, _, _ in findings)} {level}" for level in LEVELS)
    errors = any(level == "ERROR" for level, _, _ in findings)
    print(
        f"{label}: {'INVALID' if errors else 'valid'} against {where} (aws-parallelcluster {version} "
        f"validators: {counts['run']} run, {counts['suppressed']} suppressed; {tally})"
    )
    for level, name, message in findings:
        print(f"  {level} {name}: {message}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
