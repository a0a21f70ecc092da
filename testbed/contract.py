"""The test-case contract (3.test_cases/README.md), checked on a folder: one line per missing piece.

The rules are read from the YAML block under ``<!-- contract -->`` in the contract page, so the page is
the one place they are written. ``check_case(folder)`` returns ``"<folder>: <what is missing>"`` lines;
an empty list means the folder follows the contract. The checks run what a user runs: ``make help``,
every sbatch with ``DRY_RUN=1``, every Kubernetes template rendered with the Makefile's defaults
(``testbed.kube.render_manifest``, envsubst's substitution for the listed names) and validated against
its schema.
"""

from __future__ import annotations

import os
import re
import subprocess
from functools import cache
from pathlib import Path

import yaml

from testbed.kube import render_manifest, template_variables, validate_manifest
from testbed.readme_blocks import ILLUSTRATIVE_MARKER, WALKTHROUGH_MARKER, shell_blocks

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_CASES = REPO_ROOT / "3.test_cases"
CONTRACT_PAGE = TEST_CASES / "README.md"
_BLOCK = re.compile(r"<!--\s*contract\s*-->\s*\n```yaml\n(.*?)```", re.DOTALL)
_TARGET = re.compile(r"^([a-z][a-z0-9-]*):(?!=)", re.MULTILINE)
_VARIABLE = re.compile(r"^([A-Z][A-Z0-9_]*)[ \t]*\?=[ \t]*(.*)$", re.MULTILINE)
_SECTION = re.compile(r"^## (.+?)\s*$", re.MULTILINE)
SAMPLE_IMAGE = "registry.example/test-case:contract"


@cache
def rules() -> dict:
    """The contract's rules, from the contract page."""
    match = _BLOCK.search(CONTRACT_PAGE.read_text(encoding="utf-8"))
    if not match:
        raise ValueError(f"{CONTRACT_PAGE}: no ```yaml block under <!-- contract -->")
    return yaml.safe_load(match[1])


def case_folders(root: Path = TEST_CASES) -> list[Path]:
    """Every test case: each child of a group folder (pytorch/) and each other child of the root."""
    folders = []
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        if child.name in rules()["groups"]:
            folders += sorted(p for p in child.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
        else:
            folders.append(child)
    return folders


def check_case(folder: Path) -> list[str]:
    """Every way ``folder`` departs from the contract, one line each."""
    problems = (
        _files(folder)
        + _makefile(folder)
        + _readme(folder)
        + _tests(folder)
        + _sbatch(folder)
        + _kubernetes(folder)
    )
    return [f"{_name(folder)}: {problem}" for problem in problems]


def _name(folder: Path) -> str:
    try:
        return str(folder.relative_to(REPO_ROOT))
    except ValueError:
        return str(folder)


def _files(folder: Path) -> list[str]:
    contract = rules()
    missing = [f"no {name}" for name in contract["files"] if not (folder / name).is_file()]
    if contract["framework_entry_variable"] not in makefile_variables(folder):
        missing += [
            f"no {name} (the entry point), and the Makefile names no framework entry point "
            f"({contract['framework_entry_variable']} ?= ...)"
            for name in contract["entry_points"]
            if not (folder / name).is_file()
        ]
    dockerfiles = list(folder.glob(contract["dockerfile"]))
    if len(dockerfiles) != 1:
        missing.append(
            f"{len(dockerfiles)} files match {contract['dockerfile']}; the contract wants exactly one"
        )
    elif not re.search(r"^ARG [A-Z0-9_]+_(VERSION|IMAGE)=", dockerfiles[0].read_text(), re.MULTILINE):
        missing.append(f"{dockerfiles[0].name} takes no version from versions.yaml as an ARG")
    if not list(folder.glob("slurm/*.sbatch")):
        missing.append("no slurm/*.sbatch")
    if not _kubernetes_templates(folder):
        missing.append("no Kubernetes template in kubernetes/")
    return missing


def makefile_variables(folder: Path) -> dict[str, str]:
    """``NAME ?= default`` assignments of the folder's Makefile."""
    path = folder / "Makefile"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    return {name: value.strip() for name, value in _VARIABLE.findall(text)}


def _makefile(folder: Path) -> list[str]:
    path = folder / "Makefile"
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    targets = set(_TARGET.findall(text))
    problems = [f"Makefile has no '{t}' target" for t in rules()["make_targets"] if t not in targets]
    variables = makefile_variables(folder)
    problems += [
        f"Makefile does not declare {v} ?= ..." for v in rules()["make_variables"] if v not in variables
    ]
    if "VENV" in variables and "$(REPO_ROOT)/.venv" not in variables["VENV"]:
        problems.append("Makefile's VENV does not default to the repository's .venv when it exists")
    listed = subprocess.run(["make", "-s", "help"], cwd=folder, capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        problems.append(f"'make help' fails: {(listed.stderr.strip().splitlines() or ['?'])[-1]}")
    else:
        problems += [
            f"'make help' does not list '{t}'"
            for t in rules()["make_targets"]
            if t in targets and not re.search(rf"^\s*{t}\s", listed.stdout, re.MULTILINE)
        ]
    return problems


def _readme(folder: Path) -> list[str]:
    path = folder / "README.md"
    if not path.is_file():
        return []
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    sections = _SECTION.findall(text)
    expected = rules()["readme_sections"]
    missing = [s for s in expected if s not in sections]
    if missing:
        return [f"README.md has no '## {s}' section" for s in missing]
    order = [s for s in sections if s in expected]
    if order != expected:
        return [f"README.md sections are in the order {order}; the contract's is {expected}"]
    return _readme_blocks(folder, path.read_text(encoding="utf-8"))


def _readme_blocks(folder: Path, text: str) -> list[str]:
    """Every shell block is run by tests/test_walkthrough.py or says, in its marker, why it cannot be."""
    runner = folder / "tests" / "test_walkthrough.py"
    runs = runner.read_text(encoding="utf-8") if runner.is_file() else ""
    problems = []
    for number, block in enumerate(shell_blocks(text), start=1):
        walkthrough = WALKTHROUGH_MARKER.fullmatch(block.marker)
        if walkthrough and f'"{walkthrough[1]}"' in runs:
            continue
        if not walkthrough and ILLUSTRATIVE_MARKER.fullmatch(block.marker):
            continue
        problems.append(
            f"README.md shell block {number} is neither a walkthrough tests/test_walkthrough.py runs nor "
            "marked '<!-- illustrative: why it cannot run here -->'"
        )
    return problems


def _tests(folder: Path) -> list[str]:
    tests = folder / "tests"
    problems = [
        f"no tests/{' or tests/'.join(choices)}"
        for choices in rules()["test_files"]
        if not any((tests / name).is_file() for name in choices)
    ]
    container = tests / "test_container.py"
    marker = rules()["container_test_marker"]
    if container.is_file() and f"pytest.mark.{marker}" not in container.read_text(encoding="utf-8"):
        problems.append(f"tests/test_container.py has no @pytest.mark.{marker} test")
    return problems


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "FI_", "NCCL_"))}
    # No instance-metadata lookup and no EFA devices: the dry run prints the command for a CPU node.
    return {**env, "DRY_RUN": "1", "INSTANCE_TYPE": "cpu", "EFA_SYSFS": "/nonexistent"}


