"""The image from cpu-ddp.Dockerfile: it holds src/ and, built FROM the python base (python:slim or the
stand-in made from Debian packages) with torch's CPU wheel, trains two ranks into a mounted run folder."""

from __future__ import annotations

import functools
import json
import os
import re
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from testbed.ports import free_port

TEST_CASE_DIR = Path(__file__).resolve().parents[1]
DOCKERFILE = TEST_CASE_DIR / "cpu-ddp.Dockerfile"
VERSIONS = TEST_CASE_DIR.parents[2] / "2.ami_and_containers" / "versions.yaml"


def test_build_context_and_command_are_the_code_the_launchers_run():
    """What the Slurm container run and the PyTorchJob execute (/workspace/cpu-ddp/src/train.py) is in
    the image: .dockerignore lets src/ into the context, COPY puts it under WORKDIR, CMD runs it."""
    text = DOCKERFILE.read_text()
    assert re.findall(r"^WORKDIR\s+(\S+)", text, re.MULTILINE) == ["/workspace/cpu-ddp"]
    assert re.findall(r"^COPY\s+(\S+)\s+(\S+)", text, re.MULTILINE) == [("src/", "src/")]
    command = json.loads(re.search(r"^CMD\s+(\[.*\])\s*$", text, re.MULTILINE).group(1))
    assert command[0] == "torchrun" and "src/train.py" in command
    ignore = (TEST_CASE_DIR / ".dockerignore").read_text().splitlines()
    assert ignore[0] == "*" and "!src/" in ignore  # everything else (runs, venvs, checkpoints) stays out
    assert (TEST_CASE_DIR / "src" / "train.py").is_file() and (TEST_CASE_DIR / "src" / "cpu_ddp").is_dir()


def local_torch_wheels() -> Path | None:
    """The folder of pip's find-links (``PIP_FIND_LINKS``) that holds torch's CPU wheel, if any."""
    version = yaml.safe_load(VERSIONS.read_text())["python"]["torch"]
    for folder in os.environ.get("PIP_FIND_LINKS", "").split():
        if list(Path(folder).glob(f"torch-{version}+cpu-*.whl")):
            return Path(folder)
    return None


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def torch_find_links() -> Iterator[str | None]:
    """The on-disk CPU wheel served on loopback for the build (which uses the host's network), so the image
    gets the same torch build without download.pytorch.org; None (PyTorch's CPU index) when there is none."""
    folder = local_torch_wheels()
    if folder is None:
        yield None
        return
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.mark.docker
@pytest.mark.slow
def test_image_builds_from_the_python_base_and_trains_two_ranks(
    docker_build, docker_run, python_base, torch_find_links, run_dir
):
    arguments = {"PYTHON_SLIM_IMAGE": python_base}
    if torch_find_links:
        arguments["TORCH_FIND_LINKS"] = torch_find_links
    image = docker_build(TEST_CASE_DIR, "cpu-ddp.Dockerfile", "cpu-ddp:test", arguments)
    # torchrun is the container's PID 1 (no --init): its workers must still train.
    command = ["torchrun", "--nproc-per-node", "2", "--rdzv-backend", "c10d"]
    command += ["--rdzv-endpoint", f"127.0.0.1:{free_port()}", "src/train.py", "--preset", "tiny"]
    code, logs = docker_run(
        image,
        [*command, "--run-dir", "/runs/tiny"],
        environment={"OMP_NUM_THREADS": "1"},
        volumes={str(run_dir): {"bind": "/runs/tiny", "mode": "rw"}},
        network_mode="host",
        timeout=150,
    )
    assert code == 0, logs[-3000:]
    result = json.loads((run_dir / "result.json").read_text())
    assert result["world_size"] == 2 and result["step"] == 60, result
    assert result["accuracy"] > 0.8 and result["checkpoint"] == "/runs/tiny/checkpoints/step-00000060"
    assert (run_dir / "ranks" / "rank1.json").is_file()
    code, logs = docker_run(image, ["python", "-c", "import torch; print(torch.__version__)"])
    assert code == 0 and logs.strip().endswith("+cpu"), logs
    code, logs = docker_run(image, ["python", "src/train.py", "--preset", "nope"])
    assert code == 2 and "error: unknown preset 'nope'" in logs
