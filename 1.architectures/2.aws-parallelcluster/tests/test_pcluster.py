"""ParallelCluster: prerequisites template (emulator + offline rendering), create_config.py against stacks
deployed on the emulator (the README's path, VPC to training job, is tests/test_journey.py), and
aws-parallelcluster's full validators (`validate_config.py --against-aws`)
on configs rendered from the deployed stacks, file systems included (emulator extensions create them through
moto's FSx backend and answer DescribeVolumes for the OpenZFS root volume), with ParallelCluster's official
AMIs in the emulator's catalogue and the key pair of tests/conftest.py; none of its validators suppressed."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from testbed.cfn import TemplateParameterError, load_template, render
from testbed.system import in_ci, missing_message, require_programs

FOLDER = Path(__file__).resolve().parents[1]
ROOT = FOLDER.parents[1]
PREREQ = FOLDER / "cluster-prerequisites.yaml"
VPC_ONE_AZ = ROOT / "1.architectures" / "1.vpc_network" / "vpc-one-az.yaml"


def load_create_config():
    spec = importlib.util.spec_from_file_location("pcluster_create_config", FOLDER / "create_config.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


create_config = load_create_config()


def run_create_config(emulator, *args: str, region: str | None = None) -> subprocess.CompletedProcess:
    env = emulator.environ()
    if region:
        env["AWS_DEFAULT_REGION"] = region
    return subprocess.run(
        [sys.executable, str(FOLDER / "create_config.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def stacks(aws_emulator):
    """A one-AZ VPC (with public subnets) and the prerequisites on it, both file systems included."""
    vpc = aws_emulator.deploy(VPC_ONE_AZ, "pc-vpc", {"AvailabilityZone": "us-east-1b"})
    prereq = aws_emulator.deploy(PREREQ, "pc-prereq", {"VpcStackName": "pc-vpc"})
    yield vpc, prereq
    aws_emulator.delete("pc-prereq")
    for output in ("FsxLustreFileSystemId", "FsxOpenZfsFileSystemId"):  # retained on delete
        aws_emulator.client("fsx").delete_file_system(FileSystemId=prereq[output])
    aws_emulator.delete("pc-vpc")


@pytest.mark.aws_emulator
def test_prerequisites_import_the_vpc_exports(aws_emulator, stacks):
    vpc, prereq = stacks
    assert prereq["VpcStackName"] == "pc-vpc" and prereq["FsxLustreFileSystemId"].startswith("fs-")
    fsx = aws_emulator.client("fsx")
    (lustre,) = fsx.describe_file_systems(FileSystemIds=[prereq["FsxLustreFileSystemId"]])["FileSystems"]
    assert lustre["LustreConfiguration"]["MountName"] == prereq["FsxLustreMountName"]
    assert lustre["SubnetIds"] == [vpc["PrimaryPrivateSubnetId"]]
    ec2 = aws_emulator.client("ec2")
    group = ec2.describe_security_groups(GroupIds=[prereq["HomeNfsSecurityGroupId"]])["SecurityGroups"][0]
    assert group["VpcId"] == vpc["VpcId"]
    rules = sorted((p["IpProtocol"], p["FromPort"], p["ToPort"]) for p in group["IpPermissions"])
    assert rules == [
        (proto, a, b) for proto in ("tcp", "udp") for a, b in ((111, 111), (2049, 2049), (20001, 20003))
    ]
    self_pair = {"UserId": "123456789012", "GroupId": prereq["HomeNfsSecurityGroupId"]}
    assert all(p["UserIdGroupPairs"] == [self_pair] and not p["IpRanges"] for p in group["IpPermissions"])
    exports = {e["Name"] for e in aws_emulator.client("cloudformation").list_exports()["Exports"]}
    assert {"pc-prereq-VpcStackName", "pc-prereq-HomeNfsSecurityGroupId"} <= exports


@pytest.mark.aws_emulator
@pytest.mark.parametrize("cluster", ["gpu-efa", "cpu-small"])
def test_create_config_uses_the_stack_outputs(aws_emulator, stacks, run_dir, cluster):
    vpc, prereq = stacks
    out = run_dir / f"{cluster}.yaml"
    done = run_create_config(
        aws_emulator, "--stack", "pc-prereq", "--cluster", cluster, "--key-name", "k", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(out.read_text())
    assert config["Region"] == "us-east-1"
    head = config["HeadNode"]
    assert head["Networking"]["SubnetId"] == vpc["PrimaryPublicSubnetId"]
    assert head["Networking"]["AdditionalSecurityGroups"] == [
        vpc["FsxLustreSecurityGroupId"],
        prereq["HomeNfsSecurityGroupId"],
    ]
    queue = config["Scheduling"]["SlurmQueues"][0]
    assert queue["Networking"]["SubnetIds"] == [vpc["PrimaryPrivateSubnetId"]]
    groups = queue["Networking"]["AdditionalSecurityGroups"]
    assert (vpc["EfaSecurityGroupId"] in groups) == (cluster == "gpu-efa")
    assert head["Iam"]["AdditionalIamPolicies"][0]["Policy"].startswith("arn:aws:iam::aws:policy/")


@pytest.mark.aws_emulator
def test_create_config_errors_name_the_bad_input(aws_emulator, stacks, run_dir):
    base = ["--cluster", "gpu-efa", "--key-name", "k", "--out", str(run_dir / "x.yaml")]
    cases = [
        (["--stack", "no-such-stack", *base], None, "stack 'no-such-stack' not found in region us-east-1"),
        (["--stack", "pc-vpc", *base], None, "stack 'pc-vpc' has no output 'VpcStackName'"),
        (["--stack", "pc-prereq", "--region", "us-west-2", *base], None, "not found in region us-west-2"),
        (["--stack", "pc-prereq", *base], "mars-north-1", "region 'mars-north-1' is not an AWS region"),
    ]
    for args, region, message in cases:
        done = run_create_config(aws_emulator, *args, region=region)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert not (run_dir / "x.yaml").exists()


# --- aws-parallelcluster's full validators on the emulator (validate_config.py --against-aws) ---

PCLUSTER_PYTHON = ROOT / ".nox" / "pcluster" / "bin" / "python"
PCLUSTER_VERSION = next(
    pin.split("==")[1]
    for pin in tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["pcluster"]
    if pin.startswith("aws-parallelcluster==")
)
FINDING = re.compile(r"^  (ERROR|WARNING|INFO) (\S+): (.+)$")


@pytest.fixture(scope="module")
def pcluster_python() -> Path:
    """The `pcluster` nox session's interpreter (aws-parallelcluster pins clash with .venv's)."""
    if not PCLUSTER_PYTHON.is_file():
        message = missing_message(
            "aws-parallelcluster environment",
            [str(PCLUSTER_PYTHON.relative_to(ROOT))],
            "run `.venv/bin/nox -s pcluster` once (make test runs it before the tests)",
        )
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return PCLUSTER_PYTHON


def run_validators(
    emulator, python: Path, *configs: Path, options: tuple[str, ...] = ()
) -> tuple[subprocess.CompletedProcess, dict[str, tuple[str, list[tuple[str, str, str]]]]]:
    """validate_config.py --against-aws on the emulator: the run and {config: (its line, [findings])}."""
    done = subprocess.run(
        [str(python), str(FOLDER / "validate_config.py"), "--against-aws", *options, *map(str, configs)],
        env=emulator.environ(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report: dict[str, tuple[str, list[tuple[str, str, str]]]] = {}
    current = ""
    for line in done.stdout.splitlines():
        if finding := FINDING.match(line):
            report[current][1].append(finding.groups())
        else:
            current = line.split(": ", 1)[0]
            report[current] = (line, [])
    return done, report


def render_with(emulator, out: Path, *args: str) -> Path:
    done = run_create_config(emulator, "--stack", "pc-prereq", "--out", str(out), *args)
    assert done.returncode == 0, done.stderr
    return out


LAUNCH_TEMPLATE_VALIDATORS = ("HeadNodeLaunchTemplateValidator", "ComputeResourceLaunchTemplateValidator")


def tally(line: str) -> tuple[int, int]:
    """(run, suppressed) of a config's line."""
    run, suppressed = re.search(r"validators: (\d+) run, (\d+) suppressed;", line).groups()
    return int(run), int(suppressed)


