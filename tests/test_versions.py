"""Pins live once in 2.ami_and_containers/versions.yaml; everything that repeats one must agree."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from testbed.walkthrough import repository_files

ROOT = Path(__file__).resolve().parents[1]
VERSIONS = yaml.safe_load((ROOT / "2.ami_and_containers" / "versions.yaml").read_text())
# The files git knows, so build outputs (site/, .venv, .nox) never add copies.
DOCKERFILES = sorted(ROOT / p for p in repository_files("*Dockerfile", "**/*Dockerfile"))
REQUIREMENTS = sorted(ROOT.glob("3.test_cases/**/requirements*.txt"))
ARG = re.compile(r"^\s*ARG\s+([A-Z0-9_]+)=(\S+)", re.MULTILINE)
FROM = re.compile(r"^\s*FROM\s+(\S+)", re.MULTILINE)
PIN = re.compile(r"^\s*([A-Za-z0-9_.-]+)==(\S+)")


def expected_args() -> dict[str, str]:
    """versions.yaml -> the ARG names Dockerfiles use for each entry."""
    names = {}
    for section, suffix in (("images", "IMAGE"), ("python", "VERSION"), ("components", "VERSION")):
        for key, value in VERSIONS.get(section, {}).items():
            names[f"{key.upper().replace('-', '_')}_{suffix}"] = str(value)
    return names


def pins(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        match = PIN.match(line.split("#")[0])
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def test_there_is_something_to_check():
    assert DOCKERFILES, "no Dockerfile found"
    assert VERSIONS["python"]["torch"] == "2.13.0"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfile_arg_defaults_equal_versions_yaml(dockerfile):
    text = dockerfile.read_text()
    expected = expected_args()
    args = dict(ARG.findall(text))
    assert args, f"{dockerfile.name} takes no versions as ARGs"
    for name, default in args.items():
        assert name in expected, f"{dockerfile.name}: ARG {name} has no entry in versions.yaml"
        assert default == expected[name], (
            f"{dockerfile.name}: ARG {name}={default}, versions.yaml says {expected[name]}"
        )
    for image in FROM.findall(text):
        assert image.startswith("${") or image in expected.values(), (
            f"{dockerfile.name}: FROM {image} is not pinned"
        )


def test_no_image_is_latest_or_untagged():
    for dockerfile in DOCKERFILES:
        for name, value in ARG.findall(dockerfile.read_text()):
            if name.endswith("_IMAGE"):
                assert ":" in value and not value.endswith(":latest"), f"{dockerfile}: {name}={value}"
    for key, image in VERSIONS["images"].items():
        assert ":" in image and not image.endswith(":latest"), f"versions.yaml images.{key}={image}"


def test_python_pins_agree_with_versions_yaml():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    groups = [
        item for group in pyproject["dependency-groups"].values() for item in group if isinstance(item, str)
    ]
    sources = {"pyproject.toml": pins(groups)}
    sources.update(
        {str(path.relative_to(ROOT)): pins(path.read_text().splitlines()) for path in REQUIREMENTS}
    )
    assert REQUIREMENTS
    for source, found in sources.items():
        for package, version in VERSIONS["python"].items():
            if package in found:
                assert found[package] == str(version), (
                    f"{source}: {package}=={found[package]}, versions.yaml {version}"
                )
    for path in REQUIREMENTS:
        for raw in path.read_text().splitlines():
            line = raw.split("#")[0].strip()
            assert not line or PIN.match(line), f"{path}: {line!r} is not pinned with =="


# Machine images: Packer and Ansible read versions.yaml (yamldecode, vars_files); their own files write none.
AMI = ROOT / "2.ami_and_containers" / "1.amazon_machine_image"
AMI_FILES = sorted(
    ROOT / p
    for p in repository_files(
        "2.ami_and_containers/1.amazon_machine_image/**/*.yml",
        "2.ami_and_containers/1.amazon_machine_image/**/*.j2",
        "2.ami_and_containers/1.amazon_machine_image/**/*.hcl",
    )
)
VERSION_LITERAL = re.compile(r"(?<![\w.])v?\d+\.\d+\.\d+(?:[-_.]\w+)*")
AMI_VERSION_REF = re.compile(r"""\b(images|components|python)\[['"]([^'"]+)['"]\]""")


def test_machine_image_files_write_no_version_and_read_only_existing_ones():
    assert len(AMI_FILES) >= 20, AMI_FILES
    plugins = AMI / "packer" / "plugins.pkr.hcl"
    for path in AMI_FILES:
        text = path.read_text()
        if path == plugins:  # Packer wants literals there; test_packer.py compares them with versions.yaml
            continue
        literals = VERSION_LITERAL.findall(text)
        assert not literals, (
            f"{path.relative_to(ROOT)} writes versions {literals}; read them from versions.yaml"
        )
        for section, key in AMI_VERSION_REF.findall(text):
            assert key in VERSIONS[section], f"{path.relative_to(ROOT)}: versions.yaml has no {section}.{key}"


def test_training_base_tag_names_the_pins_it_is_built_from():
    tag = VERSIONS["images"]["training-base"].split(":", 1)[1]
    cuda = VERSIONS["images"]["cuda-devel"].split(":", 1)[1].split("-", 1)[0]
    components = VERSIONS["components"]
    assert tag == f"cuda{cuda}-efa{components['efa-installer']}-nccl{components['nccl'].removeprefix('v')}"
    assert components["cuda-runfile"].split("_", 1)[0] == cuda, (
        "CUDA of the machine images != the containers'"
    )


# GPU images build FROM the training base (2.ami_and_containers/2.containers/base.Dockerfile: CUDA, EFA,
# NCCL, GDRCopy) or FROM a vendor's container that is its own base (NGC, NeMo, BioNeMo, Neuron). Only the
# base itself starts from plain CUDA, and jax, whose MaxText needs Ubuntu 24.04's Python 3.12 (the base is
# Ubuntu 22.04).
PLAIN_CUDA = {"2.ami_and_containers/2.containers/base.Dockerfile", "3.test_cases/jax/jax.Dockerfile"}
BASE_OWNS = ("efa_installer.sh", "NCCL_VERSION", "GDRCOPY_VERSION", "nvidia/cuda")


def test_gpu_images_build_from_the_training_base():
    on_base = []
    for dockerfile in DOCKERFILES:
        name = str(dockerfile.relative_to(ROOT))
        text = dockerfile.read_text()
        bases = re.findall(r"^\s*FROM\s+\$\{([A-Z0-9_]+)\}", text, re.MULTILINE)
        if name not in PLAIN_CUDA:
            assert not {"CUDA_DEVEL_IMAGE", "CUDA_DEVEL_UBUNTU24_IMAGE"} & set(bases), (
                f"{name} builds FROM plain CUDA; build FROM ${{TRAINING_BASE_IMAGE}} (images.training-base)"
            )
        if "TRAINING_BASE_IMAGE" in bases:
            on_base.append(name)
            owned = [word for word in BASE_OWNS if word in text]
            assert not owned, f"{name} repeats what its base installs: {owned}"
    assert len(on_base) >= 5, on_base
    makefile = (ROOT / "2.ami_and_containers" / "2.containers" / "Makefile").read_text()
    assert "TRAINING_BASE_IMAGE ?= $(shell sed -n 's/^  training-base: //p' $(VERSIONS))" in makefile
