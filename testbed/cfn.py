"""Offline rendering of a CloudFormation template's parameters and conditions.

What CloudFormation decides before it creates anything, computed here without an account:
parameter values (defaults plus overrides) checked against ``AllowedValues``, ``AllowedPattern``,
``MinValue``/``MaxValue`` and ``MinLength``/``MaxLength``, then every ``Condition`` evaluated
(``Fn::Equals``, ``Fn::Not``, ``Fn::And``, ``Fn::Or``, ``Condition``, ``Ref``, ``Fn::Select``,
``Fn::FindInMap``), and
the resources and outputs that exist under them. Tests use it to check, for example, that 3 AZs
give 3 private subnets and that turning public subnets off removes the NAT gateway.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class TemplateParameterError(ValueError):
    """A parameter value that CloudFormation would reject."""


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that reads the short-form tags (``!Ref``, ``!Sub``, ...) as their long form."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    """A template (YAML with short-form tags, or JSON) as a dict in long form."""
    return yaml.load(Path(path).read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


@dataclass
class Rendered:
    """Parameter values, condition values, and what exists under them."""

    parameters: dict[str, Any]
    conditions: dict[str, bool]
    resources: dict[str, str]  # logical id -> type
    outputs: list[str]


def resolve_parameters(template: dict[str, Any], overrides: dict[str, str] | None = None) -> dict[str, Any]:
    """Defaults plus ``overrides``, each checked against its constraints; lists split on commas."""
    declared = template.get("Parameters", {})
    unknown = sorted(set(overrides or {}) - set(declared))
    if unknown:
        raise TemplateParameterError(
            f"unknown parameter(s) {unknown}; the template declares {sorted(declared)}"
        )
    values = {}
    for name, spec in declared.items():
        raw = (overrides or {}).get(name, spec.get("Default"))
        if raw is None:
            raise TemplateParameterError(f"parameter {name} has no default; pass {name}=<value>")
        values[name] = _check_parameter(name, spec, str(raw))
    return values


def _check_parameter(name: str, spec: dict[str, Any], raw: str) -> Any:
    kind = spec.get("Type", "String")
    items = (
        [item.strip() for item in raw.split(",")]
        if kind.startswith(("List<", "CommaDelimitedList"))
        else [raw]
    )
    for item in items:
        if "AllowedValues" in spec and item not in [str(v) for v in spec["AllowedValues"]]:
            raise TemplateParameterError(f"{name}={item!r} is not one of {spec['AllowedValues']}")
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], item):
            reason = spec.get("ConstraintDescription", f"pattern {spec['AllowedPattern']}")
            raise TemplateParameterError(f"{name}={item!r} does not match: {reason}")
        if kind == "Number" or "MinValue" in spec or "MaxValue" in spec:
            _check_number(name, spec, item)
        if not spec.get("MinLength", 0) <= len(item) <= spec.get("MaxLength", len(item)):
            raise TemplateParameterError(f"{name}={item!r} must be {spec.get('MinLength', 0)}+ characters")
    return items if len(items) > 1 or kind.startswith(("List<", "CommaDelimitedList")) else raw


def _check_number(name: str, spec: dict[str, Any], item: str) -> None:
    try:
        number = float(item)
    except ValueError:
        raise TemplateParameterError(f"{name}={item!r} is not a number") from None
    if not spec.get("MinValue", number) <= number <= spec.get("MaxValue", number):
        raise TemplateParameterError(
            f"{name}={item} is outside [{spec.get('MinValue')}, {spec.get('MaxValue')}]"
        )


def _value(node: Any, params: dict[str, Any], conditions: dict[str, Any], template: dict) -> Any:
    """Evaluate the intrinsic functions allowed in a Conditions section."""
    if not isinstance(node, dict):
        return node
    (function, args), *_ = node.items()
    if function == "Ref":
        if args not in params:
            raise TemplateParameterError(f"Ref {args} in a condition is not a parameter")
        return params[args]
    if function == "Condition":
        return _condition(args, params, conditions, template)
    if function == "Fn::FindInMap":
        mapping, top, second = (_value(arg, params, conditions, template) for arg in args)
        return template["Mappings"][mapping][top][second]
    if function == "Fn::Select":
        return _value(args[1], params, conditions, template)[int(args[0])]
    evaluated = [_value(arg, params, conditions, template) for arg in args]
    operations = {
        "Fn::Equals": lambda: str(evaluated[0]) == str(evaluated[1]),
        "Fn::Not": lambda: not evaluated[0],
        "Fn::And": lambda: all(evaluated),
        "Fn::Or": lambda: any(evaluated),
    }
    if function not in operations:
        raise TemplateParameterError(f"{function} is not allowed in Conditions")
    return operations[function]()


def _condition(name: str, params: dict[str, Any], conditions: dict[str, Any], template: dict) -> bool:
    if name not in conditions:
        conditions[name] = bool(_value(template["Conditions"][name], params, conditions, template))
    return conditions[name]


def render(
    template: dict[str, Any], overrides: dict[str, str] | None = None, region: str = "us-east-1"
) -> Rendered:
    """Parameters, conditions, and the resources and outputs that exist for these values."""
    params = resolve_parameters(template, overrides)
    params_with_pseudo = {**params, "AWS::Region": region, "AWS::AccountId": "123456789012"}
    conditions: dict[str, bool] = {}
    for name in template.get("Conditions", {}):
        _condition(name, params_with_pseudo, conditions, template)
    resources = {
        name: body["Type"]
        for name, body in template.get("Resources", {}).items()
        if conditions.get(body.get("Condition", ""), True)
    }
    outputs = [
        name
        for name, body in template.get("Outputs", {}).items()
        if conditions.get(body.get("Condition", ""), True)
    ]
    return Rendered(params, conditions, resources, outputs)
