"""Stand-ins for the cluster CLIs that cannot run here: ``kubectl``, ``eksctl`` and ``helm`` (and, from
:mod:`testbed.job_standins`, ``srun`` inside a job, ``docker`` and ``enroot``).

:func:`write_standins` writes the three as Python scripts (run by this venv's Python, so they import
``testbed``) into a bin folder that a test puts first on ``PATH`` (``run_walkthrough(...,
standins=bin_dir)``). Each appends its command line to the calls log (``calls.log``, one line per
call: the tool and its arguments joined by spaces). What they do beyond recording:

- ``kubectl apply|create -f FILE`` (or ``-k DIR``, built by the real ``kubectl kustomize``) validates
  every document with :mod:`testbed.kube`'s strict offline validation (the pinned CRDs and the core
  schemas) and refuses an invalid one as the API server would: the message on stderr, exit 1; valid
  documents are stored as applied and printed as kubectl prints them (``pytorchjob.kubeflow.org/x
  created``). ``create`` of an object that exists fails as AlreadyExists. A URL, or a kustomization with
  a remote resource, cannot be read offline: it is recorded only. ``kubectl create secret generic NAME
  --from-literal=K=V`` stores a Secret.
- ``kubectl wait ... TYPE/NAME`` succeeds only for an object applied before (or one the test declares
  present, e.g. a Deployment a Helm chart or a release manifest creates); else ``error: no matching
  resources found``, exit 1.
- ``kubectl logs [-f] TARGET`` prints the file the test gave for TARGET (``logs={"job/x-launcher":
  path}``), and only when TARGET is an applied object or one its operator creates from it (a
  PyTorchJob's ``<name>-<replica type>-<index>`` pods, an MPIJob's ``<name>-launcher`` Job and
  ``<name>-worker-<index>`` pods); otherwise NotFound, exit 1.
- ``kubectl get TYPE NAME`` finds applied objects (NotFound otherwise); a list of a type prints the
  applied ones, or ``No resources found``. ``kubectl get crd mpijobs.kubeflow.org`` prints
  ``crd_versions`` (what an existing CRD serves) or fails as NotFound. ``kubectl delete`` removes.
  ``kubectl kustomize`` runs the real kubectl. Anything else fails, naming the command.
- ``eksctl create|delete cluster -f FILE`` validates the ClusterConfig (eksctl's schema, pinned);
  every other eksctl and every helm call is recorded only.

The applied objects live in ``objects.json`` beside the log; :func:`applied` reads them.
:func:`run_with_standins` writes the stand-ins and runs a README walkthrough with them, the one shape
of the cases' walkthrough tests: ``run_with_standins(...).check()``, then what it recorded (``calls``,
``applied``, ``launches``, ``images``); :func:`run_on_cluster` does the same on a local Slurm shaped like
the README's cluster and waits for the jobs the walkthrough submitted.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed import job_standins, kube
from testbed.walkthrough import WalkthroughResult, run_walkthrough

TOOLS = ("kubectl", "eksctl", "helm")
JOB_TOOLS = job_standins.JOB_TOOLS  # srun, docker, enroot, nvidia-smi: see testbed/job_standins.py
SESSION_TOOLS = job_standins.SESSION_TOOLS  # session-manager-plugin
CONFIG = "standins.json"
LOG = "calls.log"
OBJECTS = "objects.json"
_REPO_ROOT = Path(__file__).resolve().parents[1]
# Resource names kubectl accepts for a kind: the kind, its plural and its short names (what tests use).
_SHORT = {"pvc": "persistentvolumeclaim", "deploy": "deployment", "ds": "daemonset", "svc": "service"}
_SHORT |= {"cm": "configmap", "sa": "serviceaccount", "crd": "customresourcedefinition", "sc": "storageclass"}
_SHORT |= {"po": "pod", "ns": "namespace"}
_CLUSTER_SCOPED = {
    "namespace",
    "clusterrole",
    "clusterrolebinding",
    "storageclass",
    "customresourcedefinition",
}
_CLUSTER_SCOPED |= {"persistentvolume", "node", "priorityclass"}


def write_standins(
    bin_dir: Path,
    *,
    logs: Mapping[str, Path | str] | None = None,
    crd_versions: str = "",
    present: Iterable[str] = (),
    tools: Iterable[str] = TOOLS,
    instance_type: str | None = None,
    outputs: Mapping[str, Path | int | bool] | None = None,
    images_present: Iterable[str] = (),
) -> Path:
    """Write the stand-ins ``tools`` (``kubectl``, ``eksctl`` and ``helm`` by default; any of
    ``JOB_TOOLS``: ``srun``, ``docker``, ``enroot``) into ``bin_dir``; return the calls log.

    ``logs`` maps a ``kubectl logs`` target as the command names it (``job/nccl-tests-launcher``,
    ``cpu-ddp-worker-0``) to the file it prints, or to the text itself (a ``str``). ``crd_versions`` is
    what ``kubectl get crd`` prints (empty: the CRD does not exist). ``present`` names objects the
    cluster has without an apply the stand-in could read, as ``kind/name`` or ``kind/name@namespace``
    (``deployment/mpi-operator@mpi-operator``). ``instance_type``: the node type ``nvidia-smi`` lists the
    GPUs of (none: it fails as without a driver). ``outputs``: what a program launched with ``srun``
    printed on a real cluster (a recorded file) or exits with (a status), by program name; ``True``:
    the program runs here for real (a probe of the node, ``hostname``).
    ``images_present``: images the node has without a build here (pulled from a registry).
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    log = bin_dir / LOG
    objects = []
    for item in present:
        reference, _, namespace = item.partition("@")
        kind, _, name = reference.partition("/")
        objects.append({"kind": _kind(kind), "name": name, "namespace": namespace or "default", "spec": {}})
    (bin_dir / OBJECTS).write_text(json.dumps(objects))
    config = {
        "log": str(log),
        "objects": str(bin_dir / OBJECTS),
        "logs": {target: str(_log_file(bin_dir, target, log)) for target, log in (logs or {}).items()},
        "crd_versions": crd_versions,
        "bin": str(bin_dir.resolve()),
        "instance_type": instance_type,
        "outputs": {
            name: value if isinstance(value, int) else str(Path(value).resolve())
            for name, value in (outputs or {}).items()
        },
    }
    if images_present:
        state = {"built": {job_standins.tagged(tag): {"present": True} for tag in images_present}}
        (bin_dir / job_standins.IMAGES).write_text(json.dumps({**job_standins.empty_images(), **state}))
    (bin_dir / CONFIG).write_text(json.dumps(config, indent=1))
    python = _python()
    for tool in tools:
        if tool not in TOOLS + JOB_TOOLS + SESSION_TOOLS:
            known = ", ".join(TOOLS + JOB_TOOLS + SESSION_TOOLS)
            raise ValueError(f"no stand-in for {tool!r}; there are {known}")
        script = bin_dir / tool
        script.write_text(
            f"#!{python}\n"
            "import sys\n"
            f"sys.path.insert(0, {str(_REPO_ROOT)!r})\n"
            "from testbed.standins import main\n"
            f"sys.exit(main({tool!r}, {str(bin_dir.resolve() / CONFIG)!r}, sys.argv[1:]))\n"
        )
        script.chmod(0o755)
    return log


