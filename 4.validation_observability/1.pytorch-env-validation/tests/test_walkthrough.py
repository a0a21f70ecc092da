"""The README's walkthroughs, run as written in a copy of the repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testbed.standins import run_on_cluster
from testbed.walkthrough import run_walkthrough

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_node_walkthrough(artifacts_root):
    result = run_walkthrough(README, "node", artifacts_root / "wt-env-validation", timeout=300)
    assert result.returncode == 0, result.output[-4000:]
    assert "ENV007  local collective      PASS    gloo all_reduce across 2 ranks correct" in result.output
    assert "# efa-versions 0.1.0" in result.output and "# Result : OK" in result.output


def test_readme_efa_versions_walkthrough_reports_this_host(artifacts_root):
    """Section 3 on this host: every component gets a row, found or `not found` with where it was looked
    for; nothing is required, so the result is OK."""
    result = run_walkthrough(README, "efa-versions", artifacts_root / "wt-efa-versions", timeout=120)
    assert result.returncode == 0, result.output[-4000:]
    rows = [line.split()[0] for line in result.output.splitlines() if line.startswith("  ")]
    components = ["efa-installer", "libfabric", "aws-ofi-nccl", "nccl", "nvidia-driver", "cuda", "gdrcopy"]
    assert rows == [*components, "efa-kmod"]
    lines = [line for line in result.output.splitlines() if line.startswith("  ")]
    assert all("not found  looked in " in line or len(line.split()) >= 3 for line in lines)  # found: where
    assert result.output.rstrip().endswith("# Result : OK")


def test_readme_dry_run_prints_the_srun_and_summary_commands(artifacts_root):
    result = run_walkthrough(README, "dry-run", artifacts_root / "wt-env-validation-dry", timeout=120)
    assert result.returncode == 0, result.output[-4000:]
    lines = result.output.strip().splitlines()
    assert (
        lines[-2].startswith("srun --nodes=2 --ntasks-per-node=1 --label ")
        and "validate_env.py --json-dir" in lines[-2]
    )
    assert "validate_env.py --summarize" in lines[-1] and "--expect-nodes" in lines[-1]
    assert not (result.workdir / "4.validation_observability/1.pytorch-env-validation/results").exists()


@pytest.mark.slurm
def test_readme_cluster_walkthrough_validates_every_node(gpu_slurm, artifacts_root, tmp_path):
    """Section 2 as written, on a real local Slurm (2 of its 8 nodes): nothing is stood in for (no tools), the
    job validates each node on its CPUs and summarizes them."""
    run = run_on_cluster(
        README,
        "cluster",
        artifacts_root / "env-validation-wt-cluster",
        tmp_path / "bin",
        gpu_slurm,
        tools=(),
        instance_type=None,
        job_timeout=180,
    )
    (job,) = run.jobs
    assert job.state == "COMPLETED", job.output()[-3000:]
    assert len(job.nodes) == 2
    folder = run.workdir / "4.validation_observability" / "1.pytorch-env-validation"
    docs = {
        p.stem: json.loads(p.read_text()) for p in (folder / "results" / f"validate-env-{job.id}").glob("*")
    }
    assert sorted(docs) == sorted(job.nodes) and all(doc["ok"] for doc in docs.values())
    output = job.output()
    assert output.rstrip().endswith("# Allocation : OK")
    assert all(f"# Node {node} : OK" in output for node in job.nodes)
