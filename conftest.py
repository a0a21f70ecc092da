"""Shared fixtures for the whole suite (``pytest .`` from the root runs everything).

- ``artifacts_root``: one folder per test session for what tests create (run folders,
  checkpoints, LocalSlurm state and logs, emulator state). Removed at the end unless
  ``--keep-artifacts=t``, which keeps it and prints where it is.
- ``local_slurm``: one real Slurm cluster (munge + slurmctld + 2 slurmd) shared by the session.
- ``local_prometheus``: one real Prometheus shared by the session; tests add and remove scrape jobs.
- ``aws_emulator``: one AWS emulator (moto server on loopback) shared by the session.
- ``docker_client`` / ``docker_build`` / ``docker_run``: container tests through the Docker SDK, on the
  daemon the environment names or, as root, on a ``dockerd`` started for the session
  (``testbed.docker``); skipped with the reason where neither is possible, or where a build needs a
  registry or package index the machine cannot reach.
- ``minbase_rootfs``: one Debian minbase tree per session (debootstrap), for the machine-image role tests
  and the images' bases. ``python_base``: python:slim or its stand-in made from that tree;
  ``training_base``: the GPU base image of 2.ami_and_containers when the daemon has it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest
import requests
import yaml
from docker.errors import BuildError, DockerException

from testbed import shared_storage
from testbed.aws import AwsEmulator
from testbed.docker import DockerError, LocalDocker, cannot_start_reason, reachable_daemon
from testbed.prometheus import REQUIRED_PROGRAMS as PROMETHEUS_PROGRAMS
from testbed.prometheus import LocalPrometheus
from testbed.slurm import REQUIRED_PROGRAMS, LocalSlurm
from testbed.system import MissingComponent, in_ci, require_programs

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
    parser.addoption(
        "--lane",
        choices=("main", "side"),
        help="run one lane of the suite (make test runs both side by side, noxfile sessions tests and "
        "tests-side); default: every test",
    )


# The side lane: tests that start no torchrun on the default rendezvous port, use no Docker daemon and
# share no debootstrap root with the Docker tests, so that they can run beside the main lane's pytest.
SIDE_LANE = ("tests/", "testbed/tests/", "1.architectures/0.s3/", "1.architectures/1.vpc_network/")
SIDE_LANE += ("1.architectures/3.aws-batch/", "1.architectures/4.amazon-eks/")
MAIN_LANE_FILES = ("tests/test_make_run.py", "tests/test_root_walkthroughs.py", "tests/test_versions.py")
MAIN_LANE_FILES += ("testbed/tests/test_docker.py",)
# The Docker daemon and the debootstrap root are the main lane's: a test that uses one runs there.
MAIN_LANE_FIXTURES = {"docker_client", "docker_build", "docker_run", "python_base", "training_base"}
MAIN_LANE_FIXTURES |= {"minbase_rootfs"}


def lane_of(item: pytest.Item) -> str:
    """``side`` for a test of the side lane's folders, unless it is one of MAIN_LANE_FILES, a Docker test
    or one that uses a fixture of MAIN_LANE_FIXTURES."""
    relative = Path(str(item.path)).resolve().relative_to(REPO_ROOT).as_posix()
    side = relative.startswith(SIDE_LANE) and relative not in MAIN_LANE_FILES
    side = side and not item.get_closest_marker("docker")
    return "side" if side and not MAIN_LANE_FIXTURES & set(getattr(item, "fixturenames", ())) else "main"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``framework`` need a case's framework packages: its nox session (``CASE_SESSION=1``)
    runs them, the project venv's run leaves them out (deselected, not skipped: they do run, elsewhere)."""
    lane = config.getoption("--lane")
    if lane:
        other = [item for item in items if lane_of(item) != lane]
        if other:
            config.hook.pytest_deselected(items=other)
            items[:] = [item for item in items if lane_of(item) == lane]
    if os.environ.get("CASE_SESSION"):
        return
    framework = [item for item in items if item.get_closest_marker("framework")]
    if framework:
        config.hook.pytest_deselected(items=framework)
        items[:] = [item for item in items if not item.get_closest_marker("framework")]


def _missing_component(missing: MissingComponent) -> None:
    """The policy of testbed/system.py: a missing system component fails under CI, skips elsewhere."""
    if in_ci():
        pytest.fail(str(missing), pytrace=False)
    pytest.skip(str(missing))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):  # fixtures that start a service call require_programs
    try:
        return (yield)
    except MissingComponent as missing:
        _missing_component(missing)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    try:
        return (yield)
    except MissingComponent as missing:
        _missing_component(missing)


# aws-parallelcluster's own code runs in the `pcluster` nox session's venv (its pins clash with .venv's).
# `make test` runs that session before the tests; `pytest .` builds the venv here, once, when a selected
# test needs it (the `pcluster_python` fixture) and it is missing.
PCLUSTER_ENVDIR = REPO_ROOT / ".nox"