def _log_file(bin_dir: Path, target: str, log: Path | str) -> Path:
    """The file ``kubectl logs target`` prints: ``log`` itself, or a file in ``bin_dir`` holding the text."""
    if isinstance(log, Path):
        return log.resolve()
    path = bin_dir.resolve() / "logs" / (target.replace("/", "_") + ".log")
    path.parent.mkdir(exist_ok=True)
    path.write_text(log, encoding="utf-8")
    return path


@dataclass
class StandinRun:
    """A walkthrough run with stand-ins: its result and what the stand-ins recorded."""

    result: WalkthroughResult
    log: Path
    jobs: list[Any] = field(default_factory=list)  # testbed.slurm Jobs it submitted (run_on_cluster)

    @property
    def output(self) -> str:
        return self.result.output

    @property
    def workdir(self) -> Path:
        return self.result.workdir

    def check(self) -> StandinRun:
        """Fail (AssertionError with the output's tail) unless every block succeeded."""
        assert self.result.returncode == 0, self.result.output[-4000:]
        return self

    @property
    def calls(self) -> list[str]:
        return calls(self.log)

    @property
    def applied(self) -> list[dict[str, Any]]:
        return applied(self.log)

    @property
    def launches(self) -> list[dict[str, Any]]:
        return job_standins.launches(self.log)

    @property
    def images(self) -> dict[str, Any]:
        return job_standins.images(self.log)

    def launches_of(self, job: Any) -> list[dict[str, Any]]:
        """The srun launches of one job (jobs run side by side: their launches interleave)."""
        return [launch for launch in self.launches if launch["job"] == str(job.id)]


