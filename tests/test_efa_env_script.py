"""slurm/efa-env.sh (written by common/sync.py into every case that sources it): the instance type is asked
of the instance metadata service on EC2 only; off EC2 nothing leaves the node."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("common_sync_efa", ROOT / "common" / "sync.py")
sync = importlib.util.module_from_spec(_spec)
sys.modules["common_sync_efa"] = sync
_spec.loader.exec_module(sync)
CASES = sync.efa_env_folders(ROOT)


def test_the_main_case_sources_the_script():
    assert Path("3.test_cases/pytorch/FSDP") in CASES


def source(case: Path, tmp_path: Path, vendor: str | None, **env: str) -> tuple[str, list[str]]:
    """Source the case's efa-env.sh with a curl that records its calls; (INSTANCE_TYPE, curl calls)."""
    bin_dir, dmi = tmp_path / "bin", tmp_path / "dmi"
    bin_dir.mkdir(exist_ok=True)
    dmi.mkdir(exist_ok=True)
    calls = tmp_path / "curl-calls"
    curl = bin_dir / "curl"
    curl.write_text(f'#!/bin/bash\necho "$*" >> {calls}\necho p5.48xlarge\n')
    curl.chmod(0o755)
    if vendor is not None:
        (dmi / "sys_vendor").write_text(vendor + "\n")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FI_", "NCCL_", "INSTANCE_TYPE"))}
    result = subprocess.run(
        ["bash", "-c", 'source slurm/efa-env.sh; echo "INSTANCE_TYPE=$INSTANCE_TYPE"'],
        cwd=ROOT / case,
        capture_output=True,
        text=True,
        check=True,
        env={
            **clean,
            "PATH": f"{bin_dir}:{clean['PATH']}",
            "DMI_DIR": str(dmi),
            "HYPERVISOR_UUID": str(tmp_path / "no-uuid"),
            "EFA_SYSFS": str(tmp_path / "no-efa"),
            **env,
        },
    )
    instance = result.stdout.strip().splitlines()[-1].removeprefix("INSTANCE_TYPE=")
    return instance, (calls.read_text().splitlines() if calls.exists() else [])


@pytest.mark.parametrize("case", CASES, ids=str)
def test_imds_is_asked_on_ec2(case, tmp_path):
    instance, calls = source(case, tmp_path, "Amazon EC2")
    assert instance == "p5.48xlarge"
    assert len(calls) == 2 and all("169.254.169.254" in call for call in calls)


@pytest.mark.parametrize("vendor", ["QEMU", "Dell Inc.", None])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_nothing_leaves_a_node_that_is_not_ec2(case, tmp_path, vendor):
    assert source(case, tmp_path, vendor) == ("", [])


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_given_instance_type_is_never_looked_up(case, tmp_path):
    assert source(case, tmp_path, "Amazon EC2", INSTANCE_TYPE="g5.48xlarge") == ("g5.48xlarge", [])
