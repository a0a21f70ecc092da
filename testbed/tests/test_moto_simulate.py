"""The emulator's iam:SimulatePrincipalPolicy: the policy evaluation on its own (testbed.iam_policy), then
the API through the emulator's server with the response shape, pagination, boundary and errors."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from testbed.iam_policy import Policy, evaluate, glob_matches

CONTEXT = {"aws:principalaccount": ["123456789012"], "aws:username": ["ana"]}


def policy(*statements: dict, name: str = "p", kind: str = "role") -> Policy:
    return Policy(name, kind, {"Version": "2012-10-17", "Statement": list(statements)})


def allow(action, resource="*", **more) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **more}


def deny(action, resource="*", **more) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **more}


def decide(action: str, resource: str, *statements: dict, boundary=None, context=CONTEXT) -> str:
    return evaluate(action, resource, [policy(*statements)], boundary, context).decision


# --- the evaluation ---------------------------------------------------------------------------------------


def test_wildcards_as_iam_reads_them():
    assert glob_matches("arn:aws:s3:::sagemaker-*", "arn:aws:s3:::sagemaker-x/a/b.sh")  # * crosses "/"
    assert glob_matches("s3:Get?bject", "s3:GetObject") and not glob_matches("s3:Get?bject", "s3:GetOObject")
    assert not glob_matches("arn:aws:s3:::a.b", "arn:aws:s3:::aXb")  # "." is literal, not a regex
    assert not glob_matches("arn:aws:s3:::[ab]", "arn:aws:s3:::a")  # so are brackets, unlike fnmatch
    assert decide("s3:GetObject", "arn:aws:s3:::b/k", allow("S3:get*")) == "allowed"  # actions: any case
    assert decide("s3:GetObject", "arn:aws:s3:::B/k", allow("s3:*", "arn:aws:s3:::b/*")) == "implicitDeny"


def test_explicit_deny_wins_and_nothing_is_implicit_deny():
    assert decide("s3:GetObject", "arn:aws:s3:::b/k", allow("s3:*"), deny("s3:GetObject")) == "explicitDeny"
    assert decide("s3:GetObject", "arn:aws:s3:::b/k", allow("ec2:*")) == "implicitDeny"
    assert decide("s3:GetObject", "arn:aws:s3:::b/k") == "implicitDeny"


def test_not_action_and_not_resource():
    everything_but_iam = {"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "*"}
    assert decide("s3:GetObject", "arn:aws:s3:::b/k", everything_but_iam) == "allowed"
    assert decide("iam:PassRole", "*", everything_but_iam) == "implicitDeny"
    outside = {"Effect": "Deny", "Action": "s3:*", "NotResource": ["arn:aws:s3:::approved-*"]}
    assert decide("s3:GetObject", "arn:aws:s3:::other/k", allow("s3:*"), outside) == "explicitDeny"
    assert decide("s3:GetObject", "arn:aws:s3:::approved-1/k", allow("s3:*"), outside) == "allowed"


def test_permissions_boundary_must_allow_too():
    ec2_only = [policy(allow("ec2:*"), name="boundary", kind="user-managed")]
    limited = evaluate("s3:GetObject", "*", [policy(allow("s3:*"))], ec2_only, CONTEXT)
    assert (limited.decision, limited.allowed_by_boundary) == ("implicitDeny", False)
    inside = evaluate("ec2:DescribeVpcs", "*", [policy(allow("ec2:*"))], ec2_only, CONTEXT)
    assert (inside.decision, inside.allowed_by_boundary) == ("allowed", True)
    boundary_deny = [policy(allow("*"), deny("ec2:DeleteVpc"), name="boundary")]
    assert (
        evaluate("ec2:DeleteVpc", "*", [policy(allow("*"))], boundary_deny, CONTEXT).decision
        == "explicitDeny"
    )


def test_conditions_on_the_context_with_policy_variables():
    same_account = {"StringEquals": {"aws:ResourceAccount": "${aws:PrincipalAccount}"}}
    statement = allow("s3:GetObject", "arn:aws:s3:::sagemaker-*", Condition=same_account)
    ok = evaluate(
        "s3:GetObject",
        "arn:aws:s3:::sagemaker-x/k",
        [policy(statement)],
        None,
        {**CONTEXT, "aws:resourceaccount": ["123456789012"]},
    )
    assert ok.decision == "allowed" and not ok.missing
    other = {**CONTEXT, "aws:resourceaccount": ["999999999999"]}
    assert decide("s3:GetObject", "arn:aws:s3:::sagemaker-x/k", statement, context=other) == "implicitDeny"
    lacking = evaluate("s3:GetObject", "arn:aws:s3:::sagemaker-x/k", [policy(statement)], None, CONTEXT)
    assert lacking.decision == "implicitDeny" and lacking.missing == {"aws:ResourceAccount"}
    home = allow("s3:GetObject", "arn:aws:s3:::b/${aws:username}/*")
    assert decide("s3:GetObject", "arn:aws:s3:::b/ana/k", home) == "allowed"
    assert decide("s3:GetObject", "arn:aws:s3:::b/bob/k", home) == "implicitDeny"
    if_exists = allow("s3:GetObject", Condition={"StringEqualsIfExists": {"s3:prefix": "home/"}})
    assert decide("s3:GetObject", "arn:aws:s3:::b/k", if_exists) == "allowed"


def test_a_condition_it_cannot_evaluate_is_never_allowed():
    unmodelled = {"NumericLessThan": {"s3:max-keys": "10"}}
    guarded_allow = evaluate(
        "s3:ListBucket", "*", [policy(allow("s3:*", Condition=unmodelled))], None, CONTEXT
    )
    assert guarded_allow.decision == "implicitDeny"
    assert "NumericLessThan on s3:max-keys is not modelled" in guarded_allow.unevaluated[0].reason
    assert [p.policy_id for p in guarded_allow.matched] == ["p"]  # the statement it could not evaluate
    guarded_deny = deny("s3:*", Condition={"ForAnyValue:StringLike": {"aws:TagKeys": "x*"}})
    assert decide("s3:GetObject", "*", allow("s3:*"), guarded_deny) == "implicitDeny"  # not "allowed"
    negated = deny("s3:*", Condition={"StringNotEquals": {"aws:SourceVpc": "vpc-1"}})  # key not in context
    assert decide("s3:GetObject", "*", allow("s3:*"), negated) == "implicitDeny"
    unresolved = allow("s3:GetObject", "arn:aws:s3:::b/${aws:userid}/*")
    assert decide("s3:GetObject", "arn:aws:s3:::b/x/k", unresolved) == "implicitDeny"


# --- the API on the emulator --------------------------------------------------------------------------


def document(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


@pytest.fixture
def iam(aws_emulator):
    """The emulator's IAM with role ``sim`` (inline: S3 read; a managed policy whose default version is
    v2: EC2 describe, not v1's everything) and user ``sim-user`` in group ``sim-group`` (S3 write)."""
    client = aws_emulator.client("iam")
    client.create_role(RoleName="sim", AssumeRolePolicyDocument=json.dumps(TRUST))
    client.put_role_policy(RoleName="sim", PolicyName="read", PolicyDocument=document(allow("s3:GetObject")))
    managed = client.create_policy(PolicyName="sim-managed", PolicyDocument=document(allow("*")))["Policy"][
        "Arn"
    ]
    client.create_policy_version(
        PolicyArn=managed, PolicyDocument=document(allow("ec2:Describe*")), SetAsDefault=True
    )
    client.attach_role_policy(RoleName="sim", PolicyArn=managed)
    client.create_user(UserName="sim-user")
    client.create_group(GroupName="sim-group")
    client.add_user_to_group(GroupName="sim-group", UserName="sim-user")
    client.put_group_policy(
        GroupName="sim-group", PolicyName="write", PolicyDocument=document(allow("s3:PutObject"))
    )
    yield client
    client.remove_user_from_group(GroupName="sim-group", UserName="sim-user")
    client.delete_group_policy(GroupName="sim-group", PolicyName="write")
    client.delete_group(GroupName="sim-group")
    client.delete_user(UserName="sim-user")
    client.delete_role_permissions_boundary(RoleName="sim")
    client.detach_role_policy(RoleName="sim", PolicyArn=managed)
    client.delete_policy_version(PolicyArn=managed, VersionId="v1")
    client.delete_policy(PolicyArn=managed)
    client.delete_role_policy(RoleName="sim", PolicyName="read")
    client.delete_role(RoleName="sim")


