"""Every check, defined once. The Makefile calls these sessions; CI calls the Makefile.

- ``lint``: ruff, shellcheck, hadolint, yamllint, cfn-lint (whatever files exist), in a fast uv venv.
- ``security``: checkov, offline (``--skip-download``), in its own venv: it pins an old boto3.
- ``pcluster``: ParallelCluster configs against aws-parallelcluster's own schema, offline, in its own venv.
- ``tests``: pytest in the project venv made by ``make setup`` (torch comes from pip's local wheel,
  which uv does not see, so this session does not build a venv of its own).
- ``docs``: ``mkdocs build --strict`` (never with ``-q``: it hides the warnings strict turns into errors).
- ``bench``: the benchmarks, JSON results with machine info under ``bench-results/``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "security", "pcluster", "tests", "docs"]
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).resolve().parent
PYPROJECT = nox.project.load_toml("pyproject.toml")


def tracked_files(*patterns: str) -> list[str]:
    """Files git knows (tracked or new, not ignored) matching the glob patterns."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *patterns],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted({line for line in out.splitlines() if (ROOT / line).is_file()})


def cloudformation_templates() -> list[str]:
    """Every CloudFormation template of the cluster and observability folders (lint and checkov)."""
    folders = ("1.architectures", "4.validation_observability")
    candidates = tracked_files(
        *(f"{folder}/**/*.{ext}" for folder in folders for ext in ("yaml", "yml", "json"))
    )
    return [path for path in candidates if "AWSTemplateFormatVersion" in (ROOT / path).read_text()]


def dockerfiles() -> list[str]:
    return tracked_files("*Dockerfile", "**/*Dockerfile", "**/*.Dockerfile")


@nox.session
def lint(session: nox.Session) -> None:
    """Static checks over every file of their kind."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    shell = tracked_files("*.sh", "**/*.sh", "**/*.sbatch", ".ci/run")
    session.run("shellcheck", *shell)
    session.run("hadolint", *dockerfiles())
    session.run("yamllint", "--strict", "-c", ".yamllint.yaml", ".")
    templates = cloudformation_templates()
    if templates:
        session.run("cfn-lint", *templates)
    else:
        session.log("cfn-lint: no CloudFormation templates yet")


@nox.session
def security(session: nox.Session) -> None:
    """checkov over templates and Dockerfiles; inline skips must carry a reason."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "security"))
    targets = [arg for path in cloudformation_templates() + dockerfiles() for arg in ("-f", path)]
    session.run("checkov", "--skip-download", "--quiet", "--compact", *targets)


@nox.session
def pcluster(session: nox.Session) -> None:
    """ParallelCluster cluster configs against the package's own schema (offline). Args: config files;
    none: every template x capacity option rendered from sample outputs, plus a must-fail config."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "pcluster"))
    script = "1.architectures/2.aws-parallelcluster/validate_config.py"
    session.run("python", script, *(session.posargs or ["--examples"]))


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """The whole pytest suite, in the project venv (``make setup``). Extra args go to pytest."""
    session.run(sys.executable, "-m", "pytest", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the site from the READMEs, strictly."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "docs"))
    quiet = {"DISABLE_MKDOCS_2_WARNING": "true", "NO_MKDOCS_2_WARNING": "1"}  # a banner, not a finding
    session.run("mkdocs", "build", "--strict", "--site-dir", "site", env=quiet)


@nox.session(venv_backend="none")
def bench(session: nox.Session) -> None:
    """Benchmarks (throughput, collectives) into bench-results/*.json; never asserted in tests."""
    session.run(sys.executable, "benchmarks/run.py", *session.posargs)
    session.run(sys.executable, "benchmarks/fsdp.py")
