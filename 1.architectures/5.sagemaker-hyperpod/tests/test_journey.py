"""The README's HyperPod journey as written, one shell from start to job: the VPC and prerequisite stacks
on the AWS emulator -> create_config.py -> upload and validate_config.py -> create-cluster -> the SSM
target of the controller -> resource_config.py and the lifecycle program's dry run and Slurm lines for
the created cluster -> those partitions and node names as a local Slurm -> the FSDP tiny job submitted
as the README says, its log read. Then the cleanup block alone, in a new shell (no variable from the
journey), which must leave nothing behind."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path

import pytest

from testbed.slurm import REQUIRED_PROGRAMS, LocalSlurm, cluster_processes
from testbed.standins import SESSION_TOOLS, calls, write_standins
from testbed.system import require_programs
from testbed.walkthrough import run_walkthrough

FOLDER = Path(__file__).resolve().parents[1]
README = FOLDER / "README.md"
HERE = Path("1.architectures/5.sagemaker-hyperpod")
FSDP = Path("3.test_cases/pytorch/FSDP")


def _stop_leftover_slurm(workdir: Path) -> None:
    """A journey that failed between `up` and `down` leaves its daemons: stop them."""
    state = workdir / ".testbed" / "slurm"
    if (state / "cluster.json").exists():
        LocalSlurm.attach(state).stop()


@pytest.fixture(scope="module")
def journey(aws_emulator, artifacts_root):
    """The journey's blocks in one shell, run once; the local Slurm is stopped whatever happened."""
    require_programs("local Slurm", *REQUIRED_PROGRAMS)
    with pytest.MonkeyPatch.context() as monkeypatch:
        aws_emulator.export(monkeypatch.setenv)
        workdir = artifacts_root / "hpj"  # short: Slurm's socket paths must fit ip-a-b-c-d node names
        bin_dir = artifacts_root / "hpj-bin"
        log = write_standins(bin_dir, tools=SESSION_TOOLS)  # the Session Manager plugin
        try:
            result = run_walkthrough(README, "journey", workdir, timeout=280, standins=bin_dir)
        finally:
            _stop_leftover_slurm(workdir)
    assert result.returncode == 0, result.output[-4000:]
    sagemaker = aws_emulator.client("sagemaker")
    nodes = {
        s["InstanceId"]: sagemaker.describe_cluster_node(ClusterName="ml-hp", NodeId=s["InstanceId"])[
            "NodeDetails"
        ]
        for s in sagemaker.list_cluster_nodes(ClusterName="ml-hp")["ClusterNodeSummaries"]
    }
    workers = sorted(
        f"ip-{n['PrivatePrimaryIp'].replace('.', '-')}"
        for n in nodes.values()
        if n["InstanceGroupName"] == "worker-group-1"
    )
    result.calls = calls(log)
    return result, sagemaker.describe_cluster(ClusterName="ml-hp"), nodes, workers


@pytest.mark.aws_emulator
@pytest.mark.slurm
@pytest.mark.slow
def test_journey_creates_the_checked_cluster_and_reads_its_layout(aws_emulator, journey):
    result, cluster, nodes, workers = journey
    out, folder = result.output, result.workdir / HERE
    assert "# 17 checks: 17 passed, 0 failed -> OK" in out, out[-4000:]
    assert "InService" in out
    groups = sorted(n["InstanceGroupName"] for n in nodes.values())
    assert groups == ["controller-machine", "worker-group-1", "worker-group-1"]

    # The SSM target: the cluster id of its ARN, the controller's group and instance id.
    (controller,) = [i for i, n in nodes.items() if n["InstanceGroupName"] == "controller-machine"]
    cluster_id = cluster["ClusterArn"].split("/")[-1]
    assert re.fullmatch(r"[a-z0-9]{12}", cluster_id) and re.fullmatch(r"i-[0-9a-f]{17}", controller)
    target = f"sagemaker-cluster:{cluster_id}_controller-machine-{controller}"
    assert f"{target}\n" in out
    # `aws ssm start-session` to it: the emulator started the session (it refuses a node that does not
    # exist), the AWS CLI handed it to the Session Manager plugin.
    (version, session) = result.calls
    assert version == "session-manager-plugin --version" and "StartSession" in session
    assert (
        json.dumps({"Target": target}) in session
        and "Starting session with SessionId: botocore-session-" in out
    )

    # resource_config.json: every node with its private IP in the cluster's subnet.
    layout = json.loads((folder / "build" / "resource_config.json").read_text())
    assert layout["ClusterConfig"] == {"ClusterArn": cluster["ClusterArn"], "ClusterName": "ml-hp"}
    listed = {
        i["InstanceId"]: i["CustomerIpAddress"] for g in layout["InstanceGroups"] for i in g["Instances"]
    }
    assert listed == {i: n["PrivatePrimaryIp"] for i, n in nodes.items()}
    (subnet,) = cluster["VpcConfig"]["Subnets"]
    subnets = aws_emulator.client("ec2").describe_subnets(SubnetIds=[subnet])["Subnets"]
    assert all(
        ipaddress.ip_address(ip) in ipaddress.ip_network(subnets[0]["CidrBlock"]) for ip in listed.values()
    )

    # The lifecycle program's plan for the controller and its Slurm lines: the two workers in `gpu`.
    controller_ip = listed[controller]
    assert (
        f"# plan for {controller_ip} (ip-{controller_ip.replace('.', '-')}): group controller-machine" in out
    )
    conf = (folder / "build" / "nodes_partitions.conf").read_text()
    (partition,) = [line for line in conf.splitlines() if line.startswith("PartitionName=")]
    assert partition.startswith("PartitionName=gpu Nodes=")
    assert sorted(partition.split()[1].removeprefix("Nodes=").split(",")) == workers


