"""The nsys sbatch wrappers: their final commands, their errors, and real runs on the local Slurm cluster
with a stand-in ``nsys`` (no GPU here) that records its options and runs the profiled program."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.ports import free_port
from testbed.slurm import LocalSlurm
from testbed.system import require_programs

FOLDER = Path(__file__).resolve().parents[1]
TRAIN = FOLDER / "slurm" / "nsys-train.sbatch"
NCCL = FOLDER / "slurm" / "nsys-nccl-tests.sbatch"
VENV = Path(sys.executable).parent.parent
# Stand-in for `nsys profile [--opt=value ...] <program> [args]`: expands %q{VAR} and %h in --output
# as nsys does, writes <output>.nsys-rep with what it was asked, then runs the program.
FAKE_NSYS = """\
import json, os, re, socket, subprocess, sys
args = sys.argv[1:]
assert args[0] == "profile", args
options = {}
index = 1
while args[index].startswith("--"):
    key, _, value = args[index][2:].partition("=")
    options[key] = value
    index += 1
output = re.sub(r"%q\\{(\\w+)\\}", lambda m: os.environ[m.group(1)], options["output"])
output = output.replace("%h", socket.gethostname())
with open(output + ".nsys-rep", "w") as report:
    json.dump({"options": options, "program": args[index:]}, report)
