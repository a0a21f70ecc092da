"""The sbatch on a real local Slurm (2 nodes): every node validated, one verdict; static checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.system import require_programs

TOOL_DIR = Path(__file__).resolve().parents[1]
VENV = Path(sys.executable).parent.parent
SBATCH = "slurm/validate-env.sbatch"


@pytest.mark.slurm
def test_every_node_is_validated_and_summarized(local_slurm, run_dir):
    results = run_dir / "results"
    job = local_slurm.submit(
        SBATCH,
        args=["--skip", "ENV006"],
        env={"VENV": str(VENV), "RESULTS_DIR": str(results)},
        sbatch_args=["--output", f"{run_dir}/slurm-%j.out"],
        cwd=TOOL_DIR,
    )
    assert job.wait(timeout=240) == "COMPLETED", job.output()[-3000:]
    assert job.nodes == ["n1", "n2"]
    docs = {path.stem: json.loads(path.read_text()) for path in results.glob("*.json")}
    assert sorted(docs) == ["n1", "n2"]
    for doc in docs.values():
        status = {c["id"]: c["status"] for c in doc["checks"]}
        assert status["ENV007"] == "PASS" and status["ENV002"] == "SKIP" and doc["ok"]
    output = job.output()
    assert "0: # pytorch-env-validation 0.1.0" in output and "1: # Node n2 : OK" in output
    assert output.rstrip().endswith("# Allocation : OK")


def test_script_parses_passes_shellcheck_and_dry_runs():
    subprocess.run(["bash", "-n", SBATCH], cwd=TOOL_DIR, check=True)
    shellcheck = require_programs("shellcheck", "shellcheck", how="install the lint group (`make setup`)")
    lint = subprocess.run(
        [shellcheck["shellcheck"], SBATCH], cwd=TOOL_DIR, capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0, lint.stdout
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    dry = subprocess.run(
        ["bash", SBATCH, "--expect-gpus", "8"],
        cwd=TOOL_DIR,
        env={**clean, "DRY_RUN": "1", "VENV": "/opt/venv", "IMAGE": "/fsx/pytorch.sqsh"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert dry.returncode == 0, dry.stderr
    srun, summary = dry.stdout.splitlines()
    assert srun.startswith("srun --nodes=2 --ntasks-per-node=1 --label --container-image=/fsx/pytorch.sqsh ")
    assert srun.endswith(
        f"python3 {TOOL_DIR}/validate_env.py --json-dir {TOOL_DIR}/results/validate-env-0 --expect-gpus 8"
    )
    assert summary.endswith("--expect-nodes node1,node2")
    outside = subprocess.run(
        ["bash", SBATCH], cwd=TOOL_DIR, env=clean, capture_output=True, text=True, check=False
    )
    assert outside.returncode == 2 and "not inside a Slurm job" in outside.stderr
