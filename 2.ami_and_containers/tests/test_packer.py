"""The Packer template: formatted, validated by the Packer this machine has, and of the shape it promises.

Debian's Packer (1.6.6) predates `required_plugins` and builds amazon-ebs and ansible in; it validates the
template without plugins.pkr.hcl. The whole template, that file included, is also parsed with python-hcl2
and checked for what Packer cannot check offline: every version from versions.yaml, no AMI ID, no region.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import hcl2
import pytest
import yaml

AMI = Path(__file__).resolve().parents[1] / "1.amazon_machine_image"
PACKER_DIR = AMI / "packer"
VERSIONS_FILE = AMI.parent / "versions.yaml"
VERSIONS = yaml.safe_load(VERSIONS_FILE.read_text())
SOURCES = {"pcluster-gpu", "pcluster-cpu", "pcluster-neuron", "eks-gpu", "dlami"}
TEMPLATE_FILES = sorted(PACKER_DIR.glob("*.pkr.hcl"))
REGION = re.compile(r"\b(us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d\b")
VERSION_REF = re.compile(r'local\.versions\.(images|components|python)\["([^"]+)"\]')


def unquoted(value):
    """python-hcl2 keeps the quotes of labels and strings ("\"amazon-ebs\""); drop them."""
    if isinstance(value, dict):
        return {unquoted(k): unquoted(item) for k, item in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [unquoted(item) for item in value]
    if isinstance(value, str) and len(value) > 1 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def parsed() -> dict[str, list]:
    merged: dict[str, list] = {}
    for path in TEMPLATE_FILES:
        for key, value in unquoted(hcl2.loads(path.read_text())).items():
            merged.setdefault(key, []).extend(value)
    return merged


def packer() -> str:
    found = shutil.which("packer")
    if not found:
        pytest.skip("packer not installed: make system-deps")
    return found


def test_template_files_are_formatted():
    command = [packer(), "fmt", "-check", "-diff", "."]
    result = subprocess.run(command, cwd=PACKER_DIR, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_packer_validates_the_template(tmp_path: Path):
    """`packer validate` on a copy without plugins.pkr.hcl (see the module docstring); its ansible
    provisioner wants ansible-playbook on PATH, as a real build does."""
    copy = tmp_path / "2.ami_and_containers"
    shutil.copytree(AMI, copy / AMI.name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(VERSIONS_FILE, copy / "versions.yaml")
    (copy / AMI.name / "packer" / "plugins.pkr.hcl").unlink()
    venv_bin = str(Path(os.sys.executable).parent)
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ['PATH']}", "AWS_REGION": "eu-north-1"}
    result = subprocess.run(
        [packer(), "validate", "."],
        cwd=copy / AMI.name / "packer",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    broken = copy / AMI.name / "packer" / "image.pkr.hcl"
    broken.write_text(broken.read_text().replace('"efa-installer"]', '"efa-installerr"]', 1))
    result = subprocess.run(
        [packer(), "validate", "."],
        cwd=copy / AMI.name / "packer",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and "Invalid index" in result.stdout, result.stdout + result.stderr


def test_every_image_has_a_source_a_build_and_a_playbook():
    template = parsed()
    sources = {name for block in template["source"] for name in block.get("amazon-ebs", {})}
    assert sources == SOURCES
    (build,) = template["build"]
    assert set(build["sources"]) == {f"source.amazon-ebs.{name}" for name in SOURCES}
    (provisioner,) = build["provisioner"]
    assert "ansible" in provisioner and "${source.name}.yml" in provisioner["ansible"]["playbook_file"]
    for name in SOURCES:
        assert (AMI / "playbooks" / f"{name}.yml").is_file(), f"no playbook for source {name}"


def test_every_variable_used_is_declared_and_every_declared_one_is_used():
    text = "\n".join(path.read_text() for path in TEMPLATE_FILES)
    declared = {name for block in parsed()["variable"] for name in block}
    used = set(re.findall(r"\bvar\.([a-z_][a-z0-9_]*)", text))
    assert used <= declared, f"undeclared: {used - declared}"
    assert declared <= used, f"declared, never used: {declared - used}"


def test_versions_come_from_versions_yaml():
    text = "\n".join(path.read_text() for path in TEMPLATE_FILES)
    references = VERSION_REF.findall(text)
    assert len(references) >= 8
    for section, key in references:
        assert key in VERSIONS[section], f"versions.yaml has no {section}.{key}"
    plugins = parsed()["packer"][0]["required_plugins"][0]
    for name, plugin in plugins.items():
        pinned = VERSIONS["components"][f"packer-plugin-{name}"]
        assert plugin["version"] == f"= {pinned}", f"{name}: {plugin['version']}, versions.yaml {pinned}"


def test_no_ami_id_and_no_region_is_written_down():
    for path in TEMPLATE_FILES:
        text = path.read_text()
        assert not re.search(r"\bami-[0-9a-f]{8,17}\b", text), f"{path.name} names an AMI ID; use a filter"
        assert not REGION.search(text), f"{path.name} names a region; the region is var.region"
    (region,) = [block["region"] for block in parsed()["variable"] if "region" in block]
    assert region["default"] == '${env("AWS_REGION")}'