def ensure_pcluster_venv(envdir: Path = PCLUSTER_ENVDIR) -> str | None:
    """Build ``<envdir>/pcluster`` with ``nox -s pcluster --install-only`` unless it exists; None when it
    is there, else one line saying why it could not be built."""
    if (envdir / "pcluster" / "bin" / "python").is_file():
        return None
    command = [sys.executable, "-m", "nox", "-s", "pcluster", "--install-only", "--envdir", str(envdir)]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return None
    last = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
    return f"nox -s pcluster --install-only failed: {last[0]}"


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    if any("pcluster_python" in getattr(item, "fixturenames", ()) for item in session.items):
        problem = ensure_pcluster_venv()
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if problem and reporter:  # the fixture then fails under CI and skips elsewhere, with its message
            reporter.write_line(f"warning: {problem}")


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
def gpu_slurm(artifacts_root: Path, keep_artifacts: bool):
    """A real local Slurm shaped like a GPU cluster's partition, shared by the session: 8 nodes of
    192 CPUs and 8 GPUs (count-only gres; nothing sees a device), partition ``gpu``. README blocks written
    for a p5 cluster run their ``sbatch`` on it with ``srun`` stood in (testbed/job_standins.py)."""
    require_programs("local Slurm", *REQUIRED_PROGRAMS)
    # The cluster's shared storage: /fsx in every job, and in the walkthrough shells of run_on_cluster
    # (testbed/shared_storage.py; where this machine cannot, tests that need it ask for `fsx`).
    shared = {}
    if shared_storage.available() is None:
        shared = {"/fsx": artifacts_root / "fsx"}
        shared["/fsx"].mkdir(parents=True, exist_ok=True)
    cluster = LocalSlurm(
        nodes=8,
        cpus_per_node=192,
        gpus_per_node=8,
        partition="gpu",
        state_dir=artifacts_root / "gpu-slurm",
        keep=keep_artifacts,
        shared=shared,
    )
    with cluster:
        yield cluster


@pytest.fixture
def fsx(gpu_slurm: LocalSlurm) -> Path:
    """The folder ``gpu_slurm``'s jobs and run_on_cluster's shells see as ``/fsx`` (shared by the session,
    as a cluster's shared storage is: each test writes under its own sub-folder). A missing component
    where this machine cannot give processes a private root (not root, or no mount namespaces)."""
    if "/fsx" not in gpu_slurm.shared:
        raise MissingComponent(f"/fsx stand-in: {shared_storage.available()}")
    return gpu_slurm.shared["/fsx"]


@pytest.fixture(scope="session")
def docker_client(artifacts_root: Path, keep_artifacts: bool) -> Iterator[docker.DockerClient]:
    """A Docker SDK client: the daemon the environment names when one answers, else (as root) a
    ``dockerd`` (overlay2, else vfs) started for the session by ``testbed.docker``, stopped at the end,
    with ``DOCKER_HOST`` pointing at it meanwhile. Skipped with the exact reason otherwise."""
    client, why = reachable_daemon()
    if client is not None:
        yield client
        client.close()
        return
    reason = cannot_start_reason()
    if reason:
        pytest.skip(f"no Docker daemon ({why}) and none can be started: {reason}")
    daemon = LocalDocker(artifacts_root / "docker", keep=keep_artifacts)
    try:
        daemon.start()
    except DockerError as exc:
        pytest.skip(f"no Docker daemon ({why}) and dockerd failed to start here: {exc}")
    print(f"\ndockerd ({daemon.storage_driver}) for the session: answered in {daemon.started_in_s:.1f} s")
    client = daemon.client()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DOCKER_HOST", daemon.host)
            yield client
    finally:
        client.close()
        daemon.stop()


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
    """Build an image from a Dockerfile in the repo and return its tag; images are removed unless kept.
    Builds use the host's network (the session's own daemon has no bridge); the build time and image size
    are printed (``-s`` shows them)."""
    built: list[str] = []

    def build(context: Path, dockerfile: str, tag: str, buildargs: dict[str, str] | None = None) -> str:
        started = time.monotonic()
        try:
            docker_client.images.build(
                path=str(context),
                dockerfile=dockerfile,
                tag=tag,
                buildargs=buildargs or {},
                rm=True,
                forcerm=True,
                network_mode="host",
            )
        except BuildError as exc:
            log = "".join(str(chunk.get("stream") or chunk.get("error") or "") for chunk in exc.build_log)
            if unreachable_registry(str(exc)):
                pytest.skip(
                    f"a base image or package cannot be fetched here ({str(exc).splitlines()[0][:160]})"
                )
            raise AssertionError(f"docker build of {dockerfile} failed: {exc}\n{log[-4000:]}") from None
        except DockerException as exc:
            if unreachable_registry(str(exc)):
                pytest.skip(f"a base image cannot be pulled here ({str(exc).splitlines()[0][:160]})")
            raise
        built.append(tag)
        size = docker_client.images.get(tag).attrs["Size"] / 2**20
        print(f"\ndocker build {tag}: {time.monotonic() - started:.0f} s, {size:.0f} MiB")
        return tag

    yield build
    if not keep_artifacts:
        for tag in built:
            with contextlib.suppress(DockerException):
                docker_client.images.remove(tag, force=True)


