"""Targets from Slurm's node list: one group per node, instance = node name, power-saved nodes left out."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import slurm_targets

TOOL = Path(slurm_targets.__file__)
# `sinfo --Node --noheader --format=%N|%o|%G|%t` on a ParallelCluster cluster: two static p5 nodes
# (one drained), a dynamic p5 node powered down by power saving (its NodeAddr is its name), one
# powering up, and a CPU node listed in two partitions.
PCLUSTER_SINFO = """\
gpu-st-p5-1|10.1.34.17|gpu:h100:8(S:0-1)|alloc
gpu-st-p5-2|10.1.34.18|gpu:h100:8(S:0-1)|drain
gpu-dy-p5-1|gpu-dy-p5-1|gpu:h100:8(S:0-1)|idle~
gpu-dy-p5-2|gpu-dy-p5-2|gpu:h100:8(S:0-1)|mix#
cpu-st-c5-1|10.1.40.5|(null)|idle
cpu-st-c5-1|10.1.40.5|(null)|idle
"""


def test_parse_keeps_each_node_once_and_knows_gpus_and_power_state():
    nodes = slurm_targets.parse_sinfo(PCLUSTER_SINFO)
    assert [n.name for n in nodes] == [
        "gpu-st-p5-1",
        "gpu-st-p5-2",
        "gpu-dy-p5-1",
        "gpu-dy-p5-2",
        "cpu-st-c5-1",
    ]
    assert [n.powered for n in nodes] == [True, True, False, False, True]
    assert [n.has_gpus for n in nodes] == [True, True, True, True, False]


def test_groups_label_instance_with_the_node_name_and_skip_power_saved_nodes():
    nodes = slurm_targets.parse_sinfo(PCLUSTER_SINFO)
    groups = slurm_targets.all_groups(nodes, slurm_targets.DEFAULT_PORTS, "localhost:8080")
    assert groups["node"] == [
        {"targets": ["10.1.34.17:9100"], "labels": {"instance": "gpu-st-p5-1"}},
        {"targets": ["10.1.34.18:9100"], "labels": {"instance": "gpu-st-p5-2"}},  # drained, still watched
        {"targets": ["10.1.40.5:9100"], "labels": {"instance": "cpu-st-c5-1"}},
    ]
    assert [g["targets"] for g in groups["efa"]] == [
        ["10.1.34.17:9109"],
        ["10.1.34.18:9109"],
        ["10.1.40.5:9109"],
    ]
    assert [g["labels"]["instance"] for g in groups["dcgm"]] == [
        "gpu-st-p5-1",
        "gpu-st-p5-2",
    ]  # GPU nodes only
    assert groups["slurm"] == [{"targets": ["localhost:8080"], "labels": {}}]


def test_unreadable_sinfo_output_is_an_error():
    with pytest.raises(slurm_targets.TargetsError, match=re.escape("line 2 is not 'name|addr|gres|state'")):
        slurm_targets.parse_sinfo("n1|127.0.0.1|(null)|idle\nNODELIST STATE\n")


def fake_sinfo(folder: Path, output: str, exit_code: int = 0) -> dict[str, str]:
    """A PATH whose `sinfo` prints ``output`` (and records its arguments)."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "sinfo"
    script.write_text(
        f'#!/bin/bash\necho "$@" > "{folder}/args"\ncat <<\'EOF\'\n{output}EOF\nexit {exit_code}\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


def run_tool(*args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_cli_writes_one_valid_file_per_job(tmp_path):
    env = fake_sinfo(tmp_path / "bin", PCLUSTER_SINFO)
    out = tmp_path / "targets"
    out.mkdir()
    result = run_tool("--out", out, "--slurm-exporter", "head:8080", "--dcgm-port", "9500", env=env)
    assert result.returncode == 0, result.stderr
    assert "3 of 5 nodes (2 with GPUs)" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == ["dcgm.json", "efa.json", "node.json", "slurm.json"]
    assert json.loads((out / "dcgm.json").read_text())[0]["targets"] == ["10.1.34.17:9500"]
    assert (tmp_path / "bin" / "args").read_text().split() == slurm_targets.SINFO[1:]


def test_cli_errors_are_one_line(tmp_path):
    env = fake_sinfo(tmp_path / "bin", "", exit_code=1)
    (tmp_path / "targets").mkdir()
    failed = run_tool("--out", tmp_path / "targets", env=env)
    assert failed.returncode == 2 and failed.stderr.startswith("error: sinfo failed (exit 1)")
    missing = run_tool("--out", tmp_path / "nope", env=env)
    assert missing.returncode == 2 and "--out" in missing.stderr and missing.stderr.count("\n") == 1


@pytest.mark.slurm
def test_targets_of_a_real_slurm_cluster(local_slurm, tmp_path):
    out = tmp_path / "targets"
    out.mkdir()
    local_slurm.drain("n2", "targets test")
    try:
        result = run_tool("--out", out, env=local_slurm.env)
    finally:
        local_slurm.resume("n2")
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "node.json").read_text()) == [
        {"targets": ["127.0.0.1:9100"], "labels": {"instance": "n1"}},
        {"targets": ["127.0.0.1:9100"], "labels": {"instance": "n2"}},
    ]
    assert json.loads((out / "dcgm.json").read_text()) == []  # no GPU GRES on the local nodes
