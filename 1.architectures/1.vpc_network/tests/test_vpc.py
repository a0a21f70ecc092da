"""VPC templates: README walkthrough on the emulator, deployed layouts, security groups, and offline
rendering of parameters and conditions. Nothing here is skipped on the emulator: every resource type
these templates use is modelled (three with the test bed's emulator extensions)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from testbed.cfn import TemplateParameterError, load_template, render
from testbed.walkthrough import run_walkthrough

FOLDER = Path(__file__).resolve().parents[1]
ONE_AZ, MULTI_AZ = FOLDER / "vpc-one-az.yaml", FOLDER / "vpc-multi-az.yaml"
AZS = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1e", "us-east-1f"]


def subnets(emulator, vpc_id: str) -> list[dict]:
    """The VPC's subnets as EC2 reports them."""
    ec2 = emulator.client("ec2")
    return ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]


def assert_layout(found: list[dict], vpc_cidr: str) -> None:
    """Every subnet inside the VPC and no two overlapping."""
    vpc = ipaddress.ip_network(vpc_cidr)
    networks = [ipaddress.ip_network(s["CidrBlock"]) for s in found]
    assert all(net.subnet_of(vpc) for net in networks), networks
    for i, first in enumerate(networks):
        for second in networks[i + 1 :]:
            assert not first.overlaps(second), (first, second)


@pytest.mark.aws_emulator
def test_readme_walkthrough_deploys_both_and_cleans_up(aws_emulator, artifacts_root, monkeypatch):
    aws_emulator.export(monkeypatch.setenv)
    result = run_walkthrough(FOLDER / "README.md", "emulator", artifacts_root / "wt-vpc", timeout=300)
    assert result.returncode == 0, result.output[-4000:]
    assert "ml-vpc-PrivateSubnetIds\tsubnet-" in result.output
    assert "ml-vpc-one-az-EfaSecurityGroupId" in result.output
    assert "ml-vpc-one-az-PublicSubnetIds" not in result.output  # CreatePublicSubnets=false
    stacks = aws_emulator.client("cloudformation").list_stacks()["StackSummaries"]
    assert all(s["StackStatus"] == "DELETE_COMPLETE" for s in stacks if s["StackName"].startswith("ml-vpc"))


@pytest.mark.aws_emulator
@pytest.mark.parametrize("count", [2, 6])
def test_multi_az_layout_and_routing(aws_emulator, count):
    stack = f"vpc-layout-{count}"
    params = {
        "AvailabilityZones": ",".join(AZS[:count]),
        "NumberOfAZs": str(count),
        "VpcCidr": "10.20.0.0/16",
    }
    outputs = aws_emulator.deploy(MULTI_AZ, stack, params)
    found = subnets(aws_emulator, outputs["VpcId"])
    assert len(found) == 2 * count
    assert_layout(found, "10.20.0.0/16")
    private = outputs["PrivateSubnetIds"].split(",")
    by_id = {s["SubnetId"]: s for s in found}
    assert [by_id[s]["AvailabilityZone"] for s in private] == AZS[:count]  # in AZ order, primary first
    assert all(by_id[s]["CidrBlock"].endswith("/19") for s in private)
    assert outputs["PrimaryPrivateSubnetId"] == private[0] and outputs["PrimaryAvailabilityZone"] == AZS[0]
    ec2 = aws_emulator.client("ec2")
    routes = ec2.describe_route_tables(RouteTableIds=[outputs["PrivateRouteTableId"]])["RouteTables"][0]
    assert any(r.get("NatGatewayId") for r in routes["Routes"])
    aws_emulator.delete(stack)


@pytest.mark.aws_emulator
def test_private_only_vpc_has_no_nat_or_internet_gateway(aws_emulator):
    outputs = aws_emulator.deploy(
        ONE_AZ, "vpc-private", {"AvailabilityZone": AZS[2], "CreatePublicSubnets": "false"}
    )
    ec2, vpc = aws_emulator.client("ec2"), outputs["VpcId"]
    found = subnets(aws_emulator, vpc)
    assert [(s["AvailabilityZone"], s["CidrBlock"]) for s in found] == [(AZS[2], "10.0.0.0/19")]
    vpc_filter = [{"Name": "vpc-id", "Values": [vpc]}]
    assert ec2.describe_nat_gateways(Filters=vpc_filter)["NatGateways"] == []
    assert (
        ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])[
            "InternetGateways"
        ]
        == []
    )
    assert "PublicSubnetIds" not in outputs and "PrimaryPublicSubnetId" not in outputs
    endpoints = ec2.describe_vpc_endpoints(Filters=vpc_filter)["VpcEndpoints"]
    assert sorted(e["ServiceName"].rsplit(".", 1)[1] for e in endpoints) == ["dynamodb", "s3"]
    assert all(e["RouteTableIds"] == [outputs["PrivateRouteTableId"]] for e in endpoints)
    aws_emulator.delete("vpc-private")


