"""Every check, defined once. The Makefile calls these sessions; CI calls the Makefile.

- ``lint``: ruff, shellcheck, hadolint, yamllint, cfn-lint (whatever files exist), in a fast uv venv.
- ``security``: checkov, offline (``--skip-download``), in its own venv: it pins an old boto3. It scans
  CloudFormation, secrets, Dockerfiles and the pods of every rendered Kubernetes template.
  Both end with one figures line per tool; the cfn-lint and checkov lines must match the ones README.md
  records under ``<!-- lint-figures -->`` (``nox -s lint security -- --record`` rewrites them there).
- ``pcluster``: ParallelCluster configs against aws-parallelcluster's own schema, offline, in its own venv.
- ``cluster-python``: every cluster venv's ``requirements.txt`` resolved for each cluster OS's Python (uv).
- ``tests``: pytest in the project venv made by ``make setup`` (torch comes from pip's local wheel,
  which uv does not see, so this session does not build a venv of its own). Tests marked ``framework``
  are left to their case's session.
- one session per test case whose framework cannot share the project venv (``FRAMEWORK_CASES``): the
  case's ``requirements-cpu.txt`` (or ``requirements.txt``) plus the ``case-tests`` group in a venv of its
  own, then the case's tests marked ``framework``.
- ``docs``: ``mkdocs build --strict`` (never with ``-q``: it hides the warnings strict turns into errors),
  then the built site in headless Chromium (``docs/check_site.py``).
- ``bench``: the benchmarks, JSON results with machine info under ``bench-results/``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
ROOT = Path(__file__).resolve().parent
PYPROJECT = nox.project.load_toml("pyproject.toml")

# Test cases whose framework gets a venv of its own: session name -> case folder (one line each).
FRAMEWORK_CASES: dict[str, str] = {
    # framework-cases (keep this line: sessions are added below it)
    "megatron-lm": "3.test_cases/pytorch/megatron-lm",
    "bionemo": "3.test_cases/pytorch/bionemo",
    "nemo-run": "3.test_cases/pytorch/nemo-run",
    "nemo-launcher": "3.test_cases/pytorch/nemo-launcher",
    "torchtitan": "3.test_cases/pytorch/torchtitan",
    "jax": "3.test_cases/jax",
    "neuronx-distributed": "3.test_cases/pytorch/neuronx-distributed",
}

nox.options.sessions = ["lint", "security", "pcluster", "cluster-python", "tests", "tests-side"]
nox.options.sessions += [*FRAMEWORK_CASES, "docs"]

# `make test` runs two nox processes side by side (the suite waits on Slurm, subprocesses and sockets
# much of the time; on 2 cores the pair takes about 5 minutes less than one run in sequence):
# `nox -t main` holds the pytest suite's main lane, the pcluster venv its tests use, and the cases whose
# walkthroughs run torchrun on its default rendezvous port 29500, as the main lane's walkthroughs do
# (README commands as written, so they must not run at the same time); `nox -t side` holds everything else,
# the suite's side lane (`tests-side`: no torchrun, no Docker) among it. Plain `nox` runs every session in
# sequence. (megatron-lm's walkthrough tests give torchrun a free port, RDZV_PORT: it runs on the side.)
MAIN_CASES = ("nemo-run",)
MAIN, SIDE = ["main"], ["side"]
nox.options.error_on_missing_interpreters = True


def lock(name: str) -> str:
    """The lock of an install set (``locks/<name>.txt``, written by ``make lock``), which each install takes
    as a constraint: the versions a session gets are the locked ones."""
    return str(ROOT / "locks" / f"{name}.txt")


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


# --- Figures: what lint and security print last, and what README.md records of them. -----------------

README = ROOT / "README.md"
FIGURES_MARK = "<!-- lint-figures -->"  # in README.md, followed by one "- `<tool>: <figures>`" line per tool
_FIGURE_LINE = re.compile(r"- `(([\w-]+): [^`]+)`")
CHECKOV_NO_REASON = {"", "No comment provided"}  # what checkov reports for an inline skip without a reason


def recorded_figures(readme: str) -> dict[str, str]:
    """The figure lines README.md records under FIGURES_MARK, by tool (the list ends at any other line)."""
    lines = [line.strip() for line in readme.splitlines()]
    if FIGURES_MARK not in lines:
        return {}
    figures = {}
    for line in lines[lines.index(FIGURES_MARK) + 1 :]:
        match = _FIGURE_LINE.fullmatch(line)
        if not match:
            break
        figures[match[2]] = match[1]
    return figures


def record_figures(readme: str, figures: str) -> str:
    """README.md's text with the ``figures`` line recorded for its tool: replaced, or added to the list."""
    tool = figures.split(":", 1)[0]
    lines = readme.splitlines(keepends=True)
    marks = [i for i, line in enumerate(lines) if line.strip() == FIGURES_MARK]
    if not marks:
        raise ValueError(f"README.md has no {FIGURES_MARK} line to record the figures under")
    end = marks[0] + 1
    while end < len(lines) and (match := _FIGURE_LINE.fullmatch(lines[end].strip())):
        if match[2] == tool:
            lines[end] = f"- `{figures}`\n"
            return "".join(lines)
        end += 1
    lines.insert(end, f"- `{figures}`\n")
    return "".join(lines)