def _sbatch(folder: Path) -> list[str]:
    problems = []
    for script in sorted(folder.glob("slurm/*.sbatch")):
        directives = re.findall(r"^#SBATCH\s+(\S+)", script.read_text(encoding="utf-8"), re.MULTILINE)
        if "--requeue" in directives and "--open-mode=append" not in directives:
            problems.append(
                f"{script.relative_to(folder)} requeues without '#SBATCH --open-mode=append' "
                "(a requeued attempt would truncate the first one's log)"
            )
        result = subprocess.run(
            ["bash", str(script.relative_to(folder))],
            cwd=folder,
            env=_clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0 or "srun" not in result.stdout:
            why = (result.stderr.strip().splitlines() or ["no srun command printed"])[-1]
            problems.append(f"DRY_RUN=1 bash {script.relative_to(folder)} fails: {why}")
    return problems


def _kubernetes_templates(folder: Path) -> list[Path]:
    kube = folder / "kubernetes"
    if not kube.is_dir():
        return []
    return sorted(p for p in kube.iterdir() if p.name.endswith((".yaml", ".yaml-template", ".yaml.template")))


def _kubernetes(folder: Path) -> list[str]:
    """Render each template with the Makefile's defaults (and a sample IMAGE), validate the result."""
    values = {**makefile_variables(folder), "IMAGE": SAMPLE_IMAGE}
    problems = []
    for template in _kubernetes_templates(folder):
        unknown = template_variables(template.read_text(encoding="utf-8")) - values.keys()
        if unknown:
            problems.append(
                f"{template.relative_to(folder)} uses {sorted(unknown)}, which the Makefile never sets"
            )
            continue
        used = {name: values[name] for name in template_variables(template.read_text(encoding="utf-8"))}
        errors = validate_manifest(render_manifest(template, used))
        if errors:
            problems.append(f"{template.relative_to(folder)} does not validate: {errors[0]}")
    return problems


def shared_module_copies(root: Path = TEST_CASES) -> dict[str, list[Path]]:
    """Each shared module's copies across the trainers of the repository (``src/<package>/<module>``)."""
    return {name: sorted(root.glob(f"**/src/*/{name}")) for name in rules()["shared_modules"]}


def missing_shared_modules(root: Path = TEST_CASES) -> list[str]:
    """One line per trainer package (one that holds any shared module) lacking one of them. That the
    copies equal their source in common/trainer/ is common/sync.py's check (tests/test_sync.py)."""
    copies = shared_module_copies(root)
    packages = {path.parent for paths in copies.values() for path in paths}
    return [
        f"{_name(package)}: no {name} (a shared module; run 'make sync')"
        for name, paths in copies.items()
        for package in sorted(packages - {p.parent for p in paths})
    ]