def run_with_standins(
    readme: Path,
    name: str,
    workdir: Path,
    bin_dir: Path,
    *,
    timeout: float = 600,
    env: Mapping[str, str] | None = None,
    shared: Mapping[str, Path] | None = None,
    **standins: Any,
) -> StandinRun:
    """Write the stand-ins into ``bin_dir`` (``write_standins(bin_dir, **standins)``), then run walkthrough
    ``name`` of ``readme`` with them in a copy of the repository under ``workdir``. ``env``: what the
    place the README's commands run on provides (``SLURM_CONF`` of the test's cluster); with
    ``instance_type=``, the node's shape too (``job_standins.node_env``: its type and EFA devices).
    ``shared``: the cluster's shared storage at its path (``{"/fsx": folder}``, see run_walkthrough)."""
    log = write_standins(bin_dir, **standins)
    if standins.get("instance_type"):
        env = {**job_standins.node_env(standins["instance_type"], bin_dir), **(env or {})}
    result = run_walkthrough(readme, name, workdir, timeout=timeout, standins=bin_dir, env=env, shared=shared)
    return StandinRun(result, log)


def run_on_fsx(
    readme: Path,
    name: str,
    workdir: Path,
    bin_dir: Path,
    fsx: Path,
    *,
    tools: Iterable[str] = (),
    timeout: float = 600,
    **standins: Any,
) -> StandinRun:
    """Walkthrough ``name`` of ``readme`` on a machine whose shared storage is ``/fsx`` (``fsx``: the
    folder seen there, the ``fsx`` fixture's), with the stand-ins ``tools`` (none by default), checked."""
    return run_with_standins(
        readme, name, workdir, bin_dir, timeout=timeout, shared={"/fsx": fsx}, tools=tools, **standins
    ).check()


def run_on_cluster(
    readme: Path,
    name: str,
    workdir: Path,
    bin_dir: Path,
    cluster: Any,
    *,
    instance_type: str | None = "p5.48xlarge",
    tools: Iterable[str] = JOB_TOOLS,
    timeout: float = 600,
    job_timeout: float = 120,
    **standins: Any,
) -> StandinRun:
    """Walkthrough ``name`` of ``readme`` on the head node of ``cluster`` (a ``testbed.slurm.LocalSlurm``
    shaped like the README's cluster, e.g. the ``gpu_slurm`` fixture) whose nodes are ``instance_type``
    (None: this machine as it is, for scripts that run for real on the local nodes): run with the job
    stand-ins (``tools``), checked; then every job it submitted waited for, each of which must have
    COMPLETED (``run.jobs``, in submission order; ``run.launches_of(job)``). The shell sees the
    cluster's shared storage (``cluster.shared``, e.g. ``/fsx``) as its jobs do."""
    run = run_with_standins(
        readme,
        name,
        workdir,
        bin_dir,
        timeout=timeout,
        env={"SLURM_CONF": str(cluster.conf_path)},
        shared=cluster.shared,
        tools=tools,
        instance_type=instance_type,
        **standins,
    ).check()
    run.jobs = cluster.submitted(run.output, timeout=job_timeout)
    failed = [job for job in run.jobs if job.state != "COMPLETED"]
    assert not failed, "\n".join(f"job {job.id}: {job.state}\n{job.output()[-2000:]}" for job in failed)
    return run


def _python() -> str:
    """This Python, or the project venv's where this one lacks what testbed.kube needs (a nox session's)."""
    if importlib.util.find_spec("kubernetes_validate") is None:
        venv = _REPO_ROOT / ".venv" / "bin" / "python"
        if venv.exists():
            return str(venv)
    return sys.executable


def applied(log: Path) -> list[dict[str, Any]]:
    """The objects the ``kubectl`` stand-in holds (applied, or declared present), in order:
    ``{"apiVersion", "kind", "name", "namespace", "spec"}``."""
    return json.loads((log.parent / OBJECTS).read_text())


def calls(log: Path) -> list[str]:
    """The recorded command lines (``kubectl apply -f build/x.yaml``), in order; none if nothing ran."""
    return log.read_text().splitlines() if log.exists() else []


