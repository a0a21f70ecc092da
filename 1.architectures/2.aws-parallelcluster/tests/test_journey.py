"""The README's path from a VPC to a training job, run as written (the `journey` walkthrough): the VPC and
prerequisites stacks on the AWS emulator, create_config.py, the pcluster CLI installed in this folder's
venv the README's way, aws-parallelcluster's schema validation with it, its full validators and
`pcluster create-cluster --dryrun true` against the emulator (holding the key pair of tests/conftest.py and
ParallelCluster's official AMIs), then the rendered GPU cluster's queue and node names as a real Slurm
cluster on this machine, and FSDP's tiny.sbatch submitted to it.
Also: how ParallelCluster's queues become partitions and node names (testbed.slurm)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest
import yaml

from testbed.slurm import REQUIRED_PROGRAMS, LocalSlurm, partitions_from_pcluster
from testbed.standins import run_with_standins
from testbed.system import require_programs
from testbed.walkthrough import extract_blocks

FOLDER = Path(__file__).resolve().parents[1]
ROOT = FOLDER.parents[1]
README = FOLDER / "README.md"
PCLUSTER_VERSION = yaml.safe_load((ROOT / "2.ami_and_containers/versions.yaml").read_text())["python"][
    "aws-parallelcluster"
]


@pytest.fixture
def short_tmpdir(monkeypatch):
    """TMPDIR for the walkthrough's `mktemp -d` (Slurm's state); stops a cluster a failed run left there."""
    folder = Path(tempfile.mkdtemp(prefix="pcj-"))
    monkeypatch.setenv("TMPDIR", str(folder))
    yield folder
    for state in folder.glob("*/cluster.json"):
        LocalSlurm.attach(state.parent).stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.aws_emulator
@pytest.mark.slurm
@pytest.mark.slow
def test_readme_journey_from_vpc_to_a_training_job(
    aws_emulator, key_pair, artifacts_root, short_tmpdir, monkeypatch, tmp_path
):
    require_programs("local Slurm", *REQUIRED_PROGRAMS)
    require_programs("the pcluster CLI", "node", how="install nodejs: sudo make system-deps")
    aws_emulator.export(monkeypatch.setenv)
    # The AWS emulator stands in for the account (no stand-in command: the README's own CLIs call it).
    result = run_with_standins(
        README, "journey", artifacts_root / "wt-pcj", tmp_path / "bin", tools=()
    ).check()
    out = result.output
    # The README's Slurm cluster was stopped by the README's own `down` (nothing left in TMPDIR).
    assert not list(short_tmpdir.glob("*/cluster.json"))

    # The pcluster CLI from this folder's venv, at the pinned version, validated both configs.
    here = result.workdir / "1.architectures/2.aws-parallelcluster"
    assert (here / ".venv/bin/pcluster").is_file()
    assert f'"version": "{PCLUSTER_VERSION}"' in out
    assert out.count(f"valid (aws-parallelcluster {PCLUSTER_VERSION} cluster schema)") == 2, out[-3000:]

    # Its full validators against the emulator's account: all run, nothing suppressed, the GPU fleet's
    # detailed monitoring the only finding; then the CLI's dry run came to the same verdict.
    verdict = re.search(
        rf"^build/gpu-efa\.yaml: valid against AWS us-east-1 at \S+ \(aws-parallelcluster {PCLUSTER_VERSION} "
        r"validators: (\d+) run, 0 suppressed; 0 ERROR, 1 WARNING, 0 INFO\)$",
        out,
        re.M,
    )
    assert verdict and int(verdict[1]) > 50, out[-3000:]
    assert "\n  WARNING DetailedMonitoringValidator: Detailed Monitoring is enabled" in out
    dry_run = json.loads((here / "build/dryrun.json").read_text())
    assert dry_run["message"] == "Request would have succeeded, but DryRun flag is set.", dry_run
    assert [(m["level"], m["type"]) for m in dry_run["validationMessages"]] == [
        ("WARNING", "DetailedMonitoringValidator")
    ]

    # The configs carry the stacks' IDs: /fsx and /home are the prerequisites' file systems.
    config = yaml.safe_load((here / "build/gpu-efa.yaml").read_text())
    assert config["Region"] == "us-east-1" and config["Imds"] == {"ImdsSupport": "v2.0"}
    fsx, home = config["SharedStorage"]
    assert fsx["MountDir"] == "/fsx" and fsx["FsxLustreSettings"]["FileSystemId"].startswith("fs-")
    assert home["MountDir"] == "/home" and home["FsxOpenZfsSettings"]["VolumeId"].startswith("fsvol-")

    # The Slurm cluster had the config's queue as its partition and ParallelCluster's node names.
    assert partitions_from_pcluster(config) == {"gpu": ["gpu-dy-p5-48xlarge-1", "gpu-dy-p5-48xlarge-2"]}
    assert re.search(r"^gpu\*\s+up\s+infinite\s+2\s+idle\s+gpu-dy-p5-48xlarge-\[1-2\]$", out, re.M), out
    assert " NodeList=gpu-dy-p5-48xlarge-[1-2]" in out

    # FSDP's tiny.sbatch trained across both nodes with the repository's venv and wrote its result.
    fsdp = result.workdir / "3.test_cases/pytorch/FSDP"
    (run,) = (fsdp / "runs").glob("tiny-*")
    summary = json.loads((run / "result.json").read_text())
    assert summary["step"] == 10 and summary["world_size"] == 4
    assert math.isfinite(summary["final_loss"]) and summary["final_loss"] > 0
    assert (run / "checkpoints/step-00000010/COMPLETE").exists()
    job_log = (fsdp / f"fsdp-tiny_{run.name.removeprefix('tiny-')}.out").read_text()
    assert "2 nodes x 2" in job_log

    # The delete step left nothing: no stack of the README, no file system of its prerequisites.
    stacks = aws_emulator.client("cloudformation").list_stacks()["StackSummaries"]
    assert all(s["StackStatus"] == "DELETE_COMPLETE" for s in stacks if s["StackName"].startswith("ml-pc-"))
    left = {fs["FileSystemId"] for fs in aws_emulator.client("fsx").describe_file_systems()["FileSystems"]}
    assert fsx["FsxLustreSettings"]["FileSystemId"] not in left


def test_every_shell_block_is_executed_or_says_why_not():
    text = README.read_text()
    fences = re.findall(r"(?:<!--\s*(walkthrough|illustrative):[^>]*-->\s*\n)?```(?:bash|sh|console)\n", text)
    unmarked = [i for i, marker in enumerate(fences) if not marker]
    assert not unmarked, f"shell blocks {unmarked} have neither a walkthrough nor an illustrative marker"
    executed = len(extract_blocks(README, "journey"))
    assert executed == sum(marker == "walkthrough" for marker in fences) >= 7


def test_the_cli_pin_is_versions_yaml():
    assert (FOLDER / "requirements.txt").read_text().split() == [f"aws-parallelcluster=={PCLUSTER_VERSION}"]
    group = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["pcluster"]
    assert group == [f"aws-parallelcluster=={PCLUSTER_VERSION}"]


def test_system_deps_install_nodejs_for_the_cli():
    assert re.search(r"^packages\+=\(nodejs\)$", (ROOT / "testbed/system-deps.sh").read_text(), re.M)


def queue(name, *resources):
    """A SlurmQueues entry with (name, MinCount, MaxCount) compute resources."""
    keys = ("Name", "MinCount", "MaxCount")
    return {"Name": name, "ComputeResources": [dict(zip(keys, r, strict=True)) for r in resources]}


def test_queues_become_partitions_with_parallelclusters_node_names():
    config = {
        "Scheduling": {
            "SlurmQueues": [
                queue("gpu", ("p5-48xlarge", 2, 3)),
                queue("cpu", ("c5-xlarge", 0, 1), ("m5-large", 1, 1)),
            ]
        }
    }
    assert partitions_from_pcluster(config) == {
        "gpu": ["gpu-st-p5-48xlarge-1", "gpu-st-p5-48xlarge-2", "gpu-dy-p5-48xlarge-1"],
        "cpu": ["cpu-dy-c5-xlarge-1", "cpu-st-m5-large-1"],
    }
    default = {"Scheduling": {"SlurmQueues": [{"Name": "q", "ComputeResources": [{"Name": "cr"}]}]}}
    assert partitions_from_pcluster(default)["q"] == [f"q-dy-cr-{i}" for i in range(1, 11)]  # MaxCount 10


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"Scheduling": {"Scheduler": "awsbatch"}}, "no Scheduling.SlurmQueues"),
        ({"Scheduling": {"SlurmQueues": [queue("gpu", ("p5", 0, "${Count}"))]}}, "render it first"),
        ({"Scheduling": {"SlurmQueues": [queue("gpu", ("p5", 2, 1))]}}, "MinCount <= MaxCount"),
    ],
)
def test_configs_without_a_slurm_layout_are_refused(config, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        partitions_from_pcluster(config)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No such file"),
        ("Scheduling: [unclosed\n", "pass a config create_config.py wrote"),
        ("Region: us-east-1\n", "no Scheduling.SlurmQueues"),
    ],
)
def test_up_with_a_bad_pcluster_config_is_one_line_and_starts_nothing(tmp_path, content, message):
    config = tmp_path / "cluster.yaml"
    if content is not None:
        config.write_text(content)
    state = tmp_path / "s"
    argv = ["up", "--pcluster-config", str(config), "--state-dir", str(state)]
    done = subprocess.run(
        [sys.executable, "-m", "testbed.slurm", *argv],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("error: --pcluster-config") and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not state.exists()
