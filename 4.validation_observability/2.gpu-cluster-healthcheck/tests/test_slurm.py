"""Slurm integration on real local clusters: prolog/epilog drain with a reason, quarantine, the sbatch.

The prolog/epilog tests start their own 2-node LocalSlurm with this folder's hooks (copied elsewhere,
as an admin would install it) and recorded p5 tools; a fault file makes one node's tools report a GPU
that fell off the bus. The sbatch test uses the session's shared cluster and drains nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from gpu_healthcheck.instance_types import find_file
from healthcheck_fakes import P5_GOOD, install_fake_tools

from testbed.slurm import REQUIRED_PROGRAMS, LocalSlurm
from testbed.system import require_programs

pytestmark = pytest.mark.slurm

TOOL_DIR = Path(__file__).resolve().parents[1]
BAD = {"nvidia-smi --query-gpu": "nvidia-smi-query-p5-missing-gpu.csv", "dmesg": "dmesg-xid79.txt"}
EXPECTED_REASON = "healthcheck GPU001 isolate (+1 more): 7 of 8 GPUs visible on p5.48xlarge"


def script(*lines: str, nodes: int = 1, nodelist: str = "") -> str:
    where = f" --nodelist={nodelist}" if nodelist else ""
    return "\n".join(["#!/bin/bash", f"#SBATCH --nodes={nodes} --ntasks-per-node=1{where}", *lines, ""])


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not reached in {timeout}s"
        time.sleep(0.2)


def back_in_service(cluster: LocalSlurm, node: str) -> None:
    """Resume ``node`` if a test left it drained (resuming an idle node is an error in Slurm)."""
    if cluster.node_state(node).startswith(("DRAIN", "DOWN")):
        cluster.resume(node)


def quarantine(cluster: LocalSlurm, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL_DIR / "quarantine.py"), *args],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def hooked(artifacts_root: Path, keep_artifacts: bool):
    """A 2-node LocalSlurm whose Prolog and Epilog are a copy of this folder's hooks."""
    require_programs("local Slurm", *REQUIRED_PROGRAMS)
    base = artifacts_root / "hc"
    install = base / "gpu-healthcheck"  # as an admin would copy it to /opt/gpu-healthcheck
    shutil.copytree(TOOL_DIR, install, ignore=shutil.ignore_patterns("tests", "__pycache__", "results"))
    faults, results = base / "faults", base / "results"
    bin_dir = install_fake_tools(base / "tools", P5_GOOD, BAD, faults)
    (install / "slurm" / "healthcheck.env").write_text(
        f"export HEALTHCHECK_PYTHON={sys.executable}\n"
        f"export PATH={bin_dir}:$PATH\n"
        "export INSTANCE_TYPE=p5.48xlarge\n"
        f"export INSTANCE_TYPES_FILE={find_file()}\n"
        f"export HEALTHCHECK_RESULTS={results}\n"
    )
    hooks = {"prolog": install / "slurm" / "prolog.sh", "epilog": install / "slurm" / "epilog.sh"}
    with LocalSlurm(nodes=2, state_dir=base / "slurm", keep=keep_artifacts, **hooks) as cluster:
        yield cluster, faults, results


def test_prolog_drains_the_failing_node_and_resume_returns_it(hooked):
    cluster, faults, results = hooked
    (faults / "n2").touch()
    try:
        held = cluster.submit(script("echo never runs", nodelist="n2"))
        wait_until(lambda: cluster.node_state("n2").startswith("DRAIN"), 60, "n2 drained")
        assert cluster.node_reason("n2").startswith(EXPECTED_REASON)
        assert held.wait_for_state({"PENDING"}, 30) == "PENDING"  # requeued, held: it never ran on n2
        assert held.info()["Reason"] == "launch_failed_requeued_held"
        subprocess.run(["scancel", str(held.id)], env=cluster.env, check=True)
        other = cluster.submit(script("hostname"))
        assert other.wait(60) == "COMPLETED" and other.nodes == ["n1"]  # n2 gets no job

        listing = quarantine(cluster, "list")
        assert listing.returncode == 0
        row = next(line for line in listing.stdout.splitlines() if line.split()[:1] == ["n2"])
        assert row.split()[1:3] == ["drained", "yes"] and EXPECTED_REASON in row
        doc = json.loads((results / "n2-prolog.json").read_text())
        assert doc["failed"] == ["GPU001", "GPU003"] and doc["action"] == "isolate"
    finally:
        (faults / "n2").unlink(missing_ok=True)
    resumed = quarantine(cluster, "resume", "n2")
    assert resumed.returncode == 0 and resumed.stdout.startswith("resumed n2")
    wait_until(lambda: cluster.node_state("n2") == "IDLE", 30, "n2 idle")
    both = cluster.submit(script("srun hostname", nodes=2))
    assert both.wait(60) == "COMPLETED" and both.nodes == ["n1", "n2"]
    assert json.loads((results / "n2-prolog.json").read_text())["ok"] is True


