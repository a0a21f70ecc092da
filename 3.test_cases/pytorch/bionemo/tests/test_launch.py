"""`bionemo_args.py run`, what a PyTorchJob pod and `make local` execute: it execs `torchrun -m` the preset's
module (a stand-in torchrun on PATH records it); `make local` refuses a machine without NVIDIA GPUs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.system import require_programs

FOLDER = Path(__file__).resolve().parents[1]


def test_run_execs_torchrun_on_the_module(tmp_path):
    record = "import json, os, sys\nopen(os.environ['RECORD'], 'w').write(json.dumps(sys.argv[1:]))\n"
    (tmp_path / "torchrun").write_text(f"#!{sys.executable}\n{record}")
    (tmp_path / "torchrun").chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "RECORD": str(tmp_path / "argv.json")}
    done = subprocess.run(
        [
            sys.executable,
            "src/bionemo_args.py",
            "run",
            "--preset",
            "esm2-8m",
            "--nodes",
            "2",
            "--result-dir",
            "/fsx/r",
            "--",
            "--num-steps",
            "10",
        ],
        cwd=FOLDER,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert argv[:3] == ["--nproc-per-node=8", "-m", "bionemo.esm2.scripts.train_esm2"]
    assert argv[argv.index("--num-nodes") + 1] == "2" and argv[-2:] == ["--num-steps", "10"]


def test_make_local_needs_nvidia_gpus():
    require_programs("make local", "make")
    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has nvidia-smi: make local would start a real run")
    done = subprocess.run(["make", "local"], cwd=FOLDER, capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "error: no nvidia-smi: run this on a GPU machine with the NVIDIA driver" in done.stderr


@pytest.mark.gpu
@pytest.mark.docker
def test_esm2_8m_trains_a_few_steps_on_a_gpu(tmp_path):
    """On a GPU machine with the image (make container) and data in /fsx/bionemo/esm2-data: ten steps."""
    if not shutil.which("nvidia-smi") or not Path("/fsx/bionemo/esm2-data/train.db").is_file():
        pytest.skip(
            "needs an NVIDIA GPU, the image from make container and ESM-2 data in /fsx/bionemo/esm2-data"
        )
    done = subprocess.run(
        [
            "make",
            "local",
            "PRESET=esm2-8m",
            "NPROC_PER_NODE=1",
            f"RESULT_DIR={tmp_path}",
            "ARGS=--num-steps 10",
        ],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