@pytest.mark.aws_emulator
def test_security_groups_and_flow_logs(aws_emulator):
    outputs = aws_emulator.deploy(ONE_AZ, "vpc-groups", {"AvailabilityZone": AZS[0]})
    ec2 = aws_emulator.client("ec2")
    efa_id, fsx_id = outputs["EfaSecurityGroupId"], outputs["FsxLustreSecurityGroupId"]
    efa = ec2.describe_security_groups(GroupIds=[efa_id])["SecurityGroups"][0]
    self_pair = [{"UserId": "123456789012", "GroupId": efa_id}]
    assert [(p["IpProtocol"], p["UserIdGroupPairs"]) for p in efa["IpPermissions"]] == [("-1", self_pair)]
    egress = efa["IpPermissionsEgress"]
    assert any(p["IpProtocol"] == "-1" and p["UserIdGroupPairs"] == self_pair for p in egress)  # self egress
    fsx = ec2.describe_security_groups(GroupIds=[fsx_id])["SecurityGroups"][0]
    ports = sorted((p["FromPort"], p["ToPort"]) for p in fsx["IpPermissions"])
    assert ports == [(988, 988), (1018, 1023)]
    assert all(
        p["UserIdGroupPairs"][0]["GroupId"] == fsx_id and not p["IpRanges"] for p in fsx["IpPermissions"]
    )
    (flow_log,) = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [outputs["VpcId"]]}])[
        "FlowLogs"
    ]
    groups = aws_emulator.client("logs").describe_log_groups()["logGroups"]
    group = next(g for g in groups if g["logGroupName"] == flow_log["LogGroupName"])  # the template's group
    assert group["retentionInDays"] == 14 and flow_log["TrafficType"] == "ALL"
    aws_emulator.delete("vpc-groups")


def test_both_templates_have_the_same_outputs_and_export_names():
    one, multi = load_template(ONE_AZ), load_template(MULTI_AZ)
    assert list(one["Outputs"]) == list(multi["Outputs"])
    for name in one["Outputs"]:
        assert one["Outputs"][name]["Export"] == multi["Outputs"][name]["Export"]
        assert one["Outputs"][name]["Export"]["Name"] == {"Fn::Sub": f"${{AWS::StackName}}-{name}"}


@pytest.mark.parametrize("count", [2, 3, 4, 5, 6])
@pytest.mark.parametrize("public", ["true", "false"])
def test_number_of_azs_selects_subnets_and_public_switch_removes_nat(count, public):
    params = {
        "AvailabilityZones": ",".join(AZS[:count]),
        "NumberOfAZs": str(count),
        "CreatePublicSubnets": public,
    }
    rendered = render(load_template(MULTI_AZ), params)
    private = sorted(
        r
        for r, kind in rendered.resources.items()
        if r.startswith("PrivateSubnet") and kind == "AWS::EC2::Subnet"
    )
    public_subnets = [
        r
        for r, kind in rendered.resources.items()
        if r.startswith("PublicSubnet") and kind == "AWS::EC2::Subnet"
    ]
    assert private == [f"PrivateSubnet{i}" for i in range(1, count + 1)]
    assert len(public_subnets) == (count if public == "true" else 0)
    nat = {"NatGateway", "NatGatewayEip", "InternetGateway", "PrivateDefaultRoute", "PublicDefaultRoute"}
    assert nat <= set(rendered.resources) if public == "true" else not nat & set(rendered.resources)
    assert ("PublicSubnetIds" in rendered.outputs) == (public == "true")


@pytest.mark.parametrize(
    ("template", "overrides", "message"),
    [
        (MULTI_AZ, {"NumberOfAZs": "7"}, r"NumberOfAZs='7' is not one of"),
        (MULTI_AZ, {"NumberOfAZs": "1"}, r"NumberOfAZs='1' is not one of"),
        (
            MULTI_AZ,
            {"VpcCidr": "10.0.0.0/20"},
            r"VpcCidr='10.0.0.0/20' does not match: an IPv4 network with a /16",
        ),
        (ONE_AZ, {"VpcCidr": "300.0.0.0/16"}, r"VpcCidr='300.0.0.0/16' does not match"),
        (ONE_AZ, {"CreatePublicSubnets": "no"}, r"CreatePublicSubnets='no' is not one of"),
        (ONE_AZ, {"FlowLogRetentionDays": "2"}, r"FlowLogRetentionDays='2' is not one of"),
        (ONE_AZ, {"AvailabilityZone": None}, r"parameter AvailabilityZone has no default"),
    ],
)
def test_bad_parameters_are_rejected(template, overrides, message):
    """Each case changes one parameter of a valid set (``None``: left out)."""
    valid = {"AvailabilityZones": "a,b"} if template == MULTI_AZ else {"AvailabilityZone": "a"}
    parameters = {k: v for k, v in {**valid, **overrides}.items() if v is not None}
    with pytest.raises(TemplateParameterError, match=message):
        render(load_template(template), parameters)


def test_no_hard_coded_region_account_or_az():
    for path in (ONE_AZ, MULTI_AZ):
        text = path.read_text()
        assert "us-east-1" not in text and "123456789012" not in text
        assert "com.amazonaws.${AWS::Region}.s3" in text
