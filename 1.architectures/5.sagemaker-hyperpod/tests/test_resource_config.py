"""resource_config.py against clusters on the AWS emulator: the layout the lifecycle program reads, and its
one-line errors (exit 2, nothing written). The README journey (test_journey.py) runs it on the cluster
that create_config.py's configuration made."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hyperpod_lifecycle.config import load  # the lifecycle program's own parser (path: conftest.py)

FOLDER = Path(__file__).resolve().parents[1]


def run(emulator, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(FOLDER / "resource_config.py"), *args],
        env=emulator.environ(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def cluster(aws_emulator):
    """A cluster of a controller and three workers in a subnet of its own."""
    ec2, sagemaker = aws_emulator.client("ec2"), aws_emulator.client("sagemaker")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.8.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="hp-rc", Description="efa", VpcId=vpc)["GroupId"]

    def instance_group(name: str, instance_type: str, count: int) -> dict:
        return {
            "InstanceGroupName": name,
            "InstanceType": instance_type,
            "InstanceCount": count,
            "LifeCycleConfig": {
                "SourceS3Uri": "s3://sagemaker-lifecycle-rc/base-config/",
                "OnCreate": "on_create.sh",
            },
            "ExecutionRole": "arn:aws:iam::123456789012:role/hp-rc",
            "ThreadsPerCore": 1,
        }

    sagemaker.create_cluster(
        ClusterName="hp-rc",
        InstanceGroups=[
            instance_group("controller-machine", "ml.m5.xlarge", 1),
            instance_group("workers", "ml.c5.4xlarge", 3),
        ],
        VpcConfig={"SecurityGroupIds": [group], "Subnets": [subnet]},
    )
    yield sagemaker.describe_cluster(ClusterName="hp-rc")
    sagemaker.delete_cluster(ClusterName="hp-rc")
    ec2.delete_security_group(GroupId=group)
    ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_vpc(VpcId=vpc)


@pytest.mark.aws_emulator
def test_layout_is_what_the_lifecycle_program_reads(aws_emulator, cluster, tmp_path):
    out = tmp_path / "build" / "resource_config.json"
    done = run(aws_emulator, "--cluster-name", cluster["ClusterArn"], "--out", str(out))  # an ARN works too
    assert done.returncode == 0, done.stderr
    document = json.loads(out.read_text())
    assert [(g["Name"], g["InstanceType"], len(g["Instances"])) for g in document["InstanceGroups"]] == [
        ("controller-machine", "ml.m5.xlarge", 1),
        ("workers", "ml.c5.4xlarge", 3),
    ]
    workers = document["InstanceGroups"][1]["Instances"]
    assert [i["InstanceName"] for i in workers] == ["workers-1", "workers-2", "workers-3"]
    assert all(i["CustomerIpAddress"].startswith("10.42.8.") for i in workers)
    assert f"workers (ml.c5.4xlarge): {' '.join(i['CustomerIpAddress'] for i in workers)}" in done.stdout
    params = tmp_path / "provisioning_parameters.json"
    params.write_text(
        json.dumps(
            {
                "version": "1.0.0",
                "workload_manager": "slurm",
                "controller_group": "controller-machine",
                "worker_groups": [{"instance_group_name": "workers", "partition_name": "cpu"}],
                "fsx_dns_name": "fs-0123456789abcdef0.fsx.us-east-1.amazonaws.com",
                "fsx_mountname": "abcdefgh",
            }
        )
    )
    layout = load(out, params)
    assert layout.controller.ip == document["InstanceGroups"][0]["Instances"][0]["CustomerIpAddress"]


@pytest.mark.aws_emulator
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cluster-name", "no-such-cluster"], "cluster 'no-such-cluster' not found in region"),
        (["--cluster-name", "hp-rc", "--out", "{file}/resource_config.json"], "cannot write --out"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(aws_emulator, cluster, tmp_path, args, message):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    args = [arg.format(file=blocker) for arg in args]
    out = ["--out", str(tmp_path / "out" / "resource_config.json")] if "--out" not in args else []
    done = run(aws_emulator, *args, *out)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1 and message in done.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a-file"]
