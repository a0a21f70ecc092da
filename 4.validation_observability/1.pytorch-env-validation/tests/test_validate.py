"""validate_env.py for real on this CPU machine: verdicts, SKIPs with reasons, thresholds, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from env_validation.collective import run_local_collective

TOOL_DIR = Path(__file__).resolve().parents[1]
CPU_STATUS = {
    "ENV001": "PASS",
    "ENV002": "SKIP",
    "ENV003": "SKIP",
    "ENV004": "SKIP",
    "ENV005": "PASS",
    "ENV006": "PASS",
    "ENV007": "PASS",
    "ENV008": "PASS",
}


def validate(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FI_", "NCCL_", "INSTANCE_TYPE", "EXPECT_GPUS"))
    }
    return subprocess.run(
        [sys.executable, "validate_env.py", *args],
        cwd=TOOL_DIR,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def cpu_run(artifacts_root):
    results = artifacts_root / "validate-env"
    table = validate("--node", "cpu1", "--json-dir", str(results))
    assert table.returncode == 0, table.stdout + table.stderr
    return table.stdout, json.loads((results / "cpu1.json").read_text())


def test_cpu_node_passes_cpu_checks_and_skips_gpu_ones(cpu_run):
    table, doc = cpu_run
    assert {c["id"]: c["status"] for c in doc["checks"]} == CPU_STATUS
    details = {c["id"]: c["detail"] for c in doc["checks"]}
    assert details["ENV002"].startswith("no CUDA device") and details["ENV004"] == "no CUDA device"
    assert details["ENV006"].startswith("fp32 GEMM 1024^3 correct; cpu ")
    assert details["ENV007"].startswith("gloo all_reduce across 2 ranks correct")
    assert doc["facts"]["torch"].startswith("2.13.0") and doc["facts"]["CUDA"] is None
    assert table.splitlines()[0] == "# pytorch-env-validation 0.1.0"
    assert "#  CUDA          : not found" in table and table.rstrip().endswith("# Node cpu1 : OK")


def test_gpus_expected_but_absent_fail(tmp_path):
    result = validate("--skip", "ENV006", "--skip", "ENV007", "--json", EXPECT_GPUS="8")
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    status = {c["id"]: (c["status"], c["detail"]) for c in doc["checks"]}
    assert status["ENV001"] == (
        "FAIL",
        f"torch {doc['facts']['torch']} is a CPU-only build on a node with GPUs; install a CUDA build",
    )
    assert status["ENV002"] == (
        "FAIL",
        "0 of 8 GPUs visible to torch (CUDA_VISIBLE_DEVICES, driver, or a GPU gone)",
    )
    assert status["ENV004"][0] == "FAIL" and doc["failed"] == ["ENV001", "ENV002", "ENV003", "ENV004"]


def test_efa_variables_against_the_instance_type():
    result = validate(
        "--instance-type",
        "g5.48xlarge",
        "--expect-gpus",
        "0",
        "--skip",
        "ENV006",
        "--skip",
        "ENV007",
        FI_EFA_USE_DEVICE_RDMA="1",
        FI_PROVIDER="efa",
    )
    assert result.returncode == 1
    assert (
        "#  - ENV008: FI_EFA_USE_DEVICE_RDMA=1 on g5.48xlarge, which has no GPUDirect RDMA" in result.stdout
    )
    assert "FI_PROVIDER=efa but no EFA device is visible" in result.stdout


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--instance-type", "p9.huge"], {}, "error: unknown instance type 'p9.huge'; known: "),
        (["--local-ranks", "0"], {}, "error: --local-ranks=0 must be at least 1"),
        ([], {"EXPECT_GPUS": "eight"}, "error: EXPECT_GPUS='eight' must be a whole number of GPUs"),
        (
            ["--summarize", "nowhere"],
            {},
            "error: --summarize nowhere is not a folder; pass the --json-dir the nodes wrote to",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(args, env, message):
    result = validate(*args, **env)
    assert result.returncode == 2, result.stdout
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1


def test_summary_over_nodes(cpu_run, tmp_path):
    _, doc = cpu_run
    (tmp_path / "n1.json").write_text(json.dumps(doc | {"node": "n1"}))
    (tmp_path / "n2.json").write_text(json.dumps(doc | {"node": "n2", "ok": False, "failed": ["ENV007"]}))
    result = validate("--summarize", str(tmp_path), "--expect-nodes", "n1,n2,n3")
    assert result.returncode == 1
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line.startswith("  ")}
    assert rows == {
        "n1": ["OK", "-"],
        "n2": ["FAILED", "ENV007"],
        "n3": ["MISSING", "no", "result:", "the", "validation", "did", "not", "run", "there"],
    }
    assert "# Allocation : FAILED" in result.stdout


def test_collective_failure_is_reported_not_hung():
    result = run_local_collective(2, "nccl")  # no GPUs here: every rank fails to start NCCL
    assert result.errors and result.errors[0].startswith("rank ")
    assert result.wrong == 0 and result.busbw_gbytes_per_s == 0.0
