"""Both sbatch scripts on a real local Slurm (2 nodes), plus their static checks and DRY_RUN.

nccl-tests binaries need GPUs, so the nccl-tests job runs a stand-in that prints a recorded run from
MPI rank 0 (as nccl-tests does): what is tested is the script's srun layout, logs and verdict.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from nccl_bench.nccl_output import parse

from testbed.ports import free_port
from testbed.system import require_programs

TOOL_DIR = Path(__file__).resolve().parents[1]
FIXTURES = TOOL_DIR / "tests" / "fixtures"
VENV = Path(sys.executable).parent.parent
SCRIPTS = ["slurm/nccl-tests.sbatch", "slurm/collective-bench.sbatch"]
FAKE_NCCL_TEST = """#!/bin/bash
# Stand-in for nccl-tests: MPI rank 0 prints a recorded run (prefixes removed: srun --label adds its own).
# {usage}
json=""
while (($#)); do [[ $1 == -J ]] && json=$2; shift; done
if [[ ${{SLURM_PROCID:-0}} == 0 ]]; then
    if [[ -n $json ]]; then cp "$FAKE_NCCL_JSON" "$json" && echo "# Writing JSON output to $json"; fi
    sed -E -e 's/^(\\[[0-9]+,[0-9]+\\]<stdout>:|[0-9]+: )//' -e '/^# Writing JSON output/d' "$FAKE_NCCL_LOG"
fi
exit "${{FAKE_NCCL_EXIT:-0}}"
"""
JSON_USAGE = "[-J,--output_file <file> write output to filepath] (nccl-tests 2.17.3 and later)"


def fake_nccl_tests(folder: Path, json: bool = False) -> Path:
    """all_reduce_perf that prints $FAKE_NCCL_LOG; with ``json`` its usage names -J, as 2.17.3+ do."""
    folder.mkdir(parents=True, exist_ok=True)
    binary = folder / "all_reduce_perf"
    binary.write_text(FAKE_NCCL_TEST.format(usage=JSON_USAGE if json else "no JSON output"))
    binary.chmod(0o755)
    return folder


@pytest.mark.slurm
def test_collective_bench_runs_one_rank_per_node(local_slurm, run_dir):
    job = local_slurm.submit(
        "slurm/collective-bench.sbatch",
        args=["-b", "1K", "-e", "256K", "-f", "4", "-n", "2", "-w", "1"],
        env={"VENV": str(VENV), "RDZV_PORT": str(free_port())},
        sbatch_args=["--output", f"{run_dir}/slurm-%j.out"],
        cwd=TOOL_DIR,
    )
    assert job.wait(timeout=240) == "COMPLETED", job.output()[-3000:]
    assert job.nodes == ["n1", "n2"]
    output = job.output()
    run = parse(output)
    assert {device.host for device in run.devices} == {"n1", "n2"}  # one rank on each node
    assert (run.ranks, run.nodes) == (2, 2) and run.complete and run.wrong == 0
    assert "ranks      : 2 on 2 node(s)" in output and "# Verdict : OK" in output


@pytest.mark.slurm
@pytest.mark.parametrize(
    ("log", "exit_code", "state", "expected"),
    [
        ("p5-1node-all_reduce-good.log", "0", "COMPLETED", ["# Verdict : OK", "read from  : text"]),
        (
            "v2.17.9-all_reduce-2node-json.log",
            "0",
            "COMPLETED",
            ["# Verdict : OK", "read from  : JSON all_reduce.json (with the log's NCCL lines)"],
        ),
        (
            "p5-2node-all_reduce-truncated.log",
            "3",
            "FAILED",
            ["truncated: no '# Avg bus bandwidth'", "srun failed for: all_reduce"],
        ),
    ],
)
def test_nccl_tests_job_logs_and_judges_each_test(local_slurm, run_dir, log, exit_code, state, expected):
    results = run_dir / "results"
    env = {
        "PYTHON": sys.executable,
        "NCCL_TESTS_DIR": str(fake_nccl_tests(run_dir / "fakebin", json="json" in log)),
        "FAKE_NCCL_LOG": str(FIXTURES / log),
        "FAKE_NCCL_JSON": str(FIXTURES / "v2.17.9-all_reduce-2node.json"),
        "FAKE_NCCL_EXIT": exit_code,
        "GPUS_PER_NODE": "1",
        "SRUN_MPI": "none",
        "RESULTS_DIR": str(results),
    }
    job = local_slurm.submit(
        "slurm/nccl-tests.sbatch", env=env, sbatch_args=["--output", f"{run_dir}/slurm-%j.out"], cwd=TOOL_DIR
    )
    assert job.wait(timeout=120) == state, job.output()[-3000:]
    output = job.output()
    assert f"all_reduce on 2 nodes x 1 ranks -> {results}/all_reduce.log" in output
    for text in expected:
        assert text in output + job.stderr_path.read_text()
    assert parse((results / "all_reduce.log").read_text()).rows  # the srun --label log parses
    assert (results / "all_reduce.json").is_file() == ("json" in log)  # -J only where the binary knows it
    assert (results / "results.csv").is_file() and (results / "busbw.png").is_file()


def dry_run(script: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "INSTANCE_TYPE", "GPUS_PER"))}
    return subprocess.run(
        ["bash", script, *args],
        cwd=TOOL_DIR,
        env={**clean, "DRY_RUN": "1", "PYTHON": sys.executable, "VENV": str(VENV), **env},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_parse_and_pass_shellcheck(script):
    subprocess.run(["bash", "-n", script], cwd=TOOL_DIR, check=True)
    shellcheck = require_programs("shellcheck", "shellcheck", how="install the lint group (`make setup`)")
    result = subprocess.run(
        [shellcheck["shellcheck"], script], cwd=TOOL_DIR, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_nccl_tests_dry_run_takes_counts_and_environment_from_the_instance_type(tmp_path):
    p5 = dry_run(
        "slurm/nccl-tests.sbatch", INSTANCE_TYPE="p5.48xlarge", TESTS="all_reduce alltoall", MAX_BYTES="4G"
    )
    assert p5.returncode == 0, p5.stderr
    lines = p5.stdout.splitlines()
    assert lines[0] == (
        "srun --nodes=2 --ntasks-per-node=8 --mpi=pmix --label "
        "/opt/nccl-tests/all_reduce_perf -b 8 -e 4G -f 2 -g 1 -c 1 -n 100"
    )
    assert lines[1].endswith("/opt/nccl-tests/alltoall_perf -b 8 -e 4G -f 2 -g 1 -c 1 -n 100")
    assert "nccl_report.py --csv" in lines[2]
    json = dry_run(
        "slurm/nccl-tests.sbatch", INSTANCE_TYPE="p5.48xlarge", NCCL_TESTS_JSON="1", RESULTS_DIR="/r"
    )
    assert json.stdout.splitlines()[0].endswith("-c 1 -n 100 -J /r/all_reduce.json"), json.stdout
    fake = fake_nccl_tests(tmp_path, json=True)
    auto = dry_run(
        "slurm/nccl-tests.sbatch", INSTANCE_TYPE="p5.48xlarge", NCCL_TESTS_DIR=str(fake), RESULTS_DIR="/r"
    )
    assert auto.stdout.splitlines()[0].endswith("-J /r/all_reduce.json"), auto.stdout  # detected in its usage
    mounted = dry_run(
        "slurm/nccl-tests.sbatch",
        INSTANCE_TYPE="p5.48xlarge",
        IMAGE="/fsx/n.sqsh",
        NCCL_TESTS_JSON="1",
        RESULTS_DIR="/r",
    )
    assert "--container-image=/fsx/n.sqsh --container-mounts=/r:/r " in mounted.stdout
    image = dry_run("slurm/nccl-tests.sbatch", INSTANCE_TYPE="g5.48xlarge", IMAGE="/fsx/nccl-tests.sqsh")
    assert "--ntasks-per-node=8 --mpi=pmix --label --container-image=/fsx/nccl-tests.sqsh " in image.stdout
    unknown = dry_run("slurm/nccl-tests.sbatch")
    assert (
        unknown.returncode == 2 and "set INSTANCE_TYPE (e.g. p5.48xlarge) or GPUS_PER_NODE" in unknown.stderr
    )


def test_collective_bench_dry_run_and_outside_slurm():
    result = dry_run("slurm/collective-bench.sbatch", "-b", "8", "-e", "4G", INSTANCE_TYPE="p5.48xlarge")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("srun --nodes=2 --ntasks-per-node=1 --kill-on-bad-exit=1 ")
    assert f"{VENV}/bin/torchrun --nnodes=2 --nproc-per-node=8 --rdzv-backend=c10d" in result.stdout
    assert result.stdout.rstrip().endswith("collective_bench.py -b 8 -e 4G")
    cpu = dry_run("slurm/collective-bench.sbatch")
    assert "--nproc-per-node=1 " in cpu.stdout
    outside = dry_run("slurm/collective-bench.sbatch", DRY_RUN="0")
    assert outside.returncode == 2 and "not inside a Slurm job" in outside.stderr