def test_quarantine_resume_refuses_a_drain_it_did_not_make(hooked):
    cluster, _, _ = hooked
    cluster.drain("n1", "admin: firmware update")
    try:
        refused = quarantine(cluster, "resume", "n1")
        assert refused.returncode == 1 and "not by healthcheck/quarantine" in refused.stderr
        assert cluster.node_state("n1").startswith("DRAIN")
        forced = quarantine(cluster, "resume", "n1", "--force")
        assert forced.returncode == 0
    finally:
        back_in_service(cluster, "n1")
    drained = quarantine(cluster, "drain", "n1", "--reason", "Xid 79 seen by a user")
    assert drained.returncode == 0 and cluster.node_reason("n1") == "quarantine: Xid 79 seen by a user"
    assert quarantine(cluster, "resume", "n1").returncode == 0
    wait_until(lambda: cluster.node_state("n1") == "IDLE", 30, "n1 idle")


def test_epilog_checks_after_a_failed_job_only(hooked):
    cluster, faults, results = hooked
    try:
        # The fault appears during each job (after the prolog passed): only the failed job's node is checked.
        fine = cluster.submit(script(f"touch {faults}/n2", "exit 0", nodelist="n2"))
        assert fine.wait(60) == "COMPLETED"
        failed = cluster.submit(script(f"touch {faults}/n1", "exit 3", nodelist="n1"))
        assert failed.wait(60) == "FAILED"
        wait_until(lambda: cluster.node_state("n1").startswith("DRAIN"), 30, "n1 drained by the epilog")
        assert cluster.node_reason("n1").startswith(EXPECTED_REASON)
        assert cluster.node_state("n2") == "IDLE"
        assert (results / "n1-epilog.json").is_file() and not (results / "n2-epilog.json").exists()
    finally:
        for node in ("n1", "n2"):
            (faults / node).unlink(missing_ok=True)
        back_in_service(cluster, "n1")


def test_sbatch_checks_every_node_and_aggregates(local_slurm, run_dir):
    faults = run_dir / "faults"
    bin_dir = install_fake_tools(run_dir / "tools", P5_GOOD, BAD, faults)
    (faults / "n2").touch()
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHON": sys.executable,
        "INSTANCE_TYPE": "p5.48xlarge",
        "CHECKS": "fast",
        "RESULTS_DIR": str(run_dir / "results"),
    }
    job = local_slurm.submit(
        "slurm/healthcheck.sbatch", env=env, sbatch_args=["--output", f"{run_dir}/slurm-%j.out"], cwd=TOOL_DIR
    )
    assert job.wait(timeout=120) == "FAILED", job.output()[-3000:]
    assert job.exit_code == 1 and job.nodes == ["n1", "n2"]
    output = job.output()
    assert "#  - n2: isolate (GPU001, GPU003)" in output and "# Cluster : FAILED" in output
    assert json.loads((run_dir / "results" / "n1.json").read_text())["ok"] is True
    assert {local_slurm.node_state(node) for node in ("n1", "n2")} == {"IDLE"}  # DRAIN=1 was not asked


@pytest.mark.parametrize(
    "script_path", ["slurm/prolog.sh", "slurm/epilog.sh", "slurm/hook-common.sh", "slurm/healthcheck.sbatch"]
)
def test_scripts_parse_and_pass_shellcheck(script_path):
    subprocess.run(["bash", "-n", script_path], cwd=TOOL_DIR, check=True)
    shellcheck = require_programs("shellcheck", "shellcheck", how="install the lint group (`make setup`)")
    result = subprocess.run(
        [shellcheck["shellcheck"], script_path], cwd=TOOL_DIR, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_sbatch_dry_run():
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    result = subprocess.run(
        ["bash", "slurm/healthcheck.sbatch"],
        cwd=TOOL_DIR,
        env={**clean, "DRY_RUN": "1", "DRAIN": "1", "CHECKS": "GPU001,GPU006"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first.startswith("srun --nodes=2 --ntasks-per-node=1 --label python3 ")
    assert first.endswith(
        "healthcheck.py run --checks GPU001,GPU006 --json-dir " + f"{TOOL_DIR}/results/healthcheck-0 --drain"
    )
    assert "healthcheck.py aggregate --expect-nodes node1,node2 " in second
