"""The README's sections 1 and 2 run as written: make local, a resume, one process; then a 2-node local
Slurm cluster up, `make slurm`, the output, the cluster down."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testbed.slurm import REQUIRED_PROGRAMS, cluster_processes
from testbed.system import require_programs
from testbed.walkthrough import run_walkthrough

README = Path(__file__).resolve().parents[1] / "README.md"
CASE = Path("3.test_cases/pytorch/FSDP")


@pytest.mark.slow
def test_readme_local_walkthrough_trains_resumes_and_runs_one_process(artifacts_root):
    result = run_walkthrough(README, "local", artifacts_root / "fsdp-wt-local", timeout=600)
    assert result.returncode == 0, result.output[-4000:]
    run = result.workdir / CASE / "runs" / "local"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r.get("event") == "resume"] == [60]
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 81))
    assert json.loads((run / "result.json").read_text())["step"] == 80
    assert "summary: step 10" in result.output  # the one-process run
    assert '"event": "summary"' in result.output  # tail of metrics.jsonl


@pytest.mark.slurm
@pytest.mark.slow
def test_readme_slurm_walkthrough_trains_across_two_nodes(artifacts_root):
    require_programs("local Slurm", *REQUIRED_PROGRAMS)
    result = run_walkthrough(README, "slurm", artifacts_root / "fsdp-wt-slurm", timeout=600)
    assert result.returncode == 0, result.output[-4000:]
    assert "LocalSlurm up: n1, n2" in result.output and "stopped and removed" in result.output
    assert "fsdp tiny: job" in result.output and "summary: step 10" in result.output
    conf = result.workdir / ".testbed" / "slurm" / "slurm.conf"
    assert not conf.exists() and cluster_processes(conf) == []
    runs = list((result.workdir / CASE / "runs").glob("tiny-*"))
    assert len(runs) == 1
    ranks = [json.loads(p.read_text()) for p in sorted((runs[0] / "ranks").glob("rank*.json"))]
    assert {r["node"] for r in ranks} == {"n1", "n2"} and len(ranks) == 4  # 2 nodes x 2 ranks
    job_id = runs[0].name.removeprefix("tiny-")
    assert all(r["run_id"] == job_id for r in ranks)
    assert (runs[0] / "checkpoints" / "step-00000010" / "COMPLETE").is_file()
