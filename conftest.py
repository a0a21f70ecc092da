"""Shared fixtures for the whole suite (``pytest .`` from the root runs everything).

- ``artifacts_root``: one folder per test session for what tests create (run folders,
  checkpoints, LocalSlurm state and logs, emulator state). Removed at the end unless
  ``--keep-artifacts=t``, which keeps it and prints where it is.
- ``local_slurm``: one real Slurm cluster (munge + slurmctld + 2 slurmd) shared by the session.
- ``local_prometheus``: one real Prometheus shared by the session; tests add and remove scrape jobs.
- ``aws_emulator``: one AWS emulator (moto server on loopback) shared by the session.
- ``docker_build`` / ``docker_run``: container tests through the Docker SDK; skipped with a reason
  where no daemon runs (always the case on the development machine), or where a build needs a registry
  or package index the machine cannot reach.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest
from docker.errors import DockerException

from testbed.aws import AwsEmulator
from testbed.prometheus import REQUIRED_PROGRAMS as PROMETHEUS_PROGRAMS
from testbed.prometheus import LocalPrometheus
from testbed.slurm import REQUIRED_PROGRAMS, LocalSlurm
from testbed.system import require_programs

REPO_ROOT = Path(__file__).resolve().parent
TRUE_WORDS = {"t", "true", "1", "yes", "y"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--keep-artifacts",
        default="f",
        metavar="t|f",
        help="keep run folders, checkpoints, LocalSlurm state/logs, emulator state and built images "
        "(t) and print where they are; default f removes everything",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``framework`` need a case's framework packages: its nox session (``CASE_SESSION=1``)
    runs them, the project venv's run leaves them out (deselected, not skipped: they do run, elsewhere)."""
    if os.environ.get("CASE_SESSION"):
        return
    framework = [item for item in items if item.get_closest_marker("framework")]
    if framework:
        config.hook.pytest_deselected(items=framework)
        items[:] = [item for item in items if not item.get_closest_marker("framework")]


def _keep(config: pytest.Config) -> bool:
    return str(config.getoption("--keep-artifacts")).lower() in TRUE_WORDS


@pytest.fixture(scope="session")
def keep_artifacts(pytestconfig: pytest.Config) -> bool:
    """Whether ``--keep-artifacts=t`` was given."""
    return _keep(pytestconfig)


@pytest.fixture(scope="session")
def artifacts_root(pytestconfig: pytest.Config) -> Iterator[Path]:
    """The session's folder for everything tests create."""
    root = Path(tempfile.mkdtemp(prefix="dtr-artifacts-"))
    pytestconfig.stash[_ARTIFACTS_KEY] = root
    yield root
    if not _keep(pytestconfig):
        shutil.rmtree(root, ignore_errors=True)


_ARTIFACTS_KEY = pytest.StashKey[Path]()


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    root = config.stash.get(_ARTIFACTS_KEY, None)
    if root is not None and _keep(config):
        terminalreporter.write_line(f"artifacts kept in {root}")


@pytest.fixture
def run_dir(request: pytest.FixtureRequest, artifacts_root: Path) -> Path:
    """A fresh folder for one test's runs and checkpoints."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-120:]
    path = artifacts_root / "runs" / name
    path.mkdir(parents=True, exist_ok=False)
    return path


@pytest.fixture(scope="session")
def local_slurm(artifacts_root: Path, keep_artifacts: bool):
    """One real local Slurm cluster (2 nodes x 1 CPU) shared by the whole session."""
    require_programs("local Slurm", *REQUIRED_PROGRAMS)
    cluster = LocalSlurm(nodes=2, cpus_per_node=1, state_dir=artifacts_root / "slurm", keep=keep_artifacts)
    with cluster:
        yield cluster


@pytest.fixture(scope="session")
def docker_client():
    """A Docker SDK client; skipped with its reason when no daemon answers (always, on CPU dev boxes)."""
    socket_path = Path("/var/run/docker.sock")
    if not os.environ.get("DOCKER_HOST") and not socket_path.exists():
        pytest.skip(f"no Docker daemon: no {socket_path} and DOCKER_HOST unset; run on a host with Docker")
    client = None
    try:
        client = docker.from_env()
        client.ping()
    except DockerException as exc:
        if client is not None:
            client.close()
        pytest.skip(f"no Docker daemon: {str(exc).splitlines()[0][:160]}; run on a host with Docker")
    return client


# What a build that needed a registry it cannot reach says (Docker Hub, nvcr.io, public.ecr.aws, a
# package index): an environment without a network path to them, like a missing daemon, not a failure.
_UNREACHABLE = (
    "no such host",
    "could not resolve",
    "dial tcp",
    "i/o timeout",
    "network is unreachable",
    "temporary failure in name resolution",
    "failed to resolve",
    "connection refused",
)


def unreachable_registry(message: str) -> bool:
    return any(marker in message.lower() for marker in _UNREACHABLE)


@pytest.fixture(scope="session")
def docker_build(docker_client, keep_artifacts: bool) -> Iterator[Callable[..., str]]:
    """Build an image from a Dockerfile in the repo and return its tag; images are removed unless kept."""
    built: list[str] = []

    def build(context: Path, dockerfile: str, tag: str, buildargs: dict[str, str] | None = None) -> str:
        try:
            docker_client.images.build(
                path=str(context), dockerfile=dockerfile, tag=tag, buildargs=buildargs or {}, rm=True
            )
        except DockerException as exc:
            if unreachable_registry(str(exc)):
                pytest.skip(f"a base image cannot be pulled here ({str(exc).splitlines()[0][:160]})")
            raise
        built.append(tag)
        return tag

    yield build
    if not keep_artifacts:
        for tag in built:
            docker_client.images.remove(tag, force=True)


@pytest.fixture(scope="session")
def docker_run(docker_client) -> Callable[..., tuple[int, str]]:
    """Run a command in an image; return (exit code, combined logs)."""

    def run(image: str, command: list[str], environment: dict[str, str] | None = None) -> tuple[int, str]:
        container = docker_client.containers.run(image, command, environment=environment or {}, detach=True)
        try:
            result = container.wait()
            return int(result["StatusCode"]), container.logs().decode(errors="replace")
        finally:
            container.remove(force=True)

    return run


@pytest.fixture(scope="session")
def local_prometheus(artifacts_root: Path, keep_artifacts: bool) -> Iterator[LocalPrometheus]:
    """One real Prometheus (Debian package) shared by the session; each test removes the jobs it adds."""
    require_programs("Prometheus", *PROMETHEUS_PROGRAMS)
    with LocalPrometheus(state_dir=artifacts_root / "prometheus", keep=keep_artifacts) as prometheus:
        yield prometheus


@pytest.fixture(scope="session")
def aws_emulator(artifacts_root: Path, keep_artifacts: bool) -> Iterator[AwsEmulator]:
    """One AWS emulator (moto server, emulator extensions registered) shared by the session."""
    with AwsEmulator(state_dir=artifacts_root / "aws", keep=keep_artifacts) as emulator:
        yield emulator