ROLE = "arn:aws:iam::123456789012:role/sim"


@pytest.mark.aws_emulator
def test_inline_and_default_version_of_managed_policies(iam):
    results = iam.simulate_principal_policy(
        PolicySourceArn=ROLE, ActionNames=["s3:GetObject", "ec2:DescribeVpcs", "ec2:RunInstances"]
    )["EvaluationResults"]
    decisions = {r["EvalActionName"]: r["EvalDecision"] for r in results}
    assert decisions == {
        "s3:GetObject": "allowed",
        "ec2:DescribeVpcs": "allowed",
        "ec2:RunInstances": "implicitDeny",
    }
    by_action = {r["EvalActionName"]: r for r in results}
    assert by_action["s3:GetObject"]["MatchedStatements"] == [
        {"SourcePolicyId": "read", "SourcePolicyType": "role"}
    ]
    assert by_action["ec2:DescribeVpcs"]["MatchedStatements"] == [
        {"SourcePolicyId": "sim-managed", "SourcePolicyType": "user-managed"}
    ]
    assert all(r["EvalResourceName"] == "*" and "ResourceSpecificResults" not in r for r in results)


@pytest.mark.aws_emulator
def test_each_action_on_each_resource_paginated_with_context(iam):
    pages = iam.get_paginator("simulate_principal_policy").paginate(
        PolicySourceArn=ROLE,
        ActionNames=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
        ResourceArns=["arn:aws:s3:::a/k", "arn:aws:s3:::b/k"],
        ContextEntries=[
            {"ContextKeyName": "aws:SourceIp", "ContextKeyValues": ["10.0.0.1"], "ContextKeyType": "ip"}
        ],
        PaginationConfig={"PageSize": 4},
    )
    pages = list(pages)
    assert [len(page["EvaluationResults"]) for page in pages] == [4, 2]
    results = [r for page in pages for r in page["EvaluationResults"]]
    assert [(r["EvalActionName"], r["EvalResourceName"]) for r in results][:2] == [
        ("s3:GetObject", "arn:aws:s3:::a/k"),
        ("s3:GetObject", "arn:aws:s3:::b/k"),
    ]
    (specific,) = results[0]["ResourceSpecificResults"]
    assert (
        specific["EvalResourceName"] == "arn:aws:s3:::a/k" and specific["EvalResourceDecision"] == "allowed"
    )