sys.exit(subprocess.call(args[index:]))
"""
FAKE_NCCL_TEST = """\
import os, sys
print(f"# nThread 1 nGpus 1 rank {os.environ['SLURM_PROCID']} args {' '.join(sys.argv[1:])}")
"""


def executable(path: Path, source: str) -> Path:
    path.write_text(f"#!{sys.executable}\n{source}")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def dry_run(script: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    return subprocess.run(
        ["bash", str(script), *args],
        env={**clean, "DRY_RUN": "1", **env},
        cwd=FOLDER,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("script", [TRAIN, NCCL], ids=lambda p: p.name)
def test_scripts_parse_and_pass_shellcheck(script):
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True, check=False).returncode == 0
    shellcheck = require_programs("shellcheck", "shellcheck")["shellcheck"]
    result = subprocess.run(
        [shellcheck, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout


def test_train_wrapper_profiles_every_rank_into_its_own_report_for_a_bounded_window():
    result = dry_run(TRAIN, "train.py", "--max-steps", "5", VENV="/opt/venv", REPORT_DIR="/fsx/nsys/7")
    assert result.returncode == 0, result.stderr
    command = result.stdout.split()
    torchrun = command.index("/opt/venv/bin/torchrun")
    assert command[:torchrun] == ["srun", "--nodes=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
    assert "--no-python" in command and command[
        command.index("--no-python") + 1 : command.index("--no-python") + 3
    ] == ["nsys", "profile"]
    assert {"--delay=60", "--duration=30", "--kill=none", "--nproc-per-node=8"} <= set(command)
    assert "--output=/fsx/nsys/7/rank%q{RANK}" in command
    assert command[-4:] == ["/opt/venv/bin/python", "train.py", "--max-steps", "5"]


def test_train_wrapper_window_and_trace_come_from_the_environment():
    result = dry_run(
        TRAIN, "t.py", NSYS_DELAY="5", NSYS_DURATION="10", NSYS_TRACE="cuda,nvtx", NPROC_PER_NODE="4"
    )
    assert {"--delay=5", "--duration=10", "--trace=cuda,nvtx", "--nproc-per-node=4"} <= set(
        result.stdout.split()
    )


def test_nccl_tests_wrapper_defaults_and_argument_override():
    default = dry_run(NCCL, REPORT_DIR="/fsx/nsys/9").stdout.split()
    assert default[:3] == ["srun", "--mpi=pmix", "--kill-on-bad-exit=1"]
    assert "--output=/fsx/nsys/9/rank%q{SLURM_PROCID}" in default and "--duration=120" in default
    assert default[-13:] == [
        "/opt/nccl-tests/build/all_reduce_perf",
        *["-b", "8", "-e", "16G", "-f", "2", "-g", "1", "-c", "1", "-n", "100"],
    ]
    custom = dry_run(
        NCCL, "-b", "1M", "-e", "4G", NCCL_TEST="all_gather_perf", NCCL_TESTS_DIR="/x"
    ).stdout.split()
    assert custom[-5:] == ["/x/all_gather_perf", "-b", "1M", "-e", "4G"]


def test_errors_are_one_line_with_exit_code_2(tmp_path):
    no_script = dry_run(TRAIN)
    assert no_script.returncode == 2 and "no training script given" in no_script.stderr
    outside = dry_run(TRAIN, "t.py", DRY_RUN="0")
    assert outside.returncode == 2 and "not inside a Slurm job" in outside.stderr
    in_job = dry_run(
        NCCL, DRY_RUN="0", SLURM_JOB_ID="5", SLURM_SUBMIT_DIR=str(tmp_path), NCCL_TESTS_DIR="/nope"
    )
    assert in_job.returncode == 2 and in_job.stderr.strip() == (
        "error: /nope/all_reduce_perf is not an executable; set NCCL_TESTS_DIR to the nccl-tests build folder"
    )


def reports(folder: Path) -> dict[str, dict]:
    return {path.name: json.loads(path.read_text()) for path in sorted(folder.glob("*.nsys-rep"))}


@pytest.mark.slurm
def test_nccl_tests_wrapper_on_slurm_writes_one_report_per_rank(local_slurm: LocalSlurm, tmp_path):
    fake_nsys = executable(tmp_path / "nsys", FAKE_NSYS)
    executable(tmp_path / "all_reduce_perf", FAKE_NCCL_TEST)
    env = {
        "NSYS": str(fake_nsys),
        "NCCL_TESTS_DIR": str(tmp_path),
        "SRUN_MPI": "none",
        "REPORT_DIR": str(tmp_path / "r"),
    }
    job = local_slurm.submit(
        NCCL, args=["-b", "8", "-e", "1M"], env=env, sbatch_args=["--ntasks-per-node=1"], cwd=tmp_path
    )
    assert job.wait(timeout=120) == "COMPLETED", job.output()
    found = reports(tmp_path / "r")
    assert list(found) == ["rank0.nsys-rep", "rank1.nsys-rep"]
    assert all(report["options"]["duration"] == "120" for report in found.values())
    assert {
        "# nThread 1 nGpus 1 rank 0 args -b 8 -e 1M",
        "# nThread 1 nGpus 1 rank 1 args -b 8 -e 1M",
    } <= set(job.output().splitlines())


@pytest.mark.slurm
def test_train_wrapper_on_slurm_profiles_each_torchrun_worker(local_slurm: LocalSlurm, tmp_path):
    fake_nsys = executable(tmp_path / "nsys", FAKE_NSYS)
    script = tmp_path / "train.py"
    script.write_text(
        "import os\nprint(f\"worker rank {os.environ['RANK']} of {os.environ['WORLD_SIZE']}\")\n"
    )
    env = {
        "NSYS": str(fake_nsys),
        "VENV": str(VENV),
        "NPROC_PER_NODE": "1",
        "REPORT_DIR": str(tmp_path / "r"),
    }
    env["RDZV_PORT"] = str(free_port())
    job = local_slurm.submit(TRAIN, args=[str(script)], env=env, cwd=tmp_path)
    assert job.wait(timeout=300) == "COMPLETED", job.output()
    found = reports(tmp_path / "r")
    assert list(found) == ["rank0.nsys-rep", "rank1.nsys-rep"]
    assert found["rank1.nsys-rep"]["program"] == [f"{VENV}/bin/python", str(script)]
    assert {"worker rank 0 of 2", "worker rank 1 of 2"} <= set(job.output().splitlines())
