"""testbed.cfn: the offline renderer reads short-form tags and evaluates conditions as CloudFormation does."""

from __future__ import annotations

import pytest

from testbed.cfn import TemplateParameterError, load_template, render

TEMPLATE = """
Parameters:
  Mode: {Type: String, Default: a, AllowedValues: [a, b, c]}
  Size: {Type: Number, Default: 2, MinValue: 1, MaxValue: 4}
  Zones: {Type: CommaDelimitedList, Default: "x,y"}
Conditions:
  IsB: !Equals [!Ref Mode, b]
  NotA: !Not [!Equals [!Ref Mode, a]]
  BigB: !And [!Condition IsB, !Equals [!Ref Size, "4"]]
  FirstX: !Equals [!Select [0, !Ref Zones], x]
  Either: !Or [{Condition: BigB}, !Equals [!Ref Mode, c]]
Resources:
  Always: {Type: AWS::SQS::Queue, Properties: {QueueName: !Sub "${AWS::StackName}-q"}}
  OnlyBigB: {Type: AWS::SQS::Queue, Condition: BigB}
Outputs:
  Arn: {Value: !GetAtt Always.Arn, Condition: Either}
"""


@pytest.fixture
def template(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(TEMPLATE)
    return load_template(path)


def test_short_forms_become_long_forms(template):
    assert template["Conditions"]["IsB"] == {"Fn::Equals": [{"Ref": "Mode"}, "b"]}
    assert template["Conditions"]["BigB"]["Fn::And"][0] == {"Condition": "IsB"}
    assert template["Outputs"]["Arn"]["Value"] == {"Fn::GetAtt": ["Always", "Arn"]}


@pytest.mark.parametrize(
    ("overrides", "expected", "resources"),
    [
        ({}, {"IsB": False, "NotA": False, "BigB": False, "FirstX": True, "Either": False}, {"Always"}),
        (
            {"Mode": "b", "Size": "4", "Zones": "z,x"},
            {"IsB": True, "NotA": True, "BigB": True, "FirstX": False, "Either": True},
            {"Always", "OnlyBigB"},
        ),
        (
            {"Mode": "c"},
            {"IsB": False, "NotA": True, "BigB": False, "FirstX": True, "Either": True},
            {"Always"},
        ),
    ],
)
def test_conditions_and_resources(template, overrides, expected, resources):
    rendered = render(template, overrides)
    assert rendered.conditions == expected
    assert set(rendered.resources) == resources
    assert rendered.outputs == (["Arn"] if expected["Either"] else [])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Mode": "d"}, r"Mode='d' is not one of \['a', 'b', 'c'\]"),
        ({"Size": "5"}, r"Size=5 is outside \[1, 4\]"),
        ({"Size": "two"}, r"Size='two' is not a number"),
        ({"Colour": "red"}, r"unknown parameter\(s\) \['Colour'\]"),
    ],
)
def test_bad_values_name_the_parameter(template, overrides, message):
    with pytest.raises(TemplateParameterError, match=message):
        render(template, overrides)


def test_find_in_map_in_conditions():
    mapped = {
        "Parameters": {"Kind": {"Type": "String", "Default": "big"}},
        "Mappings": {"Sizes": {"big": {"Count": "8"}, "small": {"Count": "1"}}},
        "Conditions": {"Many": {"Fn::Equals": [{"Fn::FindInMap": ["Sizes", {"Ref": "Kind"}, "Count"]}, "8"]}},
    }
    assert render(mapped).conditions == {"Many": True}
    assert render(mapped, {"Kind": "small"}).conditions == {"Many": False}
