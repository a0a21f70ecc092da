"""`nxd_args.py run`, what a PyTorchJob pod and `make local` execute: it execs torchrun (under
neuron_parallel_compile for the compile step) with the preset's environment; and `make local` refuses a
machine without Neuron devices. Stand-ins on PATH record what would have been started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.system import require_programs

FOLDER = Path(__file__).resolve().parents[1]
RECORDER = """#!{python}
import json, os, sys
with open(os.environ["RECORD"], "a") as out:
    out.write(json.dumps({{"argv": [os.path.basename(sys.argv[0]), *sys.argv[1:]],
                          "extract": os.environ.get("NEURON_EXTRACT_GRAPHS_ONLY"),
                          "inflight": os.environ.get("NEURON_RT_ASYNC_EXEC_MAX_INFLIGHT_REQUESTS")}}) + "\\n")
if os.path.basename(sys.argv[0]) == "neuron_parallel_compile":
    os.environ["NEURON_EXTRACT_GRAPHS_ONLY"] = "1"
    os.execvp(sys.argv[1], sys.argv[1:])
"""


@pytest.fixture
def stand_ins(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("torchrun", "neuron_parallel_compile"):
        (bin_dir / name).write_text(RECORDER.format(python=sys.executable))
        (bin_dir / name).chmod(0o755)
    return bin_dir, tmp_path / "record.jsonl"


def run(bin_dir: Path, record: Path, *args: str) -> list[dict]:
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RECORD": str(record)}
    env.pop("NEURON_EXTRACT_GRAPHS_ONLY", None)
    done = subprocess.run(
        [
            sys.executable,
            "src/nxd_args.py",
            "run",
            "--preset",
            "llama3-70b",
            "--nodes",
            "8",
            *args,
            "--data-dir",
            "/fsx/data",
            "--run-dir",
            "/fsx/run",
            "--examples-dir",
            "/workspace/neuronx-distributed",
        ],
        cwd=FOLDER,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in record.read_text().splitlines()]


def test_train_execs_torchrun_with_the_presets_environment(stand_ins):
    (started,) = run(*stand_ins)
    argv = started["argv"]
    assert argv[:3] == [
        "torchrun",
        "--nproc-per-node=32",
        "/workspace/neuronx-distributed/examples/training/llama/tp_pp_llama_hf_pretrain/run_llama_nxd.py",
    ]
    assert argv[argv.index("--pipeline_parallel_size") + 1] == "8"
    assert started["inflight"] == "7" and started["extract"] is None


def test_compile_wraps_torchrun_in_neuron_parallel_compile(stand_ins):
    wrapper, torchrun = run(*stand_ins, "--step", "compile")
    assert wrapper["argv"][:3] == ["neuron_parallel_compile", "torchrun", "--nproc-per-node=32"]
    assert torchrun["argv"][0] == "torchrun" and torchrun["extract"] == "1"
    assert torchrun["argv"][torchrun["argv"].index("--max_steps") + 1] == "10"


def test_make_local_needs_neuron_devices():
    require_programs("make local", "make")
    if Path("/dev/neuron0").exists():
        pytest.skip("this machine has Neuron devices: make local would start a real run")
    done = subprocess.run(["make", "local"], cwd=FOLDER, capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "error: no /dev/neuron0: run this on a Trainium instance with the Neuron driver" in done.stderr


@pytest.mark.neuron
def test_compile_step_on_a_trainium_node(tmp_path):
    """On a trn1/trn2 node with the image built (make container): one compile step of the 8B preset."""
    if not Path("/dev/neuron0").exists():
        pytest.skip(
            "needs a Trainium node: /dev/neuron0 (the Neuron driver) and the image from make container"
        )
    done = subprocess.run(
        ["make", "local", "STEP=compile", f"RUN_DIR={tmp_path}", "ARGS=--num_layers 2"],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