@pytest.mark.aws_emulator
def test_pcluster_validators_pass_on_configs_rendered_from_the_stacks(
    aws_emulator, stacks, key_pair, pcluster_python, run_dir
):
    key = ("--key-name", key_pair)
    gpu = render_with(aws_emulator, run_dir / "gpu-efa.yaml", "--cluster", "gpu-efa", *key, "--count", "2")
    cpu = render_with(aws_emulator, run_dir / "cpu-small.yaml", "--cluster", "cpu-small", *key)
    done, report = run_validators(aws_emulator, pcluster_python, gpu, cpu)
    assert done.returncode == 0 and not done.stderr, done.stdout + done.stderr
    for path in (gpu, cpu):
        line, findings = report[str(path)]
        assert line.startswith(f"{path}: valid against AWS us-east-1 at {aws_emulator.endpoint}"), line
        assert f"aws-parallelcluster {PCLUSTER_VERSION} validators:" in line, line
        run, suppressed = tally(line)
        assert run > 50 and suppressed == 0, line
        assert all(level != "ERROR" for level, _, _ in findings), findings
    # GPU cluster: 1-minute EC2 metrics are on by design (costs a little). /fsx and /home are the stack's
    # file systems (a ParallelCluster-managed /fsx would add DeletionPolicyValidator's INFO on Retain).
    assert [(level, name) for level, name, _ in report[str(gpu)][1]] == [
        ("WARNING", "DetailedMonitoringValidator")
    ]
    assert report[str(cpu)][1] == []