# --------------------------------------------------------------------------- the scripts' entry point


class _Refused(Exception):
    """What the real tool would print on stderr before exiting 1."""


def main(tool: str, config_file: str, argv: list[str]) -> int:
    config = json.loads(Path(config_file).read_text())
    with open(config["log"], "a", encoding="utf-8") as handle:
        handle.write(" ".join([tool, *argv]) + "\n")
    try:
        if tool == "kubectl":
            return _Kubectl(config).run(argv)
        if tool == "eksctl":
            return _eksctl(argv)
        if tool in JOB_TOOLS + SESSION_TOOLS:
            return job_standins.run(tool, config, argv)
        return 0
    except (_Refused, job_standins.Refused) as refused:
        print(str(refused), file=sys.stderr)
        return 1


def _kind(name: str) -> str:
    """A kubectl resource name (``pytorchjobs.kubeflow.org``, ``deploy``, ``Job``) as a lower-case kind."""
    name = name.lower().split(".", 1)[0]
    name = _SHORT.get(name, name)
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith(("sses", "ches")):
        return name[:-2]
    return name[:-1] if name.endswith("s") and not name.endswith("ss") else name


def _resource(document: dict) -> str:
    """How kubectl names an object's resource: ``pytorchjob.kubeflow.org``, ``job.batch``, ``service``."""
    group = document.get("apiVersion", "").rpartition("/")[0]
    kind = str(document.get("kind", "")).lower()
    return f"{kind}.{group}" if group else kind


_options = job_standins.parse_options  # kubectl's flags and positional arguments


_VALUED = (
    "-f",
    "--filename",
    "-k",
    "--kustomize",
    "-n",
    "--namespace",
    "-o",
    "--output",
    "-c",
    "--container",
)
_VALUED += ("--timeout", "--for", "-l", "--selector", "--tail", "-L", "--label-columns", "--from-literal")


