"""The playbooks and roles, statically: Ansible parses every playbook, every role a playbook or a role
depends on exists, and every version a role reads is a versions.yaml entry."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
AMI = HERE.parent / "1.amazon_machine_image"
ROLES = AMI / "roles"
VERSIONS = yaml.safe_load((AMI.parent / "versions.yaml").read_text())
PLAYBOOKS = sorted((AMI / "playbooks").glob("*.yml"))
VERSION_REF = re.compile(r"""\b(images|components|python)\[['"]([^'"]+)['"]\]""")


def role_names(entries: list) -> list[str]:
    return [entry if isinstance(entry, str) else entry["role"] for entry in entries]


def test_there_is_one_playbook_per_image():
    assert [path.stem for path in PLAYBOOKS] == [
        "dlami",
        "eks-gpu",
        "pcluster-cpu",
        "pcluster-gpu",
        "pcluster-neuron",
    ]


@pytest.mark.parametrize("playbook", [*PLAYBOOKS, *sorted(HERE.glob("*.yml"))], ids=lambda path: path.name)
def test_playbook_passes_syntax_check(playbook: Path):
    program = shutil.which("ansible-playbook") or str(Path(os.sys.executable).parent / "ansible-playbook")
    env = {**os.environ, "ANSIBLE_CONFIG": str(AMI / "ansible.cfg"), "ANSIBLE_ROLES_PATH": str(ROLES)}
    result = subprocess.run(
        [program, "--syntax-check", "-i", str(AMI / "inventory.yml"), str(playbook)],
        cwd=AMI, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_role_a_playbook_or_a_role_names_exists_and_there_is_no_cycle():
    existing = {path.name for path in ROLES.iterdir() if (path / "tasks" / "main.yml").is_file()}
    depends = {
        role: role_names(yaml.safe_load((ROLES / role / "meta" / "main.yml").read_text())["dependencies"])
        for role in existing
    }
    for role, needed in depends.items():
        assert set(needed) <= existing, f"role {role} depends on missing roles {set(needed) - existing}"
    for playbook in PLAYBOOKS:
        for play in yaml.safe_load(playbook.read_text()):
            missing = set(role_names(play["roles"])) - existing
            assert not missing, f"{playbook.name} names missing roles {missing}"

    def walk(role: str, path: tuple[str, ...]) -> None:
        assert role not in path, f"dependency cycle: {' -> '.join((*path, role))}"
        for needed in depends[role]:
            walk(needed, (*path, role))

    for role in existing:
        walk(role, ())
    # The walk must be able to fail: a role that names one that is not there.
    assert "cuda" in depends["nccl"] and "not-a-role" not in existing


def test_every_version_a_role_reads_is_in_versions_yaml():
    references = [
        (path, section, key)
        for path in sorted(ROLES.glob("*/defaults/main.yml"))
        for section, key in VERSION_REF.findall(path.read_text())
    ]
    assert len(references) >= 10
    for path, section, key in references:
        assert key in VERSIONS[section], f"{path.relative_to(AMI)}: versions.yaml has no {section}.{key}"
    for playbook in [*PLAYBOOKS, *sorted(HERE.glob("*.yml"))]:
        (play,) = yaml.safe_load(playbook.read_text())
        expected = "../versions.yaml" if playbook.parent == HERE else "../../versions.yaml"
        assert play["vars_files"] == [expected], playbook.name