@pytest.mark.aws_emulator
def test_the_launch_template_validators_run_on_the_emulator(
    aws_emulator, stacks, key_pair, pcluster_python, run_dir
):
    """The RunInstances dry runs of the head node and of the queue reach the emulator and pass: it accepts
    the instance-store block device mappings ParallelCluster sends (a refused call is an ERROR finding).
    --suppress-validator moves exactly these two from run to suppressed."""
    cpu = render_with(aws_emulator, run_dir / "cpu.yaml", "--cluster", "cpu-small", "--key-name", key_pair)
    suppress = tuple(f"--suppress-validator=type:{name}" for name in LAUNCH_TEMPLATE_VALIDATORS)
    tallies = []
    for options in ((), suppress):
        done, report = run_validators(aws_emulator, pcluster_python, cpu, options=options)
        line, findings = report[str(cpu)]
        assert done.returncode == 0 and findings == [], done.stdout + done.stderr
        tallies.append(tally(line))
    (run, suppressed), (run_then, suppressed_then) = tallies
    assert suppressed == 0 and (run_then, suppressed_then) == (run - 2, 2), tallies


@pytest.mark.aws_emulator
def test_official_ami_owner_is_where_the_ami_is_looked_up(
    aws_emulator, stacks, key_pair, pcluster_python, run_dir
):
    """`amazon` (pcluster's own choice, the default) owns ParallelCluster's AMI in the emulator's catalogue
    as on AWS; `self`, the caller's account, holds none: one ERROR named after the look-up, exit 1."""
    name = f"aws-parallelcluster-{PCLUSTER_VERSION}-ubuntu-2204-lts-hvm-x86_64-*"
    images = aws_emulator.client("ec2").describe_images(
        Owners=["amazon"], Filters=[{"Name": "name", "Values": [name]}]
    )["Images"]
    assert [image["Description"] for image in images] == ["AWS ParallelCluster AMI for ubuntu2204"]
    cpu = render_with(aws_emulator, run_dir / "cpu.yaml", "--cluster", "cpu-small", "--key-name", key_pair)
    done, report = run_validators(
        aws_emulator, pcluster_python, cpu, options=("--official-ami-owner", "self")
    )
    line, findings = report[str(cpu)]
    assert done.returncode == 1 and line.startswith(f"{cpu}: INVALID against AWS"), done.stdout + done.stderr
    assert findings == [
        ("ERROR", "describe_images", "Cannot find official ParallelCluster AMI (validation stopped there)")
    ]
    done, report = run_validators(
        aws_emulator, pcluster_python, cpu, options=("--official-ami-owner", "amazon")
    )
    assert done.returncode == 0 and report[str(cpu)][1] == [], done.stdout + done.stderr


