"""Validate ParallelCluster v3 cluster configs offline against aws-parallelcluster's own schema.

    python validate_config.py build/gpu-efa.yaml build/cpu-small.yaml
    python validate_config.py --examples     # every template x capacity option, rendered from sample outputs

Loads each file with ``pcluster.schemas.cluster_schema.ClusterSchema().load`` (no AWS call). Needs the
``aws-parallelcluster`` package, which lives in its own environment (from the repository root:
``nox -s pcluster -- FILES``). Prints one line per config; exits 1 when any is invalid, naming the keys.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

FOLDER = Path(__file__).resolve().parent


def flatten(messages: Any, prefix: str = "") -> list[str]:
    """marshmallow's nested error dict as ``Key.Path: message`` lines."""
    if isinstance(messages, dict):
        return [line for key, value in messages.items() for line in flatten(value, f"{prefix}{key}.")]
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [f"{prefix.rstrip('.') or '(top)'}: {' '.join(messages)}"]
    if isinstance(messages, list):
        return [line for item in messages for line in flatten(item, prefix)]
    return [f"{prefix.rstrip('.') or '(top)'}: {messages}"]


def validate(path: Path) -> list[str]:
    """Problems of one config file (empty when valid)."""
    from marshmallow import ValidationError  # noqa: PLC0415 - only in the pcluster environment
    from pcluster.schemas.cluster_schema import ClusterSchema  # noqa: PLC0415

    config = yaml.safe_load(path.read_text())
    if not isinstance(config, dict) or not config.get("Region"):
        return ["Region: missing (the cluster's region; create_config.py writes it)"]
    os.environ["AWS_DEFAULT_REGION"] = config["Region"]  # pcluster's models read the region from here
    logging.disable(logging.CRITICAL)  # offline: pcluster logs its failed AWS look-ups (capacity blocks)
    try:
        ClusterSchema(cluster_name=path.stem).load(config)
    except ValidationError as exc:
        return flatten(exc.messages)
    finally:
        logging.disable(logging.NOTSET)
    return []


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
    missing = [str(path) for path in args.configs if not path.is_file()]
    if missing:
        print(
            f"error: no such config file {missing[0]}: render it with create_config.py first", file=sys.stderr
        )
        return 2
    from importlib.metadata import version  # noqa: PLC0415

    pcluster_version = version("aws-parallelcluster")

    failed = 0
    with tempfile.TemporaryDirectory() as scratch:
        paths = list(args.configs) + (example_configs(Path(scratch)) if args.examples else [])
        for path in paths:
            problems = validate(path)
            label = path.name if args.examples and path.parent == Path(scratch) else str(path)
            if problems:
                failed += 1
                print(f"{label}: INVALID: {'; '.join(problems)}")
            else:
                print(f"{label}: valid (aws-parallelcluster {pcluster_version} cluster schema)")
        if args.examples:
            bad, problems = must_fail(Path(scratch), paths[-1])
            print(f"{bad.name} (must be rejected): {'; '.join(problems) or 'ACCEPTED'}")
            failed += 0 if problems else 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
