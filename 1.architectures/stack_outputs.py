"""What the configuration generators of 1.architectures share: a stack's outputs, or one line saying why not.

    from stack_outputs import ConfigError, stack_outputs   # with 1.architectures/ on sys.path

Used by 2.aws-parallelcluster/create_config.py and 5.sagemaker-hyperpod/create_config.py (which also read
instance-types.yaml from this folder).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError


class ConfigError(Exception):
    """Bad input; the message is one line naming it and the fix."""


def stack_outputs(cloudformation: Any, stack: str, region: str, required: tuple[str, ...]) -> dict[str, str]:
    """``{OutputKey: OutputValue}`` of ``stack``; every ``required`` key present or ConfigError."""
    try:
        found = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as exc:
        if "does not exist" in str(exc):
            raise ConfigError(
                f"stack {stack!r} not found in region {region}: deploy it first, or pass --region where it is"
            ) from None
        raise ConfigError(f"cannot read stack {stack!r} in region {region}: {exc}") from None
    outputs = {item["OutputKey"]: item["OutputValue"] for item in found.get("Outputs", [])}
    missing = [key for key in required if key not in outputs]
    if missing:
        raise ConfigError(
            f"stack {stack!r} has no output {missing[0]!r}: is it a stack of the expected template? "
            "Redeploy it from this repository's template"
        )
    return outputs