@pytest.fixture(scope="session")
def docker_run(docker_client) -> Callable[..., tuple[int, str]]:
    """Run a command in an image to its end (failing after ``timeout`` seconds); return (exit code,
    combined logs). ``volumes`` and other keyword arguments go to the SDK's ``containers.run``."""

    def run(
        image: str,
        command: list[str],
        environment: dict[str, str] | None = None,
        timeout: float = 240,
        **options,
    ) -> tuple[int, str]:
        container = docker_client.containers.run(
            image, command, environment=environment or {}, detach=True, **options
        )
        try:
            try:
                result = container.wait(timeout=timeout)
            except requests.exceptions.RequestException:  # the read timeout of the wait
                logs = container.logs().decode(errors="replace")
                raise AssertionError(
                    f"{command} still running after {timeout:.0f} s:\n{logs[-3000:]}"
                ) from None
            return int(result["StatusCode"]), container.logs().decode(errors="replace")
        finally:
            container.remove(force=True)

    return run


# The minbase tree's packages: Ansible's modules run on python3 (apt's on python3-apt); the python:slim
# stand-in needs pip and venv.
MINBASE_INCLUDE = "python3,python3-apt,python3-pip,python3-venv,ca-certificates"


@pytest.fixture(scope="session")
def minbase_rootfs(artifacts_root: Path) -> Path:
    """One Debian minbase root file system per session (debootstrap), shared by the machine-image role
    tests (which converge a copy) and the container tests (which import it as the python:slim stand-in).
    The pristine tree: tests copy it before they change anything."""
    if os.geteuid() != 0:
        pytest.skip("debootstrap and chroot need root (CI runs as root)")
    for program in ("debootstrap", "chroot", "mount"):
        if not shutil.which(program):
            pytest.skip(f"{program} not installed: make system-deps")
    mirror = os.environ.get("DEBOOTSTRAP_MIRROR", "http://deb.debian.org/debian")
    suite = os.environ.get("DEBOOTSTRAP_SUITE", "bookworm")
    root = artifacts_root / "minbase"
    started = time.monotonic()
    subprocess.run(
        ["debootstrap", "--variant=minbase", f"--include={MINBASE_INCLUDE}", suite, str(root), mirror],
        check=True,
        capture_output=True,
    )
    # A build host behind a TLS-inspecting proxy trusts its certificate authority; so must the image.
    extra = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
    for certificate in extra:
        shutil.copy(certificate, root / "usr/local/share/ca-certificates" / certificate.name)
    if extra:
        subprocess.run(["chroot", str(root), "update-ca-certificates"], check=True, capture_output=True)
    print(f"\ndebootstrap (minbase, once per session): {time.monotonic() - started:.0f} s")
    return root


VERSIONS = yaml.safe_load((REPO_ROOT / "2.ami_and_containers" / "versions.yaml").read_text())
LOCAL_PYTHON_SCRIPT = REPO_ROOT / "2.ami_and_containers" / "2.containers" / "local-python-base.sh"
LOCAL_PYTHON_IMAGE = "distributed-training-local/python:3.11-bookworm"


@pytest.fixture(scope="session")
def python_base(docker_client, request: pytest.FixtureRequest) -> str:
    """The base of the CPU images (``PYTHON_SLIM_IMAGE``): the pinned python:slim when the daemon has it
    or can pull it, else the stand-in ``local-python-base.sh`` imports from the session's minbase tree."""
    pinned = VERSIONS["images"]["python-slim"]
    try:
        docker_client.images.get(pinned)
        return pinned
    except DockerException:
        pass
    try:
        docker_client.images.pull(pinned)
        return pinned
    except DockerException as exc:
        if not unreachable_registry(str(exc)):
            raise
    minbase = request.getfixturevalue("minbase_rootfs")
    started = time.monotonic()
    subprocess.run(
        [str(LOCAL_PYTHON_SCRIPT), LOCAL_PYTHON_IMAGE, str(minbase)],
        check=True,
        capture_output=True,
        text=True,
    )
    print(f"\n{pinned} out of reach: {LOCAL_PYTHON_IMAGE} imported in {time.monotonic() - started:.0f} s")
    return LOCAL_PYTHON_IMAGE


@pytest.fixture(scope="session")
def training_base(docker_client) -> str:
    """The GPU training base (``images.training-base``) when this daemon has it; skipped otherwise."""
    tag = VERSIONS["images"]["training-base"]
    try:
        docker_client.images.get(tag)
    except DockerException:
        pytest.skip(
            f"the training base {tag} is not on this Docker daemon: build it first with "
            "`make -C 2.ami_and_containers/2.containers base` (needs nvidia/cuda from Docker Hub, the EFA "
            "installer and GitHub)"
        )
    return tag


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
