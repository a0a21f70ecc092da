"""Every CloudFormation template of the repository: no account, region, Availability Zone or partition
written into a value (descriptions may give examples), and every template is known to a test folder."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from testbed.cfn import load_template
from testbed.walkthrough import repository_files

ROOT = Path(__file__).resolve().parents[1]
REGION = r"(?:us|eu|ap|sa|ca|me|af|il|mx)-(?:gov-)?(?:north|south|east|west|central)(?:east|west)?-\d"
HARD_CODED = {
    "account id": re.compile(r"(?<![\w-])\d{12}(?![\w-])"),
    "Availability Zone": re.compile(rf"\b{REGION}[a-z]\b"),
    "region": re.compile(rf"\b{REGION}\b"),
    "partition": re.compile(r"\barn:aws(?:-cn|-us-gov)?:"),
}
PROSE = {"Description", "ConstraintDescription", "comment"}  # examples are welcome there


def templates() -> list[Path]:
    candidates = repository_files("1.architectures/**/*.yaml", "4.validation_observability/**/*.yaml")
    return [ROOT / p for p in candidates if "AWSTemplateFormatVersion" in (ROOT / p).read_text()]


def values(node: Any, path: str = "") -> list[tuple[str, str]]:
    """Every string value with its path, prose fields left out."""
    if isinstance(node, dict):
        return [
            item for key, child in node.items() if key not in PROSE for item in values(child, f"{path}.{key}")
        ]
    if isinstance(node, list):
        return [item for index, child in enumerate(node) for item in values(child, f"{path}[{index}]")]
    return [(path, node)] if isinstance(node, str) else []


def test_the_templates_are_found():
    names = {path.relative_to(ROOT).as_posix() for path in templates()}
    assert "1.architectures/5.sagemaker-hyperpod/cluster-prerequisites.yaml" in names
    assert len(names) >= 8  # S3, two VPCs, ParallelCluster, Batch, HyperPod, two managed


@pytest.mark.parametrize("template", templates(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_account_region_zone_or_partition_in_values(template):
    found = [
        f"{path}: {kind} in {value!r}"
        for path, value in values(load_template(template))
        for kind, pattern in HARD_CODED.items()
        if pattern.search(value)
    ]
    assert not found, (
        f"{template.name}: use AWS::AccountId, AWS::Region, a parameter or AWS::Partition: {found}"
    )


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("arn:aws:iam::123456789012:role/x", "account id"),
        ("us-west-2b", "Availability Zone"),
        ("com.amazonaws.eu-central-1.s3", "region"),
        ("arn:aws:s3:::bucket", "partition"),
    ],
)
def test_the_patterns_catch_what_they_should(value, kind):
    assert HARD_CODED[kind].search(value)
    assert not any(
        p.search("arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:subnet/*")
        for p in HARD_CODED.values()
    )