@pytest.mark.aws_emulator
def test_permissions_boundary_and_user_groups(iam):
    boundary = iam.create_policy(
        PolicyName="sim-boundary",
        PolicyDocument=document(allow("ec2:*")),
    )["Policy"]["Arn"]
    try:
        iam.put_role_permissions_boundary(RoleName="sim", PermissionsBoundary=boundary)
        results = iam.simulate_principal_policy(
            PolicySourceArn=ROLE, ActionNames=["s3:GetObject", "ec2:DescribeVpcs"]
        )
        by_action = {r["EvalActionName"]: r for r in results["EvaluationResults"]}
        assert by_action["s3:GetObject"]["EvalDecision"] == "implicitDeny"  # the boundary does not allow S3
        assert by_action["s3:GetObject"]["PermissionsBoundaryDecisionDetail"] == {
            "AllowedByPermissionsBoundary": False
        }
        assert by_action["ec2:DescribeVpcs"]["EvalDecision"] == "allowed"
    finally:
        iam.delete_role_permissions_boundary(RoleName="sim")
        iam.delete_policy(PolicyArn=boundary)
    user = iam.simulate_principal_policy(
        PolicySourceArn="arn:aws:iam::123456789012:user/sim-user", ActionNames=["s3:PutObject"]
    )
    assert user["EvaluationResults"][0]["EvalDecision"] == "allowed"
    assert user["EvaluationResults"][0]["MatchedStatements"][0]["SourcePolicyType"] == "group"


@pytest.mark.aws_emulator
def test_unknown_principal_and_unmodelled_parameters_are_errors(iam):
    with pytest.raises(ClientError, match="NoSuchEntity"):
        iam.simulate_principal_policy(
            PolicySourceArn="arn:aws:iam::123456789012:role/none", ActionNames=["s3:*"]
        )
    with pytest.raises(ClientError, match=r"InvalidInput.*roles and users only"):
        iam.simulate_principal_policy(
            PolicySourceArn="arn:aws:iam::123456789012:group/sim-group", ActionNames=["s3:*"]
        )
    with pytest.raises(ClientError, match=r"InvalidInput.*does not model ResourcePolicy"):
        iam.simulate_principal_policy(PolicySourceArn=ROLE, ActionNames=["s3:*"], ResourcePolicy="{}")


@pytest.mark.aws_emulator
def test_policy_inputs_join_the_simulation(iam):
    extra = document(allow("sqs:SendMessage"))
    results = iam.simulate_principal_policy(
        PolicySourceArn=ROLE,
        ActionNames=["sqs:SendMessage", "s3:GetObject"],
        PolicyInputList=[extra],
        PermissionsBoundaryPolicyInputList=[document(allow("sqs:*"))],
    )["EvaluationResults"]
    assert [r["EvalDecision"] for r in results] == ["allowed", "implicitDeny"]  # the boundary keeps S3 out
    assert results[0]["MatchedStatements"] == [
        {"SourcePolicyId": "PolicyInputList.1", "SourcePolicyType": "none"}
    ]