def check_recorded(session: nox.Session, figures: str) -> None:
    """Fail unless README.md records this figures line; ``-- --record`` writes it there instead."""
    tool = figures.split(":", 1)[0]
    readme = README.read_text()
    recorded = recorded_figures(readme).get(tool)
    if recorded == figures:
        return
    if "--record" in session.posargs:
        README.write_text(record_figures(readme, figures))
        session.log(f"README.md: recorded `{figures}` (was {recorded or 'not recorded'})")
        return
    session.error(
        f"README.md is stale: it records {recorded or 'nothing'!r}, this run gives {figures!r}; make its "
        f"{tool} line under {FIGURES_MARK} read:  - `{figures}`  (or run: .venv/bin/nox -s {session.name} "
        "-- --record)"
    )


def cfn_lint_findings(matches: list[dict]) -> list[str]:
    """cfn-lint's JSON matches as ``file:line:column: rule message`` lines."""
    return [
        f"{m['Filename']}:{m['Location']['Start']['LineNumber']}:{m['Location']['Start']['ColumnNumber']}: "
        f"{m['Rule']['Id']} {m['Message']}"
        for m in matches
    ]


def checkov_reports(results: dict | list) -> list[dict]:
    """checkov's JSON output as a list of reports (it writes a single report, or none, as an object)."""
    reports = results if isinstance(results, list) else [results]
    return [report for report in reports if "check_type" in report]


def checkov_figures(results: dict | list, templates: int, docker: int, pods: int) -> tuple[str, list[str]]:
    """The figures line, and one line per problem: a failed check, a file checkov could not parse, an
    inline skip without a reason. ``pods``: the pod specs of the rendered Kubernetes templates."""
    totals = dict.fromkeys(("passed", "failed", "skipped"), 0)
    problems = []
    for report in checkov_reports(results):
        for key in totals:
            totals[key] += report["summary"][key]
        checks = report.get("results", {})
        for check in checks.get("failed_checks", []):
            lines = "-".join(str(n) for n in check.get("file_line_range") or [])
            guideline = f" ({check['guideline']})" if check.get("guideline") else ""
            problems.append(
                f"FAILED {check['check_id']} {check['check_name']}: {check['resource']} in "
                f"{check['file_path'].lstrip('/')}:{lines}{guideline}"
            )
        for path in checks.get("parsing_errors", []):
            problems.append(f"NOT PARSED ({report['check_type']}): {path}")
        for check in checks.get("skipped_checks", []):
            reason = (check.get("check_result", {}).get("suppress_comment") or "").strip()
            if reason in CHECKOV_NO_REASON:
                how = (
                    f"annotate the pod template (custom kinds) or the object: checkov.io/skip<N>: "
                    f"{check['check_id']}=<reason>"
                    if report["check_type"] == "kubernetes"
                    else f"write #checkov:skip={check['check_id']}:<reason> "
                    "(templates: a comment under Metadata.checkov.skip)"
                )
                problems.append(
                    f"SKIP WITHOUT REASON {check['check_id']}: {check['resource']} in "
                    f"{check['file_path'].lstrip('/')}; {how}"
                )
    figures = (
        f"checkov: {templates} templates + {docker} Dockerfiles + {pods} Kubernetes pod specs, "
        f"{totals['passed']} passed, "
        f"{totals['failed']} failed, {totals['skipped']} skipped (inline, with reasons)"
    )
    return figures, problems


