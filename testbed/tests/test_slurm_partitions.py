"""LocalSlurm with named nodes and several partitions (the layout a cluster's own slurm.conf declares)."""

from __future__ import annotations

import pytest

from testbed.slurm import REQUIRED_PROGRAMS, LocalSlurm, partitions_from_conf
from testbed.system import require_programs

FRAGMENT = """\
# generated
NodeName=ip-10-1-0-11 NodeHostname=ip-10-1-0-11 NodeAddr=10.1.0.11 CPUs=96 Feature=g1 State=UNKNOWN
NodeName=ip-10-1-0-12 NodeAddr=10.1.0.12
PartitionName=dev Nodes=ip-10-1-0-11 Default=YES MaxTime=INFINITE State=UP
PartitionName=train Nodes=ip-10-1-0-12,ip-10-1-0-11 Default=NO State=UP
"""


def test_partitions_from_conf_reads_node_and_partition_lines() -> None:
    assert partitions_from_conf(FRAGMENT) == {
        "dev": ["ip-10-1-0-11"],
        "train": ["ip-10-1-0-12", "ip-10-1-0-11"],
    }


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("NodeName=a\nPartitionName=p Nodes=a,b\n", "without a NodeName line: ['b']"),
        ("NodeName=n[1-2]\nPartitionName=p Nodes=n[1-2]\n", "plain comma list"),
        ("NodeName=a\n", "no partitions"),
    ],
)
def test_partitions_from_conf_refuses_what_it_cannot_map(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        partitions_from_conf(text)


def test_partitions_set_node_names_and_count_without_starting() -> None:
    cluster = LocalSlurm(partitions={"a": ["x1", "x2"], "b": ["x2", "x3"]})
    try:
        assert cluster.node_names == ["x1", "x2", "x3"] and cluster.nodes == 3
        lines = cluster._partition_lines().splitlines()
        assert lines[0].startswith("PartitionName=a Nodes=x1,x2 Default=YES")
        assert lines[1].startswith("PartitionName=b Nodes=x2,x3 Default=NO")
    finally:
        cluster.stop()


def test_default_cluster_keeps_one_partition_of_n_nodes() -> None:
    cluster = LocalSlurm(nodes=3, partition="cpu")
    try:
        assert cluster.node_names == ["n1", "n2", "n3"]
        assert cluster._partition_lines().startswith("PartitionName=cpu Nodes=n1,n2,n3 Default=YES")
    finally:
        cluster.stop()


@pytest.mark.parametrize("partitions", [{"p": []}, {"p": ["bad name"]}, {"bad/name": ["x"]}])
def test_bad_partitions_are_refused(partitions: dict) -> None:
    with pytest.raises(ValueError, match="must be non-empty plain names"):
        LocalSlurm(partitions=partitions)


@pytest.mark.slurm
def test_jobs_run_on_each_declared_partition_and_attach_keeps_the_layout() -> None:
    require_programs("local Slurm", *REQUIRED_PROGRAMS)
    layout = {"dev": ["ip-10-1-0-11"], "train": ["ip-10-1-0-12"]}
    # Default state folder (short, under the temp dir): long node names need room in socket paths.
    with LocalSlurm(partitions=layout) as cluster:
        for name, nodes in layout.items():
            job = cluster.submit("#!/bin/bash\nhostname\n", sbatch_args=[f"--partition={name}"])
            assert job.wait(timeout=60) == "COMPLETED"
            assert job.nodes == nodes
        assert LocalSlurm.attach(cluster.state_dir).partitions == layout
