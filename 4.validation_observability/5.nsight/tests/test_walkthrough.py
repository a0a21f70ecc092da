"""The README's walkthrough, run as written in a copy of the repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.standins import run_on_cluster, run_on_fsx
from testbed.walkthrough import run_walkthrough

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_walkthrough_previews_the_wrappers_and_analyses_exports(artifacts_root):
    result = run_walkthrough(README, "local", artifacts_root / "wt-nsight", timeout=300)
    assert result.returncode == 0, result.output[-4000:]
    assert "--no-python nsys profile" in result.output and "rank%q{SLURM_PROCID}" in result.output
    assert "  AllReduce               6       0.880" in result.output and result.output.rstrip().endswith(
        "# OK"
    )
    png = result.workdir / "4.validation_observability/5.nsight/demo/nccl.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_readme_analysis_walkthrough_reads_every_ranks_export_on_fsx(artifacts_root, tmp_path, fsx):
    """The analysis block as written on shared storage: every rank's export in /fsx/nsys/1234 (built by
    tests/nsys_exports.py where a GPU run's would be) in one table, and the plot."""
    reports = fsx / "nsys" / "1234"
    built = subprocess.run(
        [sys.executable, "tests/nsys_exports.py", str(reports)],
        cwd=README.parent,
        capture_output=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    run = run_on_fsx(README, "analysis", artifacts_root / "wt-nsight-analysis", tmp_path / "bin", fsx)
    assert "  AllReduce               6       0.880" in run.output and run.output.rstrip().endswith("# OK")
    assert "/fsx/nsys/1234/rank0.sqlite" in run.output and "/fsx/nsys/1234/rank1.sqlite" in run.output
    png = run.workdir / "4.validation_observability/5.nsight/nccl.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slurm
def test_readme_gpu_cluster_walkthrough_profiles_the_fsdp_trainer_on_a_p5_shaped_slurm(
    gpu_slurm, artifacts_root, tmp_path
):
    """Section 2's `make train` as written: the batch script runs on a real Slurm of 8 nodes x 8 GPUs
    and launches one torchrun per node whose every worker runs under `nsys profile`; only srun (the GPU
    ranks) is stood in for, and it checks that torchrun and the FSDP trainer exist."""
    run = run_on_cluster(README, "gpu-cluster", artifacts_root / "nsight-wt-gpu", tmp_path / "bin", gpu_slurm)
    (job,) = run.jobs
    assert len(job.nodes) == 2 and f"nsys-train: job {job.id}, 2 nodes x 8 ranks" in job.output()
    (launch,) = run.launches_of(job)
    command = launch["command"]
    assert launch["num_nodes"] == 2 and launch["options"]["--ntasks-per-node"] == "1"
    assert Path(shutil.which(command[0]) or command[0]).name == "torchrun"
    assert "--nnodes=2" in command and "--nproc-per-node=8" in command and "--no-python" in command
    nsys = command[command.index("--no-python") + 1 :]
    folder = run.workdir / "4.validation_observability" / "5.nsight"
    assert nsys[:2] == ["nsys", "profile"] and "--delay=60" in nsys and "--duration=30" in nsys
    assert f"--output={folder.resolve()}/nsys/{job.id}/rank%q{{RANK}}" in nsys
    python, script, *args = nsys[nsys.index("--stats=false") + 2 :]
    assert Path(python).name == "python" and args == ["--preset", "llama3_1_8b", "--max-steps", "50"]
    trainer = run.workdir / "3.test_cases" / "pytorch" / "FSDP" / "src" / "train.py"
    assert (folder / script).resolve() == trainer.resolve()
    assert (folder / "nsys" / str(job.id)).is_dir()
