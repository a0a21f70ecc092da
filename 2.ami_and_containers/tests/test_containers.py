"""Images built here without Docker Hub: the python:slim stand-in that 2.containers/local-python-base.sh
makes from Debian packages (the root conftest's ``python_base`` imports it from the session's minbase tree
when the pinned python:slim cannot be pulled). The images built FROM it are tested in their folders
tests/test_container.py: 4.validation_observability/3.efa-node-exporter and 3.test_cases/pytorch/cpu-ddp."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "2.ami_and_containers" / "2.containers" / "local-python-base.sh"


def test_local_base_script_refuses_bad_input_with_one_line():
    result = subprocess.run([str(SCRIPT), "no-tag-here"], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("error: give the image tag") and result.stderr.count("\n") == 1
    result = subprocess.run(
        [str(SCRIPT), "local/python:test", str(ROOT)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    if shutil.which("debootstrap") and shutil.which("docker"):
        assert (
            result.stderr
            == f"error: {ROOT} has no usr/bin/pip3; give a minbase tree with python3-pip, or leave it out\n"
        )


@pytest.mark.docker
def test_the_stand_in_behaves_like_python_slim(python_base, docker_run):
    """What the images built FROM it rely on: `python` and `pip` on PATH, pip allowed to install into the
    system interpreter (no PEP 668 marker), the build host's certificate authorities trusted."""
    if not python_base.startswith("distributed-training-local/"):
        pytest.skip(f"the pinned {python_base} is reachable: no stand-in was made")
    script = (
        "import glob, ssl, sys, sysconfig, venv; "
        "print(sys.version_info[:2], glob.glob(sysconfig.get_path('stdlib') + '/EXTERNALLY-MANAGED'), "
        "ssl.get_default_verify_paths().openssl_cafile)"
    )
    code, logs = docker_run(python_base, ["python", "-c", script])
    assert code == 0, logs
    assert logs.strip() == "(3, 11) [] /usr/lib/ssl/cert.pem", logs
    code, logs = docker_run(python_base, ["pip", "--version"])
    assert code == 0 and "python 3.11" in logs, logs
    extra = sorted(path.name for path in Path("/usr/local/share/ca-certificates").glob("*.crt"))
    code, logs = docker_run(python_base, ["ls", "/usr/local/share/ca-certificates"])
    assert code == 0 and logs.split() == extra, logs
