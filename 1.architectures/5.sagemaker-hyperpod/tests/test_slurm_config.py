"""The generated node/partition lines run a real Slurm: LocalSlurm starts with exactly the declared
nodes and partitions, and a job submitted to each partition lands on that partition's node."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from testbed.slurm import REQUIRED_PROGRAMS, LocalSlurm, partitions_from_conf
from testbed.system import require_programs

HERE = Path(__file__).resolve().parent
LIFECYCLE = HERE.parent / "LifecycleScripts" / "base-config" / "lifecycle.py"
FIXTURES = HERE / "fixtures"


def generated_conf() -> str:
    """What the controller writes to nodes_partitions.conf, as the user prints it."""
    done = subprocess.run(
        [
            sys.executable,
            str(LIFECYCLE),
            "--print-slurm-conf",
            "--resource-config",
            str(FIXTURES / "resource_config.json"),
            "--provisioning-parameters",
            str(FIXTURES / "provisioning_parameters.json"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_generated_lines_declare_each_worker_node_with_its_group_and_cores() -> None:
    lines = generated_conf().splitlines()
    nodes = [line for line in lines if line.startswith("NodeName=")]
    assert nodes == [
        "NodeName=ip-10-1-0-11 NodeHostname=ip-10-1-0-11 NodeAddr=10.1.0.11 CPUs=24 Feature=worker-group-1"
        " State=UNKNOWN",
        "NodeName=ip-10-1-0-12 NodeHostname=ip-10-1-0-12 NodeAddr=10.1.0.12 CPUs=96 Feature=worker-group-2"
        " State=UNKNOWN",
    ]
    assert "PartitionName=dev Nodes=ip-10-1-0-11 Default=YES MaxTime=INFINITE State=UP" in lines
    assert "PartitionName=train Nodes=ip-10-1-0-12 Default=NO MaxTime=INFINITE State=UP" in lines
    assert not any("10.1.0.10" in line for line in lines)  # the controller is not a compute node


@pytest.mark.slurm
def test_generated_partitions_run_a_job_each_on_a_real_slurm() -> None:
    require_programs("local Slurm", *REQUIRED_PROGRAMS)
    partitions = partitions_from_conf(generated_conf())
    assert partitions == {"dev": ["ip-10-1-0-11"], "train": ["ip-10-1-0-12"]}
    with LocalSlurm(partitions=partitions) as cluster:
        sinfo = cluster._run(["sinfo", "--noheader", "--format=%P %N %T"])
        assert sorted(sinfo.split("\n")[:-1]) == ["dev* ip-10-1-0-11 idle", "train ip-10-1-0-12 idle"]
        for name, nodes in partitions.items():
            job = cluster.submit(
                '#!/bin/bash\necho "partition=$SLURM_JOB_PARTITION node=$SLURMD_NODENAME"\n',
                sbatch_args=[f"--partition={name}"],
            )
            assert job.wait(timeout=120) == "COMPLETED", job.output()
            assert job.nodes == nodes
            assert f"partition={name} node={nodes[0]}" in job.output()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No such file"),
        ("# nothing here\n", "no partitions"),
        ("NodeName=a\nPartitionName=p Nodes=a,b\n", "partition nodes without a NodeName line: ['b']"),
    ],
)
def test_local_slurm_from_a_bad_slurm_conf_is_one_line_and_starts_nothing(tmp_path, content, message) -> None:
    conf = tmp_path / "nodes_partitions.conf"
    if content is not None:
        conf.write_text(content)
    state = tmp_path / "state"
    done = subprocess.run(
        [sys.executable, "-m", "testbed.slurm", "up", "--slurm-conf", str(conf), "--state-dir", str(state)],
        cwd=HERE.parents[2],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"error: --slurm-conf {conf}: ") and done.stderr.count("\n") == 1
    assert message in done.stderr and not state.exists()
