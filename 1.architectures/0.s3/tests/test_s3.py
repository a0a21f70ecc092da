"""s3-bucket.yaml: deployed on the AWS emulator by the README's own commands, and its properties checked.

The emulator serves HTTPS only and evaluates the bucket policy, so an upload passes the TLS-only policy
here as over TLS on AWS. What it cannot show: a plain-HTTP request refused (testbed/tests/test_aws.py
checks the condition's evaluation both ways).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from testbed.cfn import TemplateParameterError, load_template, render
from testbed.walkthrough import run_walkthrough

FOLDER = Path(__file__).resolve().parents[1]
TEMPLATE = FOLDER / "s3-bucket.yaml"


@pytest.mark.aws_emulator
def test_readme_walkthrough_creates_uploads_and_removes(aws_emulator, artifacts_root, monkeypatch):
    aws_emulator.export(monkeypatch.setenv)
    result = run_walkthrough(FOLDER / "README.md", "emulator", artifacts_root / "wt-s3", timeout=300)
    assert result.returncode == 0, result.output[-4000:]
    bucket = next(line.split()[1] for line in result.output.splitlines() if line.startswith("bucket: "))
    assert '"BlockPublicPolicy": true' in result.output
    assert '"aws:SecureTransport": "false"' in result.output
    s3 = aws_emulator.client("s3")
    with pytest.raises(ClientError, match=r"404|NoSuchBucket|Not Found"):
        s3.head_bucket(Bucket=bucket)  # the README's clean-up removed it


@pytest.mark.aws_emulator
@pytest.mark.parametrize("versioning", ["true", "false"])
def test_deployed_bucket_is_private_encrypted_and_tls_only(aws_emulator, versioning):
    stack = f"s3-props-{versioning}"
    outputs = aws_emulator.deploy(TEMPLATE, stack, {"Versioning": versioning})
    s3, bucket = aws_emulator.client("s3"), outputs["BucketName"]
    assert outputs["BucketArn"] == f"arn:aws:s3:::{bucket}"
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    ownership = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    (statement,) = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    assert (statement["Effect"], statement["Action"], statement["Principal"]) == ("Deny", "s3:*", "*")
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert sorted(statement["Resource"]) == [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    assert status == ("Enabled" if versioning == "true" else None)
    rules = {r["ID"]: r["Status"] for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    expire = "Enabled" if versioning == "true" else "Disabled"
    assert rules == {"abort-incomplete-multipart-uploads": "Enabled", "expire-noncurrent-versions": expire}
    exports = {e["Name"]: e["Value"] for e in aws_emulator.client("cloudformation").list_exports()["Exports"]}
    assert exports[f"{stack}-BucketName"] == bucket
    s3.put_object(Bucket=bucket, Key="probe.txt", Body=b"x")  # over TLS (the emulator's HTTPS): allowed
    assert s3.get_object(Bucket=bucket, Key="probe.txt")["Body"].read() == b"x"
    s3.delete_object(Bucket=bucket, Key="probe.txt")
    aws_emulator.delete(stack)
    assert s3.head_bucket(Bucket=bucket)  # Retain: deleting the stack keeps the data


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"BucketName": "Training_Data"}, "BucketName='Training_Data' does not match"),
        ({"BucketName": "ab"}, "BucketName='ab' does not match"),
        ({"Versioning": "yes"}, r"Versioning='yes' is not one of \['true', 'false'\]"),
        (
            {"NoncurrentVersionExpirationDays": "0"},
            r"NoncurrentVersionExpirationDays=0 is outside \[1, 3650\]",
        ),
        ({"Encryption": "none"}, r"unknown parameter\(s\) \['Encryption'\]"),
    ],
)
def test_bad_parameters_are_rejected(overrides, message):
    with pytest.raises(TemplateParameterError, match=message):
        render(load_template(TEMPLATE), overrides)


def test_conditions_name_and_versioning():
    template = load_template(TEMPLATE)
    default = render(template)
    assert default.conditions == {"HasBucketName": False, "VersioningOn": False}
    named = render(template, {"BucketName": "sagemaker-lifecycle-123", "Versioning": "true"})
    assert named.conditions == {"HasBucketName": True, "VersioningOn": True}
    assert set(named.resources) == {"Bucket", "BucketPolicy"}