@pytest.mark.aws_emulator
@pytest.mark.slurm
@pytest.mark.slow
def test_journey_trains_on_a_local_slurm_of_the_clusters_partitions(journey):
    result, _, _, workers = journey
    out = result.output
    (up,) = re.findall(r"^LocalSlurm up: (.*) x 1 CPU, state in", out, re.MULTILINE)
    assert sorted(up.split(", ")) == workers
    assert re.search(r"^gpu\*\s+up\s+\S+\s+2\s+idle\s+ip-", out, re.MULTILINE), out[-4000:]
    runs = list((result.workdir / FSDP / "runs").glob("tiny-*"))
    assert len(runs) == 1
    job_id = runs[0].name.removeprefix("tiny-")
    log = (result.workdir / FSDP / f"fsdp-tiny_{job_id}.out").read_text()
    assert "summary: step 10" in log and log in out
    ranks = [json.loads(p.read_text()) for p in sorted((runs[0] / "ranks").glob("rank*.json"))]
    assert sorted({r["node"] for r in ranks}) == workers and len(ranks) == 4
    assert (runs[0] / "checkpoints" / "step-00000010" / "COMPLETE").is_file()
    state = result.workdir / ".testbed" / "slurm"
    assert "stopped and removed" in out and cluster_processes(state / "slurm.conf") == []


@pytest.mark.aws_emulator
@pytest.mark.slow
def test_cleanup_block_alone_in_a_new_shell_leaves_nothing(
    aws_emulator, journey, artifacts_root, monkeypatch
):
    result, cluster, _, _ = journey
    cloudformation = aws_emulator.client("cloudformation")
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cloudformation.describe_stacks(StackName="ml-hp-prereq")["Stacks"][0]["Outputs"]
    }
    bucket, lustre = outputs["LifecycleBucketName"], outputs["FsxLustreFileSystemId"]
    assert f"s3://{bucket}/base-config/" in result.output
    aws_emulator.export(monkeypatch.setenv)
    cleanup = run_walkthrough(README, "cleanup", artifacts_root / "hpc", timeout=240)
    assert cleanup.returncode == 0, cleanup.output[-4000:]
    stacks = cloudformation.list_stacks()["StackSummaries"]
    assert all(s["StackStatus"] == "DELETE_COMPLETE" for s in stacks if s["StackName"].startswith("ml-hp-"))
    clusters = aws_emulator.client("sagemaker").list_clusters()["ClusterSummaries"]
    assert "ml-hp" not in [c["ClusterName"] for c in clusters]
    assert bucket not in [b["Name"] for b in aws_emulator.client("s3").list_buckets()["Buckets"]]
    file_systems = aws_emulator.client("fsx").describe_file_systems()["FileSystems"]
    assert lustre not in [f["FileSystemId"] for f in file_systems]
    (subnet,) = cluster["VpcConfig"]["Subnets"]
    interfaces = aws_emulator.client("ec2").describe_network_interfaces(
        Filters=[{"Name": "subnet-id", "Values": [subnet]}]
    )
    assert interfaces["NetworkInterfaces"] == []
