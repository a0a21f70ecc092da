"""efa-versions.py on recorded host and image trees, on an empty tree, on this machine, and via --image."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FOLDER = Path(__file__).resolve().parents[1]
SCRIPT = FOLDER / "efa-versions.py"
FIXTURES = FOLDER / "tests" / "fixtures"
NAMES = ["efa-installer", "libfabric", "aws-ofi-nccl", "nccl", "nvidia-driver", "cuda", "gdrcopy", "efa-kmod"]


def efa_versions(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "EFA_VERSIONS_REQUIRE"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**base, **(env or {})},
    )


def versions(*args: str) -> dict[str, list[list[str]]]:
    result = efa_versions(*args, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [c["name"] for c in document["components"]] == NAMES
    return {c["name"]: c["found"] for c in document["components"]}


def test_host_tree_every_component_and_where():
    found = versions("--root", str(FIXTURES / "efa-host"))
    assert found["efa-installer"] == [["1.47.0", "/opt/amazon/efa_installed_packages"]]
    assert found["libfabric"] == [["2.4.0amzn1.0", "/opt/amazon/efa/lib/pkgconfig/libfabric.pc"]]
    assert found["aws-ofi-nccl"] == [["1.18.0", "/opt/amazon/efa_installed_packages"]]
    assert found["nccl"] == [
        ["2.29.3", "/opt/nccl/lib/libnccl.so.2.29.3"],
        ["2.27.7", "pip nvidia-nccl-cu12"],
    ]
    assert found["nvidia-driver"] == [["570.172.08", "/proc/driver/nvidia/version"]]
    assert found["cuda"] == [["12.9.1", "/usr/local/cuda/version.json"]]
    assert found["gdrcopy"][0] == ["2.5", "/opt/gdrcopy/lib/libgdrapi.so.2.5"]
    assert found["efa-kmod"] == [["2.17.2g", "/sys/module/efa/version"]]
    table = efa_versions("--root", str(FIXTURES / "efa-host")).stdout
    assert "  nccl           2.27.7, 2.29.3  " in table
    assert "# Note : several nccl versions on this host; check which one the job loads" in table


def test_image_tree_reads_the_package_database():
    found = versions("--root", str(FIXTURES / "efa-image"))
    assert found["libfabric"] == [["2.4.0amzn1.0", "/var/lib/dpkg/status"]]
    assert found["cuda"] == [["12.9.86", "/var/lib/dpkg/status"]]
    assert found["aws-ofi-nccl"] == [["1.18.0", "/var/lib/dpkg/status"]]
    assert found["nvidia-driver"] == [] and found["efa-installer"] == []  # a container has neither


def test_programs_of_an_inspected_tree_are_never_run(tmp_path):
    """--root reads files only: an fi_info or nvcc in the tree would run on this host, as this user."""
    ran = tmp_path / "ran"
    for program in ("opt/amazon/efa/bin/fi_info", "usr/local/cuda/bin/nvcc", "usr/bin/nvidia-smi"):
        path = tmp_path / "tree" / program
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"#!/bin/sh\necho {program} >> {ran}\necho 'libfabric: 9.9.9'\n")
        path.chmod(0o755)
    found = versions("--root", str(tmp_path / "tree"))
    assert not ran.exists()
    assert found["libfabric"] == [] and found["cuda"] == [] and found["nvidia-driver"] == []


def test_nothing_installed_is_reported_not_crashed(tmp_path):
    result = efa_versions("--root", str(tmp_path))
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("  ")]
    assert [row.split()[0] for row in rows] == NAMES
    assert all("not found  looked in /" in row for row in rows)
    assert result.stdout.rstrip().endswith("# Result : OK")


def test_this_machine_never_crashes():
    result = efa_versions()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# efa-versions 0.1.0\n")


def test_required_components_fail_when_missing(tmp_path):
    result = efa_versions(
        "--root", str(FIXTURES / "efa-image"), env={"EFA_VERSIONS_REQUIRE": "libfabric,nvidia-driver"}
    )
    assert result.returncode == 1
    assert result.stdout.splitlines()[-2:] == [
        "# Result : FAILED",
        "#  - nvidia-driver required but not found (looked in /proc/driver/nvidia/version, nvidia-smi)",
    ]
    assert (
        efa_versions("--root", str(FIXTURES / "efa-host"), "--require", "libfabric,nccl,efa-kmod").returncode
        == 0
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--require", "nvlink"], "error: --require nvlink unknown; choose from: efa-installer, libfabric"),
        (["--root", "/does/not/exist"], "error: --root /does/not/exist is not a folder"),
        (
            ["--image", "x", "--runtime", "lxc"],
            "error: --runtime 'lxc' is unknown; choose one of: docker, podman, enroot",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(args, message):
    result = efa_versions(*args)
    assert result.returncode == 2 and result.stderr.startswith(message) and result.stderr.count("\n") == 1


def test_image_side_by_side_through_the_runtime(tmp_path):
    """A stand-in `docker` runs the script it is fed on stdin against the recorded image tree."""
    calls = tmp_path / "docker.args"
    docker = tmp_path / "bin" / "docker"
    docker.parent.mkdir()
    docker.write_text(
        f'#!/bin/bash\necho "$@" > {calls}\nexec {sys.executable} - --json --root {FIXTURES / "efa-image"}\n'
    )
    docker.chmod(0o755)
    env = {"PATH": f"{docker.parent}{os.pathsep}{os.environ['PATH']}"}
    result = efa_versions("--root", str(FIXTURES / "efa-host"), "--image", "nccl-tests:dev", env=env)
    assert result.returncode == 0, result.stderr
    assert calls.read_text().split() == [
        "run",
        "--rm",
        "-i",
        "--entrypoint",
        "python3",
        "nccl-tests:dev",
        "-",
        "--json",
    ]
    assert "#  image : nccl-tests:dev" in result.stdout
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line.startswith("  ")}
    assert rows["nvidia-driver"] == ["570.172.08", "not", "found"]
    assert rows["cuda"] == ["12.9.1", "12.9.86"]
    broken = tmp_path / "bin" / "podman"
    broken.write_text("#!/bin/bash\necho 'Error: image not known' >&2\nexit 125\n")
    broken.chmod(0o755)
    failed = efa_versions("--image", "nope:1", "--runtime", "podman", env=env)
    assert failed.returncode == 2
    assert (
        failed.stderr.strip()
        == "error: image nope:1: `podman` exited 125: Error: image not known; does it have python3?"
    )