class _Kubectl:
    def __init__(self, config: dict) -> None:
        self.config = config
        self.objects_file = Path(config["objects"])
        self.objects: list[dict] = json.loads(self.objects_file.read_text())

    def save(self) -> None:
        self.objects_file.write_text(json.dumps(self.objects))

    def run(self, argv: list[str]) -> int:
        if not argv:
            raise _Refused("error: the kubectl stand-in needs a command")
        command, rest = argv[0], argv[1:]
        # In `kubectl logs`, -f is --follow (no value): the stand-in prints the whole log and returns.
        valued = [flag for flag in _VALUED if command != "logs" or flag != "-f"]
        flags, positional = _options(rest, valued)
        namespace = (flags.get("-n") or flags.get("--namespace") or ["default"])[-1]
        handlers = {
            "apply": self.apply,
            "create": self.create,
            "wait": self.wait,
            "logs": self.logs,
            "get": self.get,
            "delete": self.delete,
        }
        if command == "kustomize":
            return self.kustomize(rest)
        if command not in handlers:
            raise _Refused(f"error: the kubectl stand-in does not emulate 'kubectl {command}'")
        return handlers[command](flags, positional, namespace)

    # ----------------------------------------------------------------- lookups

    def find(self, kind: str, name: str, namespace: str) -> dict | None:
        for obj in self.objects:
            scoped = obj["kind"] in _CLUSTER_SCOPED or obj["namespace"] == namespace
            if obj["kind"] == kind and obj["name"] == name and scoped:
                return obj
        return None

    def children(self, namespace: str) -> set[tuple[str, str]]:
        """(kind, name) of what the operators create from the applied jobs, where names are fixed."""
        found = set()
        for obj in self.objects:
            if obj["namespace"] != namespace:
                continue
            specs = {
                "pytorchjob": obj["spec"].get("pytorchReplicaSpecs"),
                "mpijob": obj["spec"].get("mpiReplicaSpecs"),
            }.get(obj["kind"])
            for replica_type, replica in (specs or {}).items():
                if obj["kind"] == "mpijob" and replica_type == "Launcher":
                    found.add(("job", f"{obj['name']}-launcher"))
                    continue
                for index in range(int(replica.get("replicas", 1))):
                    found.add(("pod", f"{obj['name']}-{replica_type.lower()}-{index}"))
        return found

    # ----------------------------------------------------------------- commands

    def documents(self, flags: dict[str, list[str]]) -> list[tuple[str, dict]] | None:
        """(source, document) of every -f/-k; None when a source cannot be read offline."""
        found: list[tuple[str, dict]] = []
        for path in flags.get("-f", []) + flags.get("--filename", []):
            if "://" in path:
                return None
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise _Refused(f'error: the path "{path}" does not exist ({exc.strerror})') from None
            try:
                found += [(path, doc) for doc in kube.parse_documents(text)]
            except kube.ManifestSyntaxError as exc:
                raise _Refused(f"error: error parsing {path}: {exc}") from None
        for folder in flags.get("-k", []) + flags.get("--kustomize", []):
            kustomization = Path(folder) / "kustomization.yaml"
            if kustomization.is_file() and "://" in kustomization.read_text(encoding="utf-8"):
                return None  # a remote resource: not built offline
            built = self.kustomize([folder], capture=True)
            found += [(folder, doc) for doc in kube.parse_documents(built)]
        if not found:
            raise _Refused("error: must specify one of -f and -k")
        return found

    def admit(self, documents: list[tuple[str, dict]], namespace: str, *, create: bool) -> int:
        """Validate each document as the API server would; store the valid ones."""
        status = 0
        for source, document in documents:
            if not isinstance(document, dict):
                print(f'error: error validating "{source}": not a Kubernetes object', file=sys.stderr)
                status = 1
                continue
            name = (document.get("metadata") or {}).get("name", "")
            label = f"{document.get('kind', '?')}/{name or '<no name>'}"
            errors = kube.validate_documents([document])
            if errors:
                for error in errors:
                    detail = error.split(": ", 1)[-1] if error.startswith("document ") else error
                    print(
                        f'Error from server (BadRequest): error when creating "{source}": {label}: {detail}',
                        file=sys.stderr,
                    )
                status = 1
                continue
            kind = str(document["kind"]).lower()
            where = (document.get("metadata") or {}).get("namespace") or namespace
            existing = self.find(kind, name, where)
            if existing and create:
                print(
                    f'Error from server (AlreadyExists): error when creating "{source}": '
                    f'{_resource(document)} "{name}" already exists',
                    file=sys.stderr,
                )
                status = 1
                continue
            if existing:
                self.objects.remove(existing)
            self.objects.append(
                {
                    "apiVersion": document["apiVersion"],
                    "kind": kind,
                    "name": name,
                    "namespace": "" if kind in _CLUSTER_SCOPED else where,
                    "spec": document.get("spec") or {},
                }
            )
            print(f"{_resource(document)}/{name} {'configured' if existing else 'created'}")
        self.save()
        return status

    def apply(self, flags, positional, namespace) -> int:
        documents = self.documents(flags)
        return 0 if documents is None else self.admit(documents, namespace, create=False)

    def create(self, flags, positional, namespace) -> int:
        if positional[:2] == ["secret", "generic"] and len(positional) == 3:
            data = dict(item.split("=", 1) for item in flags.get("--from-literal", []) if "=" in item)
            secret = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": positional[2], "namespace": namespace},
                "type": "Opaque",
                "stringData": data,
            }
            return self.admit([("secret", secret)], namespace, create=True)
        if positional:
            raise _Refused(f"error: the kubectl stand-in does not emulate 'kubectl create {positional[0]}'")
        documents = self.documents(flags)
        return 0 if documents is None else self.admit(documents, namespace, create=True)

    def targets(self, positional: list[str]) -> list[tuple[str, str]]:
        if len(positional) == 2 and "/" not in positional[0]:
            return [(_kind(positional[0]), positional[1])]
        pairs = []
        for item in positional:
            kind, slash, name = item.partition("/")
            if not slash:
                raise _Refused(
                    f"error: arguments in resource/name form must have a single resource and name: {item}"
                )
            pairs.append((_kind(kind), name))
        return pairs

    def wait(self, flags, positional, namespace) -> int:
        pairs = self.targets(positional)
        children = self.children(namespace)
        for kind, name in pairs:
            if not self.find(kind, name, namespace) and (kind, name) not in children:
                raise _Refused("error: no matching resources found")
        for kind, name in pairs:
            condition = (flags.get("--for") or ["condition=Ready"])[-1].removeprefix("condition=")
            print(f"{kind}/{name} condition met" if condition else f"{kind}/{name}")
        return 0

    def logs(self, flags, positional, namespace) -> int:
        if len(positional) != 1:
            raise _Refused("error: expected 'logs [-f] (POD | TYPE/NAME) [-c CONTAINER]'")
        target = positional[0]
        kind, slash, name = target.partition("/")
        kind, name = (_kind(kind), name) if slash else ("pod", target)
        exists = self.find(kind, name, namespace) or (kind, name) in self.children(namespace)
        if not exists:
            plural = "pods" if kind == "pod" else f"{kind}s"
            raise _Refused(f'Error from server (NotFound): {plural} "{name}" not found')
        logs = self.config["logs"]
        path = logs.get(target) or logs.get(f"{kind}/{name}") or (logs.get(name) if kind == "pod" else None)
        if path is None:
            raise _Refused(
                f"error: the kubectl stand-in was given no log for {target} (write_standins(logs=...))"
            )
        sys.stdout.write(Path(path).read_text(encoding="utf-8"))
        return 0

    def get(self, flags, positional, namespace) -> int:
        if positional[:1] == ["crd"] or (positional and _kind(positional[0]) == "customresourcedefinition"):
            name = positional[1] if len(positional) > 1 else ""
            if not self.config["crd_versions"]:
                crds = "customresourcedefinitions.apiextensions.k8s.io"
                raise _Refused(f'Error from server (NotFound): {crds} "{name}" not found')
            sys.stdout.write(self.config["crd_versions"])
            return 0
        if not positional:
            raise _Refused("error: you must specify the type of resource to get")
        if len(positional) == 1 and "/" not in positional[0]:
            kind = _kind(positional[0])
            names = [
                o["name"] for o in self.objects if o["kind"] == kind and o["namespace"] in ("", namespace)
            ]
            if not names:
                print(f"No resources found in {namespace} namespace.", file=sys.stderr)
                return 0
            print("NAME", *names, sep="\n")
            return 0
        for kind, name in self.targets(positional):
            if not self.find(kind, name, namespace):
                raise _Refused(f'Error from server (NotFound): {kind}s "{name}" not found')
            print(f"{kind}/{name}")
        return 0

    def delete(self, flags, positional, namespace) -> int:
        if flags.get("-f") or flags.get("--filename"):
            documents = self.documents(flags) or []
            pairs = [
                (str(d.get("kind", "")).lower(), (d.get("metadata") or {}).get("name", ""))
                for _, d in documents
                if isinstance(d, dict)
            ]
        else:
            pairs = self.targets(positional)
        status = 0
        for kind, name in pairs:
            found = self.find(kind, name, namespace)
            if found is None:
                print(f'Error from server (NotFound): {kind}s "{name}" not found', file=sys.stderr)
                status = 1
                continue
            self.objects.remove(found)
            print(f'{kind} "{name}" deleted')
        self.save()
        return status

    def kustomize(self, rest: list[str], capture: bool = False) -> Any:
        real = shutil.which(
            "kubectl",
            path=os.pathsep.join(
                p
                for p in os.environ.get("PATH", "").split(os.pathsep)
                if Path(p).resolve() != Path(self.config["bin"])
            ),
        )
        if real is None:
            raise _Refused("error: kubectl kustomize needs the real kubectl on PATH (it embeds kustomize)")
        done = subprocess.run([real, "kustomize", *rest], capture_output=True, text=True, check=False)
        if done.returncode:
            raise _Refused(done.stderr.rstrip() or f"error: kubectl kustomize {shlex.join(rest)} failed")
        if capture:
            return done.stdout
        sys.stdout.write(done.stdout)
        return 0


def _eksctl(argv: list[str]) -> int:
    """``eksctl create|delete cluster -f FILE``: the ClusterConfig must be valid (eksctl's own schema)."""
    flags, positional = _options(argv, ("-f", "--config-file", "--region", "--name"))
    files = flags.get("-f", []) + flags.get("--config-file", [])
    if positional[:1] in (["create"], ["delete"]) and positional[1:2] == ["cluster"] and files:
        for path in files:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise _Refused(f"Error: reading config file {path!r}: {exc.strerror}") from None
            errors = kube.validate_manifest(text)
            if errors:
                raise _Refused("\n".join(f"Error: loading config file {path!r}: {error}" for error in errors))
        return 0
    if positional[:1] in (["create"], ["delete"]) and positional[1:2] == ["cluster"]:
        raise _Refused("Error: the eksctl stand-in needs the cluster config file (-f FILE)")
    return 0
