"""The one-AZ and multi-AZ VPC templates must not drift apart (offline).

Both templates are loaded in long form and compared section by section (parameters, conditions,
resources, outputs): every logical ID they share must have the same definition (type, condition,
properties, metadata), and the only differences allowed are the ones the number of AZs brings, listed
explicitly below. An intentional change made to one template only fails with the section, the logical
ID and the property path named, e.g. ``Resources.FsxLustreIngress988.Properties.ToPort``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from testbed.cfn import load_template

FOLDER = Path(__file__).resolve().parents[1]
ONE_AZ, MULTI_AZ = FOLDER / "vpc-one-az.yaml", FOLDER / "vpc-multi-az.yaml"
SECTIONS = ("Parameters", "Conditions", "Resources", "Outputs")

# Logical IDs that exist in one template only, by section: the AZ parameters, and in the multi-AZ
# template the subnets (and their route table associations) of AZs 2 to 6 and their conditions.
ONLY_IN_ONE_AZ = {"Parameters": {"AvailabilityZone"}}
ONLY_IN_MULTI_AZ = {
    "Parameters": {"AvailabilityZones", "NumberOfAZs"},
    "Conditions": {f"{prefix}AZ{i}" for prefix in ("Has", "PublicOn") for i in range(3, 7)},
    "Resources": {
        f"{kind}Subnet{i}{suffix}"
        for kind in ("Public", "Private")
        for i in range(2, 7)
        for suffix in ("", "RouteTableAssociation")
    },
}


def _subnet_list(kind: str) -> dict[str, Any]:
    """The multi-AZ output value: subnets 1 and 2 always, 3 to 6 under their conditions."""
    optional = [
        {"Fn::If": [f"HasAZ{i}", {"Ref": f"{kind}Subnet{i}"}, {"Ref": "AWS::NoValue"}]} for i in range(3, 7)
    ]
    return {"Fn::Join": [",", [{"Ref": f"{kind}Subnet1"}, {"Ref": f"{kind}Subnet2"}, *optional]]}


ONE_AZ_PRIMARY = {"Ref": "AvailabilityZone"}
MULTI_AZ_PRIMARY = {"Fn::Select": [0, {"Ref": "AvailabilityZones"}]}
# The allowed differences inside shared logical IDs: (section, logical ID, property path) ->
# (one-AZ value, multi-AZ value). Both values are pinned, so even these cannot drift silently.
ALLOWED_DIFFERENCES = {
    ("Resources", "PublicSubnet1", "Properties.AvailabilityZone"): (ONE_AZ_PRIMARY, MULTI_AZ_PRIMARY),
    ("Resources", "PrivateSubnet1", "Properties.AvailabilityZone"): (ONE_AZ_PRIMARY, MULTI_AZ_PRIMARY),
    ("Outputs", "PrimaryAvailabilityZone", "Value"): (ONE_AZ_PRIMARY, MULTI_AZ_PRIMARY),
    ("Outputs", "PrivateSubnetIds", "Value"): ({"Ref": "PrivateSubnet1"}, _subnet_list("Private")),
    ("Outputs", "PublicSubnetIds", "Value"): ({"Ref": "PublicSubnet1"}, _subnet_list("Public")),
}

ABSENT = "<absent>"


def _pop(tree: dict[str, Any], dotted: str) -> Any:
    """Remove and return the value at a dotted path (``ABSENT`` when it is not there)."""
    *parents, last = dotted.split(".")
    for key in parents:
        tree = tree.get(key, {})
    return tree.pop(last, ABSENT)


def _diff(one: Any, multi: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    """Leaf paths where two definitions differ, with both values."""
    if isinstance(one, dict) and isinstance(multi, dict):
        for key in sorted(one.keys() | multi.keys()):
            yield from _diff(one.get(key, ABSENT), multi.get(key, ABSENT), f"{path}.{key}")
    elif isinstance(one, list) and isinstance(multi, list) and len(one) == len(multi):
        for i, (a, b) in enumerate(zip(one, multi, strict=True)):
            yield from _diff(a, b, f"{path}[{i}]")
    elif one != multi:
        yield path, one, multi


def template_drift(one: dict[str, Any], multi: dict[str, Any]) -> list[str]:
    """One line per difference that is not in the allowed lists above; empty when in step."""
    problems = []
    for section in SECTIONS:
        a, b = one.get(section, {}), multi.get(section, {})
        for name in sorted(set(a) - set(b) - ONLY_IN_ONE_AZ.get(section, set())):
            problems.append(f"{section}.{name}: only in vpc-one-az.yaml (add it to vpc-multi-az.yaml)")
        for name in sorted(set(b) - set(a) - ONLY_IN_MULTI_AZ.get(section, set())):
            problems.append(f"{section}.{name}: only in vpc-multi-az.yaml (add it to vpc-one-az.yaml)")
        for name in sorted(set(a) & set(b)):
            first, second = copy.deepcopy(a[name]), copy.deepcopy(b[name])
            for (where, logical_id, path), expected in ALLOWED_DIFFERENCES.items():
                if (where, logical_id) == (section, name):
                    found = (_pop(first, path), _pop(second, path))
                    if found != expected:
                        problems.append(
                            f"{section}.{name}.{path}: one-AZ {found[0]!r}, multi-AZ {found[1]!r}; "
                            f"the allowed difference is {expected[0]!r} / {expected[1]!r}"
                        )
            problems += [
                f"{path}: one-AZ {x!r} != multi-AZ {y!r}"
                for path, x, y in _diff(first, second, f"{section}.{name}")
            ]
    return problems


def test_shared_parameters_conditions_resources_and_outputs_are_identical():
    problems = template_drift(load_template(ONE_AZ), load_template(MULTI_AZ))
    assert problems == [], "the VPC templates drifted apart:\n" + "\n".join(problems)


def test_every_allowed_difference_still_exists():
    """A stale entry in the allowed lists would hide nothing today but could hide a drift later."""
    one, multi = load_template(ONE_AZ), load_template(MULTI_AZ)
    for section, names in ONLY_IN_ONE_AZ.items():
        assert names <= set(one[section]) - set(multi[section]), section
    for section, names in ONLY_IN_MULTI_AZ.items():
        assert names <= set(multi[section]) - set(one[section]), section
    for section, logical_id, _path in ALLOWED_DIFFERENCES:
        assert logical_id in one[section] and logical_id in multi[section], (section, logical_id)


def test_a_drift_is_reported_with_resource_and_property():
    one, multi = load_template(ONE_AZ), load_template(MULTI_AZ)
    multi["Resources"]["FsxLustreIngress988"]["Properties"]["ToPort"] = 989
    del multi["Resources"]["EfaSelfEgress"]
    one["Parameters"]["FlowLogRetentionDays"]["Default"] = 30
    one["Resources"]["PrivateSubnet1"]["Properties"]["AvailabilityZone"] = {"Ref": "Other"}
    one["Resources"]["FlowLogGroup"]["Metadata"]["checkov"]["skip"][0]["comment"] = "changed"
    problems = template_drift(one, multi)
    assert "Resources.FsxLustreIngress988.Properties.ToPort: one-AZ 988 != multi-AZ 989" in problems
    assert any(p.startswith("Resources.EfaSelfEgress: only in vpc-one-az.yaml") for p in problems)
    assert "Parameters.FlowLogRetentionDays.Default: one-AZ 30 != multi-AZ 14" in problems
    assert any(p.startswith("Resources.PrivateSubnet1.Properties.AvailabilityZone: one-AZ") for p in problems)
    assert any(p.startswith("Resources.FlowLogGroup.Metadata.checkov.skip[0].comment") for p in problems)
    assert len(problems) == 5, problems