@nox.session(tags=SIDE)
def lint(session: nox.Session) -> None:
    """Static checks over every file of their kind, then one figures line per tool (the cfn-lint line
    must match README.md's record; ``-- --record`` rewrites it)."""
    session.install("-c", lock("lint"), *nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    shell = tracked_files("*.sh", "**/*.sh", "**/*.sbatch", ".ci/run")
    session.run("shellcheck", *shell)
    docker = dockerfiles()
    session.run("hadolint", *docker)
    session.run("yamllint", "--strict", "-c", ".yamllint.yaml", ".")
    # Machine-image playbooks and roles: ansible-lint's production profile, offline (no Galaxy).
    ami = "2.ami_and_containers/1.amazon_machine_image"
    ansible_files = tracked_files(f"{ami}/playbooks/*.yml", f"{ami}/roles/**/*.yml", f"{ami}/roles/**/*.j2")
    with session.chdir(ami):
        session.run("ansible-lint", "--offline", "--profile", "production", "playbooks", "roles")
    templates = cloudformation_templates()
    findings: list[str] = []
    if templates:
        report = Path(session.create_tmp()) / "cfn-lint.json"
        report.unlink(missing_ok=True)
        # Exit status: a bit per level (2 error, 4 warning, 8 informational); anything else is a crash.
        session.run(
            "cfn-lint",
            "--format",
            "json",
            "--output-file",
            str(report),
            *templates,
            success_codes=range(0, 16, 2),
        )
        findings = cfn_lint_findings(json.loads(report.read_text() or "[]"))
    for finding in findings:
        session.log(finding)
    python = session.run("ruff", "check", "--show-files", ".", silent=True, log=False)
    yamls = session.run("yamllint", "--list-files", "-c", ".yamllint.yaml", ".", silent=True, log=False)
    cfn = f"cfn-lint: {len(templates)} templates, {len(findings)} findings"
    session.log(f"ruff: {len(str(python).splitlines())} Python files, 0 findings, formatted")
    session.log(f"shellcheck: {len(shell)} scripts, 0 findings")
    session.log(f"hadolint: {len(docker)} Dockerfiles, 0 findings")
    session.log(f"yamllint: {len(str(yamls).splitlines())} YAML files, 0 findings")
    session.log(f"ansible-lint: {len(ansible_files)} playbook and role files, 0 findings (production)")
    session.log(cfn)
    if findings:
        session.error(f"cfn-lint: {len(findings)} findings (above); the gate is zero")
    check_recorded(session, cfn)


@nox.session(tags=SIDE)
def security(session: nox.Session) -> None:
    """checkov (CloudFormation, secrets, Dockerfiles, the pods of the Kubernetes templates) offline: zero
    failed checks, every skip inline with a reason; then the figures line, which must match README.md's
    record (``-- --record`` rewrites it).

    checkov's kubernetes framework reads core kinds only, so every Kubernetes template is rendered as the
    folders' tests render it and the pod templates of PyTorchJobs and MPIJobs are written out as Pods
    (``testbed/k8s_pods.py``, in this venv: checkov brings its PyYAML and jsonschema)."""
    session.install("-c", lock("security"), *nox.project.dependency_groups(PYPROJECT, "security"))
    for config in (".checkov.yaml", ".checkov.yml"):
        if (ROOT / config).exists():
            session.error(f"{config}: skips belong inline in the file they excuse, with a reason")
    templates, docker = cloudformation_templates(), dockerfiles()
    tmp = Path(session.create_tmp())
    out = tmp / "checkov"
    kubernetes = json.loads(
        str(session.run("python", "-m", "testbed.k8s_pods", str(tmp / "k8s-pods"), silent=True))
    )
    frameworks = ("cloudformation", "secrets", "dockerfile", "kubernetes")
    targets = [arg for path in templates + docker + kubernetes["files"] for arg in ("-f", path)]
    # JSON only (the CLI report lists every passed check); the failures are printed from it below.
    # Exit status 1 is "a check failed"; anything else is a crash, and nox shows checkov's output.
    report = out / "results_json.json"
    report.unlink(missing_ok=True)
    session.run(
        "checkov",
        "--skip-download",
        "--compact",
        "--framework",
        *frameworks,
        "-o",
        "json",
        "--output-file-path",
        str(out),
        *targets,
        silent=True,
        success_codes=[0, 1],
    )
    results = json.loads(report.read_text())
    figures, problems = checkov_figures(results, len(templates), len(docker), kubernetes["pod_specs"])
    for problem in problems:
        session.log(problem)
    session.log(figures)
    if problems:
        session.error(
            f"checkov: {len(problems)} problems (above); the gate is zero failed, skips with reasons"
        )
    check_recorded(session, figures)


@nox.session(tags=MAIN)
def pcluster(session: nox.Session) -> None:
    """ParallelCluster cluster configs against the package's own schema (offline). Args: config files
    (``--against-aws`` first: also the package's validators, which call AWS or the emulator); none: every
    template x capacity option rendered from sample outputs, plus a must-fail config."""
    session.install("-c", lock("pcluster"), *nox.project.dependency_groups(PYPROJECT, "pcluster"))
    script = "1.architectures/2.aws-parallelcluster/validate_config.py"
    session.run("python", script, *(session.posargs or ["--examples"]))


@nox.session(name="cluster-python", venv_backend="none", tags=SIDE)
def cluster_python(session: nox.Session) -> None:
    """Every requirements.txt a folder installs into a cluster venv, resolved (wheels only, nothing
    downloaded) for the Python of each cluster OS image, or the one its Makefile's venv target picks."""
    session.run(sys.executable, "-m", "testbed.cluster_python")


@nox.session(venv_backend="none", tags=MAIN)
def tests(session: nox.Session) -> None:
    """The pytest suite's main lane, in the project venv (``make setup``); ``tests-side`` runs the rest
    (the lanes: ``SIDE_LANE`` in conftest.py). Extra args go to pytest instead, the whole suite selectable."""
    session.run(sys.executable, "-m", "pytest", *(session.posargs or ["--lane", "main"]))


@nox.session(name="tests-side", venv_backend="none", tags=SIDE)
def tests_side(session: nox.Session) -> None:
    """The pytest suite's side lane (tests of the test bed, the repository, S3, VPC, Batch and EKS: no
    torchrun, no Docker), beside the main lane in ``make test``. Extra args go to pytest."""
    session.run(sys.executable, "-m", "pytest", "--lane", "side", *session.posargs)


def framework_requirements(folder: Path) -> Path:
    """What a case's framework session installs: ``requirements-cpu.txt`` where the CPU set differs from
    the image's (no CUDA-only packages), else ``requirements.txt``."""
    cpu = folder / "requirements-cpu.txt"
    return cpu if cpu.is_file() else folder / "requirements.txt"


def framework_session(session: nox.Session, folder: str) -> None:
    """The case's framework in a venv of its own, then the case's ``framework``-marked tests. uv looks for
    wheels where pip is configured to (``PIP_FIND_LINKS``), so a torch pin takes the same local wheel."""
    env = {"UV_FIND_LINKS": os.environ["PIP_FIND_LINKS"]} if os.environ.get("PIP_FIND_LINKS") else {}
    requirements = framework_requirements(ROOT / folder)
    groups = nox.project.dependency_groups(PYPROJECT, "case-tests")
    session.install("-c", lock(session.name), "-r", str(requirements), *groups, env=env)
    session.run(
        "python", "-m", "pytest", "-m", "framework", folder, *session.posargs, env={"CASE_SESSION": "1"}
    )


def _case_session(folder: str):
    def session_function(session: nox.Session) -> None:
        framework_session(session, folder)

    session_function.__doc__ = f"{folder}: its framework in a venv of its own, its framework-marked tests"
    return session_function


for _name, _folder in FRAMEWORK_CASES.items():
    nox.session(name=_name, tags=MAIN if _name in MAIN_CASES else SIDE)(_case_session(_folder))


@nox.session(tags=SIDE)
def docs(session: nox.Session) -> None:
    """Build the site from the READMEs, strictly (diagrams, benchmark page: docs/hooks.py), then check it
    in headless Chromium (docs/check_site.py). Args go to the check, e.g. ``-- --keep-artifacts t``."""
    session.install("-c", lock("docs"), *nox.project.dependency_groups(PYPROJECT, "docs"))
    quiet = {"DISABLE_MKDOCS_2_WARNING": "true", "NO_MKDOCS_2_WARNING": "1"}  # a banner, not a finding
    session.run("mkdocs", "build", "--strict", "--site-dir", "site", env=quiet)
    session.run("python", "docs/check_site.py", "--site", "site", *session.posargs)


@nox.session(venv_backend="none")
def bench(session: nox.Session) -> None:
    """Benchmarks (throughput, collectives) into bench-results/*.json; never asserted in tests."""
    session.run(sys.executable, "benchmarks/run.py", *session.posargs)
    session.run(sys.executable, "benchmarks/fsdp.py")
    session.run(sys.executable, "benchmarks/fsdp_data.py")