@pytest.mark.aws_emulator
def test_pcluster_cli_dry_run_needs_node_checks_the_schema_then_runs_the_validators(
    aws_emulator, stacks, key_pair, pcluster_python, run_dir
):
    """`pcluster create-cluster --dryrun true` on the emulator: Node.js first, then the schema, then the
    validators; it exits 1 even when the request would have succeeded (the README's line turns the
    verdict into the exit status)."""
    require_programs("the pcluster CLI", "node", how="install nodejs: sudo make system-deps")
    pcluster = pcluster_python.parent / "pcluster"
    gpu = render_with(
        aws_emulator, run_dir / "gpu.yaml", "--cluster", "gpu-efa", "--key-name", key_pair, "--count", "2"
    )
    no_key = render_with(
        aws_emulator, run_dir / "no-key.yaml", "--cluster", "cpu-small", "--key-name", "no-such-key"
    )
    typo = run_dir / "typo.yaml"
    typo.write_text(no_key.read_text().replace("InstanceType: c5.xlarge", "InstanceTypo: c5.xlarge"))

    def dry_run(config: Path, **env: str) -> tuple[int, dict]:
        argv = ["create-cluster", "--cluster-name", "ml", "--cluster-configuration", str(config)]
        done = subprocess.run(
            [str(pcluster), *argv, "--dryrun", "true"],
            env={**aws_emulator.environ(), **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return done.returncode, json.loads(done.stdout)

    code, answer = dry_run(gpu, PATH=str(pcluster.parent))  # no `node` on PATH
    assert code == 1 and answer["message"].startswith("Unable to find node executable. Node.js is required")
    code, answer = dry_run(typo)
    assert code == 1 and answer["message"] == "Invalid cluster configuration.", answer
    (error,) = answer["configurationValidationErrors"]
    assert (
        error["type"] == "ConfigSchemaValidator" and "'InstanceTypo': ['Unknown field.']" in error["message"]
    )
    code, answer = dry_run(no_key)
    assert code == 1 and answer["message"] == "Invalid cluster configuration.", answer
    assert answer["configurationValidationErrors"] == [
        {
            "level": "ERROR",
            "type": "KeyPairValidator",
            "message": "The keypair '{'no-such-key'}' does not exist.",
        }
    ]
    code, answer = dry_run(gpu)
    assert code == 1 and answer["message"] == "Request would have succeeded, but DryRun flag is set.", answer
    assert [(m["level"], m["type"]) for m in answer["validationMessages"]] == [
        ("WARNING", "DetailedMonitoringValidator")
    ]


@pytest.mark.aws_emulator
def test_pcluster_validators_reject_what_aws_would(aws_emulator, stacks, key_pair, pcluster_python, run_dir):
    vpc, prereq = stacks
    offers = aws_emulator.client("ec2").describe_instance_type_offerings(
        Filters=[{"Name": "instance-type", "Values": ["p5e.48xlarge"]}]
    )["InstanceTypeOfferings"]
    assert offers == []  # the emulator's region does not offer it (instance-types.yaml knows it)
    not_offered = render_with(
        aws_emulator,
        run_dir / "not-offered.yaml",
        *("--cluster", "gpu-efa", "--instance-type", "p5e.48xlarge", "--key-name", "no-such-key"),
    )
    cpu = render_with(
        aws_emulator, run_dir / "cpu-small.yaml", "--cluster", "cpu-small", "--key-name", key_pair
    )
    text = cpu.read_text()
    bad_group = run_dir / "bad-group.yaml"
    bad_group.write_text(text.replace(prereq["HomeNfsSecurityGroupId"], "sg-0123456789abcdef0"))
    bad_subnet = run_dir / "bad-subnet.yaml"
    bad_subnet.write_text(text.replace(vpc["PrimaryPrivateSubnetId"], "subnet-0123456789abcdef0"))
    done, report = run_validators(aws_emulator, pcluster_python, not_offered, bad_group, bad_subnet)
    assert done.returncode == 1 and not done.stderr, done.stdout + done.stderr
    errors = {
        path.name: [(name, message) for level, name, message in report[str(path)][1] if level == "ERROR"]
        for path in (not_offered, bad_group, bad_subnet)
    }
    for path in (not_offered, bad_group, bad_subnet):
        assert report[str(path)][0].startswith(f"{path}: INVALID against AWS"), report[str(path)][0]
    assert errors["not-offered.yaml"] == [
        ("KeyPairValidator", "The keypair '{'no-such-key'}' does not exist."),
        ("InstanceTypeBaseAMICompatibleValidator", "The instance type 'p5e.48xlarge' is not supported."),
    ]
    # Without the /home NFS group, nothing the nodes have opens the OpenZFS file system's NFS ports.
    home = prereq["FsxOpenZfsFileSystemId"]
    assert errors["bad-group.yaml"] == [
        ("SecurityGroupsValidator", "The security group '{'sg-0123456789abcdef0'}' does not exist"),
        *(
            (
                "ExistingFsxNetworkingValidator",
                f"The current security group settings on file storage '{home}' does not satisfy mounting "
                "requirement. The file storage must be associated to a security group that allows inbound "
                f"{protocol} traffic through ports [111, 2049, 20001, 20002, 20003]. "
                "Missing ports: [111, 2049, 20001, 20002, 20003]",
            )
            for protocol in ("TCP", "UDP")
        ),
    ]
    assert errors["bad-subnet.yaml"] == [
        (
            "describe_subnets",
            "The subnet ID 'subnet-0123456789abcdef0' does not exist (validation stopped there)",
        )
    ]


def test_against_aws_names_only_real_validators(pcluster_python, run_dir):
    config = run_dir / "c.yaml"
    config.write_text(yaml.safe_dump(offline("cpu-small")))
    for name in ("type:NoSuchValidator", "KeyPairValidator"):  # unknown; the type: prefix missing
        script = [str(pcluster_python), str(FOLDER / "validate_config.py"), "--against-aws"]
        done = subprocess.run(
            [*script, f"--suppress-validator={name}", str(config)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 2 and not done.stdout, done.stdout + done.stderr
        assert done.stderr == (
            f"error: --suppress-validator {name}: "
            f"not type:NAME of an aws-parallelcluster {PCLUSTER_VERSION} validator\n"
        )


PREREQ_OUT = {"VpcStackName": "v", "HomeNfsSecurityGroupId": "sg-1"}
FSX_OUT = {**PREREQ_OUT, "FsxLustreFileSystemId": "fs-1", "FsxOpenZfsRootVolumeId": "fsvol-1"}
VPC_OUT = {
    "PrimaryAvailabilityZone": "eu-west-1a",
    "PrimaryPrivateSubnetId": "subnet-p",
    "EfaSecurityGroupId": "sg-e",
    "FsxLustreSecurityGroupId": "sg-f",
}


def offline(template="gpu-efa", prereq=FSX_OUT, **options):
    return create_config.render(
        template,
        prereq,
        VPC_OUT,
        region="eu-west-1",
        partition="aws",
        prereq_stack="s",
        key_name="k",
        **options,
    )


@pytest.mark.parametrize("capacity", ["odcr", "capacity-block"])
def test_reserved_capacity_makes_static_nodes_without_placement_group(capacity):
    config = offline(capacity=capacity, capacity_reservation_id="cr-0123456789abcdef0", count=4)
    queue = config["Scheduling"]["SlurmQueues"][0]
    resource = queue["ComputeResources"][0]
    assert queue["CapacityType"] == ("CAPACITY_BLOCK" if capacity == "capacity-block" else "ONDEMAND")
    assert resource["MinCount"] == resource["MaxCount"] == 4
    assert resource["CapacityReservationTarget"] == {"CapacityReservationId": "cr-0123456789abcdef0"}
    assert queue["Networking"]["PlacementGroup"] == {"Enabled": False}


def test_on_demand_gpu_queue_scales_from_zero_in_a_placement_group_with_efa():
    config = offline(count=3)
    queue = config["Scheduling"]["SlurmQueues"][0]
    resource = queue["ComputeResources"][0]
    assert (resource["MinCount"], resource["MaxCount"], resource["Efa"]) == (0, 3, {"Enabled": True})
    assert queue["Networking"]["PlacementGroup"] == {"Enabled": True} and queue["CapacityType"] == "ONDEMAND"
    assert resource["Name"] == "p5-48xlarge" and config["HeadNode"]["Networking"]["SubnetId"] == "subnet-p"
    storage = {s["MountDir"]: s for s in config["SharedStorage"]}
    assert storage["/fsx"]["FsxLustreSettings"] == {"FileSystemId": "fs-1"}
    assert storage["/home"]["FsxOpenZfsSettings"] == {"VolumeId": "fsvol-1"}


def test_efa_follows_instance_types_yaml():
    facts = yaml.safe_load((ROOT / "1.architectures" / "instance-types.yaml").read_text())["instance_types"]
    for name, fact in facts.items():
        resource = offline(instance_type=name)["Scheduling"]["SlurmQueues"][0]["ComputeResources"][0]
        assert ("Efa" in resource) == (fact["efa"]["devices"] > 0), name


@pytest.mark.parametrize("instance", ["trn1.32xlarge", "trn1n.32xlarge", "trn2.48xlarge"])
def test_trainium_cluster_is_an_efa_queue_of_trainium_nodes(instance):
    config = offline("trn-efa", instance_type=instance, count=4)
    queue = config["Scheduling"]["SlurmQueues"][0]
    resource = queue["ComputeResources"][0]
    assert queue["Name"] == "trn" and resource["InstanceType"] == instance
    assert (resource["MinCount"], resource["MaxCount"], resource["Efa"]) == (0, 4, {"Enabled": True})
    assert queue["Networking"]["PlacementGroup"] == {"Enabled": True}
    assert queue["ComputeSettings"]["LocalStorage"]["RootVolume"]["Size"] >= 512  # Neuron's minimum
    assert {s["MountDir"] for s in config["SharedStorage"]} == {"/fsx", "/home"}  # data, compile cache
    block = offline("trn-efa", capacity="capacity-block", capacity_reservation_id="cr-0123456789abcdef0")
    assert block["Scheduling"]["SlurmQueues"][0]["CapacityType"] == "CAPACITY_BLOCK"
    with pytest.raises(
        create_config.ConfigError, match=r"p5\.48xlarge is not a Trainium type; use --cluster gpu-efa"
    ):
        offline("trn-efa", instance_type="p5.48xlarge")


def test_cpu_cluster_without_stack_file_systems_has_no_shared_storage():
    config = offline("cpu-small", prereq=PREREQ_OUT)
    assert "SharedStorage" not in config
    assert "Efa" not in config["Scheduling"]["SlurmQueues"][0]["ComputeResources"][0]


@pytest.mark.parametrize(
    ("template", "options", "message"),
    [
        ("gpu-efa", {"capacity": "odcr"}, "needs --capacity-reservation-id"),
        (
            "gpu-efa",
            {"capacity": "capacity-block", "capacity_reservation_id": "r-1"},
            "needs --capacity-reservation-id",
        ),
        (
            "cpu-small",
            {"capacity": "odcr", "capacity_reservation_id": "cr-0123456789abcdef0"},
            "only the gpu-efa",
        ),
        ("gpu-efa", {"instance_type": "x9.huge"}, "x9.huge is not in instance-types.yaml"),
        ("gpu-efa", {"count": 0}, "--count 0"),
        ("nope", {}, "--cluster nope: no such template"),
    ],
)
def test_bad_options_are_one_line_errors(template, options, message):
    with pytest.raises(create_config.ConfigError, match=message) as caught:
        offline(template, **options)
    assert "\n" not in str(caught.value)


def test_wrong_region_for_the_vpc_is_rejected():
    with pytest.raises(
        create_config.ConfigError, match=r"in AZ eu-west-1a, not in region us-east-2: pass --region eu-west-1"
    ):
        create_config.render(
            "gpu-efa",
            PREREQ_OUT,
            VPC_OUT,
            region="us-east-2",
            partition="aws",
            prereq_stack="s",
            key_name="k",
        )


@pytest.mark.parametrize(
    ("lustre", "openzfs"), [("true", "true"), ("true", "false"), ("false", "true"), ("false", "false")]
)
def test_fsx_conditions_select_file_systems_and_outputs(lustre, openzfs):
    rendered = render(
        load_template(PREREQ),
        {"VpcStackName": "ml-vpc", "CreateFsxLustre": lustre, "CreateFsxOpenZfs": openzfs},
    )
    assert ("FsxLustre" in rendered.resources) == (lustre == "true")
    assert ("FsxOpenZfs" in rendered.resources) == (openzfs == "true")
    lustre_outputs = {"FsxLustreFileSystemId", "FsxLustreMountName", "FsxLustreDnsName"}
    assert (lustre_outputs <= set(rendered.outputs)) == (lustre == "true")
    assert ("FsxOpenZfsRootVolumeId" in rendered.outputs) == (openzfs == "true")
    assert {"VpcStackName", "HomeNfsSecurityGroupId"} <= set(
        rendered.outputs
    )  # always: create_config needs them


def test_lustre_is_persistent_2_and_outputs_are_exported_by_name():
    template = load_template(PREREQ)
    lustre = template["Resources"]["FsxLustre"]["Properties"]["LustreConfiguration"]
    assert lustre["DeploymentType"] == "PERSISTENT_2"
    for name, output in template["Outputs"].items():
        assert output["Export"]["Name"] == {"Fn::Sub": f"${{AWS::StackName}}-{name}"}
    vpc_outputs = set(load_template(VPC_ONE_AZ)["Outputs"])
    imported = {
        line.split("${VpcStackName}-")[1].strip()
        for line in PREQ_TEXT.splitlines()
        if "${VpcStackName}-" in line
    }
    assert imported and imported <= vpc_outputs  # every import is a VPC stack export name
    assert set(create_config.VPC_OUTPUTS) <= vpc_outputs and set(create_config.PREREQ_OUTPUTS) <= set(
        template["Outputs"]
    )


PREQ_TEXT = PREREQ.read_text()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"FsxLustreThroughputPerTiB": "300"}, "FsxLustreThroughputPerTiB='300' is not one of"),
        ({"FsxLustreStorageCapacityGiB": "100"}, "FsxLustreStorageCapacityGiB=100 is outside"),
        ({"CreateFsxOpenZfs": "yes"}, "CreateFsxOpenZfs='yes' is not one of"),
        ({"VpcStackName": "1bad name"}, "VpcStackName='1bad name' does not match"),
    ],
)
def test_bad_parameters_are_rejected(overrides, message):
    with pytest.raises(TemplateParameterError, match=message):
        render(load_template(PREREQ), {"VpcStackName": "ml-vpc", **overrides})


def test_no_hard_coded_region_account_or_az():
    files = [PREREQ, FOLDER / "create_config.py", *sorted((FOLDER / "clusters").glob("*.yaml"))]
    for path in files:
        text = path.read_text()
        assert "us-east-1" not in text and "123456789012" not in text, path
        assert "arn:aws:" not in text, path  # the partition comes from the region


def test_pcluster_session_is_part_of_make_test():
    # make test runs `nox -t main` (pcluster before the suite, whose tests use its venv) beside `nox -t side`.
    assert re.search(r'nox\.options\.sessions = \[[^\]]*"pcluster"', (ROOT / "noxfile.py").read_text())
    recipe = (ROOT / "Makefile").read_text().split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "$(NOX) -t main;" in recipe and "$(NOX) -t side >" in recipe
    listed = subprocess.run(
        [sys.executable, "-m", "nox", "-l", "--json", "-t", "main"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    main = [session["name"] for session in json.loads(listed.stdout)]
    assert main.index("pcluster") < main.index("tests"), main
    assert os.path.isfile(FOLDER / "validate_config.py")
