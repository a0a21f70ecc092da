"""The ami-* targets: one image per target, nothing started without a yes, the pins passed to Packer."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

AMI = Path(__file__).resolve().parents[1] / "1.amazon_machine_image"


def make(*args: str, answer: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(AMI), *args, "PACKER=echo packer"],
        input=answer, capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_help_lists_one_target_per_image():
    result = make("help")
    assert result.returncode == 0
    for image in ("pcluster-gpu", "pcluster-cpu", "pcluster-neuron", "eks-gpu", "dlami"):
        assert f"ami-{image} " in result.stdout


def test_nothing_starts_without_a_yes():
    result = make("ami-pcluster-gpu", "AWS_REGION=eu-west-1", answer="no\n")
    assert result.returncode != 0
    assert "Stopped; nothing was started." in result.stdout and "packer build" not in result.stdout


def test_yes_builds_that_one_image_with_the_chosen_os():
    result = make("ami-eks-gpu", "AWS_REGION=eu-west-1", "YES=1", "PCLUSTER_OS=alinux2023")
    assert result.returncode == 0, result.stderr
    assert "packer init packer" in result.stdout
    assert "packer build -only amazon-ebs.eks-gpu -var pcluster_os=alinux2023 packer" in result.stdout


def test_no_region_is_one_error_line():
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(AMI), "ami-dlami", "YES=1", "AWS_REGION=", "PACKER=false"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 2 and result.stderr.startswith("error: no region"), result.stderr


FAKE_AWS = """#!/bin/bash
# Records the call; answers presign and ssm like the AWS CLI does.
echo "$*" >> "$(dirname "$0")/aws-calls.log"
case "$1 $2" in
  "s3 presign") echo "https://example-bucket.s3.amazonaws.com/images/bundle.tar.gz?X-Amz-Signature=abc" ;;
  "ssm get-parameter") echo "ami-0abcdef1234567890" ;;
esac
"""
# How aws-parallelcluster loads a build-image file: its own marshmallow schema (run in the pcluster venv).
SCHEMA_CHECK = """
import sys, yaml
from pcluster.schemas.imagebuilder_schema import ImageBuilderSchema
ImageBuilderSchema().load(yaml.safe_load(open(sys.argv[1])))
print("valid")
"""


def test_pcluster_build_image_path_renders_a_config_pcluster_accepts(tmp_path: Path):
    repo = tmp_path / "repo"
    shutil.copytree(AMI.parent, repo / AMI.parent.name, ignore=shutil.ignore_patterns("build", "__pycache__"))
    exporter = AMI.parents[1] / "4.validation_observability" / "3.efa-node-exporter"
    shutil.copytree(exporter, repo / "4.validation_observability" / exporter.name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(FAKE_AWS)
    (bin_dir / "aws").chmod(0o755)
    folder = repo / AMI.parent.name / AMI.name
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(folder), "pcluster-image-gpu", "YES=1",
         "AWS_REGION=eu-west-1", f"AWS={bin_dir / 'aws'}", "PCLUSTER=echo pcluster",
         "S3_URI=s3://example-bucket/images"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pcluster build-image --region eu-west-1 --image-id pcluster-gpu-ubuntu2204-" in result.stdout
    calls = (bin_dir / "aws-calls.log").read_text()
    assert "s3 cp --only-show-errors build/bundle.tar.gz s3://example-bucket/images/bundle.tar.gz" in calls
    config = yaml.safe_load((folder / "build" / "pcluster-gpu-build-image.yaml").read_text())
    assert config["Build"]["ParentImage"] == "ami-0abcdef1234567890"
    assert config["Build"]["Components"] == [
        {"Type": "script", "Value": "s3://example-bucket/images/component.sh"}
    ]
    component = (folder / "build" / "component.sh").read_text()
    assert "playbook='pcluster-gpu'" in component and "ansible_core_version='2.19.14'" in component
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    assert subprocess.run([shellcheck, "-"], input=component, text=True, check=False).returncode == 0
    with tarfile.open(folder / "build" / "bundle.tar.gz") as bundle:
        names = set(bundle.getnames())
    assert "2.ami_and_containers/1.amazon_machine_image/playbooks/pcluster-gpu.yml" in names
    assert "4.validation_observability/3.efa-node-exporter/efa_exporter.py" in names
    pcluster_python = AMI.parents[1] / ".nox" / "pcluster" / "bin" / "python"
    if not pcluster_python.is_file():
        pytest.skip("the pcluster nox session's venv is not there (nox -s pcluster makes it); rendered only")
    checked = subprocess.run(
        [str(pcluster_python), "-c", SCHEMA_CHECK, str(folder / "build" / "pcluster-gpu-build-image.yaml")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.stdout.strip() == "valid", checked.stdout + checked.stderr
