"""IAM identity-policy evaluation, for the emulator's ``iam:SimulatePrincipalPolicy`` (see moto_extensions).

Modelled as AWS documents it for one account: every ``Deny`` that applies wins (``explicitDeny``); else
an ``Allow`` that applies, and, when the principal has a permissions boundary, an ``Allow`` of the
boundary too, gives ``allowed``; anything else is ``implicitDeny``. A statement applies when its
``Action`` (or ``NotAction``, case-insensitive) and ``Resource`` (or ``NotResource``) match, with ``*``
and ``?`` wildcards and policy variables (``${aws:username}``) taken from the simulation's context, and
its ``Condition`` holds.

Conditions: the ``String...``, ``Arn...``, ``Bool`` and ``Null`` operators (and ``...IfExists``) on the
context's keys. A key the context lacks fails a condition, as on AWS, and is reported missing. What is
not modelled (another operator, ``ForAnyValue:``/``ForAllValues:``, a negated operator on a missing key,
an unresolved policy variable) leaves the statement *unevaluated*: an unevaluated ``Allow`` allows
nothing, and an unevaluated ``Deny`` makes the decision ``implicitDeny``; never ``allowed`` on a condition
that could not be evaluated. Unevaluated statements are returned with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

ALLOWED, EXPLICIT_DENY, IMPLICIT_DENY = "allowed", "explicitDeny", "implicitDeny"
Context = dict[str, list[str]]  # context key (lower case) -> its values


@dataclass(frozen=True)
class Policy:
    """One policy document and where it comes from (``SourcePolicyId``, ``SourcePolicyType``)."""

    policy_id: str
    policy_type: str
    document: dict[str, Any]


@dataclass(frozen=True)
class Unevaluated:
    """A statement that might apply but could not be evaluated, and why."""

    policy: Policy
    reason: str


@dataclass
class Decision:
    """The simulation's answer for one action on one resource."""

    decision: str
    matched: list[Policy] = field(default_factory=list)
    missing: set[str] = field(default_factory=set)
    unevaluated: list[Unevaluated] = field(default_factory=list)
    allowed_by_boundary: bool | None = None  # None: no permissions boundary


@dataclass
class _Tally:
    denied: list[Policy] = field(default_factory=list)
    allowed: list[Policy] = field(default_factory=list)
    unevaluated_denies: list[Unevaluated] = field(default_factory=list)
    unevaluated_allows: list[Unevaluated] = field(default_factory=list)
    missing: set[str] = field(default_factory=set)


class Unknown(Exception):
    """A condition or policy variable this evaluator does not model."""


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def glob_matches(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM wildcards: ``*`` any characters (``/`` and ``:`` too), ``?`` one; nothing else is special."""
    regex = ".*".join(".".join(map(re.escape, chunk.split("?"))) for chunk in pattern.split("*"))
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_LITERALS = {"*": "*", "?": "?", "$": "$"}


def resolve_variables(text: str, context: Context, missing: set[str]) -> str:
    """``${key}`` and ``${key, 'default'}`` from the context; raise ``Unknown`` for an absent key."""

    def value(match: re.Match[str]) -> str:
        name, _, default = (part.strip() for part in match.group(1).partition(","))
        if name in _LITERALS:
            return _LITERALS[name]
        values = context.get(name.lower())
        if values:
            return values[0]
        if default:
            return default.strip("'")
        missing.add(name)
        raise Unknown(f"policy variable ${{{name}}} has no value in the context")

    return _VARIABLE.sub(value, text)


def _element_matches(
    statement: dict[str, Any], name: str, value: str, context: Context, missing: set[str]
) -> bool:
    """``Action``/``NotAction`` or ``Resource``/``NotResource`` against one value."""
    positive = name in statement
    patterns = statement.get(name if positive else f"Not{name}")
    if patterns is None:
        return False
    ignore_case = name == "Action"
    resolved = [resolve_variables(str(pattern), context, missing) for pattern in as_list(patterns)]
    hit = any(glob_matches(pattern, value, ignore_case) for pattern in resolved)
    return hit if positive else not hit


_STRING_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda expected, actual: actual == expected,
    "StringEqualsIgnoreCase": lambda expected, actual: actual.lower() == expected.lower(),
    "StringLike": glob_matches,
    "ArnEquals": glob_matches,
    "ArnLike": glob_matches,
    "Bool": lambda expected, actual: actual.lower() == expected.lower(),
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _condition_holds(operator: str, key: str, expected: Any, context: Context, missing: set[str]) -> bool:
    """One operator on one key; raise ``Unknown`` where it cannot be evaluated."""
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    actual = context.get(key.lower())
    if base == "Null":
        return (actual is None) == (str(expected).lower() == "true")
    positive = _NEGATED.get(base, base)
    if positive not in _STRING_OPERATORS:
        raise Unknown(f"condition operator {operator} on {key} is not modelled")
    if actual is None:
        if if_exists:
            return True
        missing.add(key)
        if base in _NEGATED:
            raise Unknown(f"{operator} on {key}, which the context lacks")
        return False
    values = [resolve_variables(str(e), context, missing) for e in as_list(expected)]
    hit = any(_STRING_OPERATORS[positive](e, a) for e in values for a in actual)
    return not hit if base in _NEGATED else hit


def conditions_hold(conditions: dict[str, Any], context: Context, missing: set[str]) -> bool:
    """Every operator and key of a ``Condition`` block (AND); raise ``Unknown`` if one cannot be known
    and none is false."""
    unknown: Unknown | None = None
    for operator, pairs in conditions.items():
        for key, expected in pairs.items():
            try:
                if not _condition_holds(operator, key, expected, context, missing):
                    return False
            except Unknown as exc:
                unknown = unknown or exc
    if unknown is not None:
        raise unknown
    return True


def _tally(policies: Iterable[Policy], action: str, resource: str, context: Context) -> _Tally:
    tally = _Tally()
    for policy in policies:
        for statement in as_list(policy.document.get("Statement", [])):
            deny = statement.get("Effect") == "Deny"
            try:
                applies = (
                    _element_matches(statement, "Action", action, context, tally.missing)
                    and _element_matches(statement, "Resource", resource, context, tally.missing)
                    and conditions_hold(statement.get("Condition") or {}, context, tally.missing)
                )
            except Unknown as exc:
                unevaluated = tally.unevaluated_denies if deny else tally.unevaluated_allows
                unevaluated.append(Unevaluated(policy, str(exc)))
                continue
            if applies:
                (tally.denied if deny else tally.allowed).append(policy)
    return tally


def evaluate(
    action: str, resource: str, identity: list[Policy], boundary: list[Policy] | None, context: Context
) -> Decision:
    """The decision for ``action`` on ``resource`` under the identity policies and optional boundary."""
    ident = _tally(identity, action, resource, context)
    bound = _tally(boundary, action, resource, context) if boundary is not None else _Tally()
    missing = ident.missing | bound.missing
    by_boundary = None if boundary is None else bool(bound.allowed)
    denied = ident.denied + bound.denied
    if denied:
        return Decision(EXPLICIT_DENY, denied, missing, allowed_by_boundary=by_boundary)
    unsure = ident.unevaluated_denies + bound.unevaluated_denies
    if ident.allowed and by_boundary is not False and not unsure:
        return Decision(ALLOWED, ident.allowed, missing, allowed_by_boundary=by_boundary)
    unevaluated = unsure + ident.unevaluated_allows + bound.unevaluated_allows
    return Decision(
        IMPLICIT_DENY, [u.policy for u in unevaluated], missing, unevaluated, allowed_by_boundary=by_boundary
    )
