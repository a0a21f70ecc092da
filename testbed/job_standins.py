"""Stand-ins for what a GPU cluster's job and image steps call and this machine cannot run:
``srun`` (inside a job), ``docker`` and ``enroot``.

They are written by :func:`testbed.standins.write_standins` (``tools=JOB_TOOLS`` or with the
Kubernetes ones) and record every call in the same ``calls.log``. A README block then runs as written:
``sbatch slurm/x.sbatch`` goes to a real Slurm (the test's local cluster shaped like the GPU cluster:
its node count, GPUs as gres, :class:`testbed.slurm.LocalSlurm` ``gpus_per_node``); the batch script
runs for real on it (its ``#SBATCH`` lines, environment, EFA/NCCL variables, rendezvous address) and
only its ``srun`` is stood in for. What each checks before it records:

- ``srun`` (inside an allocation only, as in a batch script): its ``--nodes`` fit the allocation; the
  program it launches exists (an absolute path, or on ``PATH``) and every ``*.py`` or ``*.sh`` argument
  that names a file exists, unless it runs in a container (pyxis ``--container-image``: a squashfs path
  must exist or have been imported by the ``enroot`` stand-in); ``srun --help`` lists pyxis's
  ``--container-*`` options, as on a cluster with pyxis. Each launch is one JSON line in
  ``launches.jsonl``: the srun options, the command, the job's id/nodes and the EFA/NCCL/torch
  environment the ranks would get (:func:`launches`). It prints what it would start and exits 0; where
  the test gave a recorded output for the launched program (``outputs={"all_reduce_perf": path}``, what
  it printed on a real cluster), it prints that too, so the job judges real output; an exit status instead
  of a path (``{"grep": 1}``) is what a probe of the program returns there; ``True`` runs the program
  here for real (a probe of the node itself: ``{"hostname": True}``). Its own note (what it would start)
  goes to stderr, so a script's ``$(srun ...)`` captures only the program's output.
- ``docker build`` (``buildx build`` too): the context and the Dockerfile exist, every ``COPY``/``ADD``
  source exists in the context (without a ``.dockerignore`` exclusion check), every ``FROM`` resolves
  from ``ARG`` defaults and ``--build-arg``; an unused ``--build-arg`` is warned about as docker does.
  ``docker tag``/``push``/``run`` need an image built (or tagged) before, or one the test declares
  present (``images_present=``, as pulled); ``docker run`` is recorded, nothing is started (a bind
  mount's host path must exist: stricter than docker, which makes a missing one as a root-owned folder,
  a step that fails for a user without root); ``docker login`` reads the password from stdin and must
  get one. Images are kept in ``images.json`` (:func:`images`).
- ``enroot import [-o OUT] dockerd://TAG``: TAG must have been built; the import is recorded (no
  squashfs is written). Other enroot commands are recorded only.
- ``nvidia-smi`` (``-L`` or bare) lists the GPUs of the instance type the stand-ins were written for.
- ``session-manager-plugin`` (``SESSION_TOOLS``): what ``aws ssm start-session`` runs once the API (here
  the emulator, which starts a session only to a node that exists) returned a session: it needs that
  session's id, token and stream URL, prints the plugin's start and exit lines and returns (no node runs).

:func:`node_env` gives the rest of a node's shape to the scripts' own detection (``efa-env.sh``):
``INSTANCE_TYPE`` and an ``EFA_SYSFS`` folder with the instance type's EFA device count.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

JOB_TOOLS = ("srun", "docker", "enroot", "nvidia-smi")
# The AWS CLI's Session Manager plugin, which `aws ssm start-session` runs with the session it started.
SESSION_TOOLS = ("session-manager-plugin",)
INSTANCE_TYPES = Path(__file__).resolve().parents[1] / "1.architectures" / "instance-types.yaml"
LAUNCHES = "launches.jsonl"
IMAGES = "images.json"
# The environment a launch records: what the EFA/NCCL scripts and the trainers set for the ranks.
_RECORDED_ENV = ("FI_", "NCCL_", "TORCH_", "PYTORCH_", "CUDA_", "OMP_", "HF_", "NEURON_", "XLA_", "MASTER_")
_RECORDED_ENV += ("JAX_",)
_PYXIS_HELP = """\
      --container-image=[USER@][REGISTRY#]IMAGE[:TAG]|PATH
                              [pyxis] the image to use for the container
                              filesystem. Can be either a docker image given as
                              an enroot URI, or a path to a squashfs file on the
                              remote host filesystem.
      --container-mounts=SRC:DST[:FLAGS][,SRC:DST...]
                              [pyxis] bind mount[s] inside the container.
      --container-workdir=PATH
                              [pyxis] working directory inside the container
      --container-name=NAME   [pyxis] name to use for saving and loading the
                              container on the host.
      --container-env=NAME[,NAME...]
                              [pyxis] names of environment variables to override
                              with the host environment.
"""
# srun options that take a value when written as two words (``-N 2``); the rest are flags.
_SRUN_VALUED = {
    "-N",
    "--nodes",
    "-n",
    "--ntasks",
    "-c",
    "--cpus-per-task",
    "-w",
    "--nodelist",
    "-o",
    "--output",
}
_SRUN_VALUED |= {"-e", "--error", "-p", "--partition", "-J", "--job-name", "-D", "--chdir", "--mpi", "-l"}
_SRUN_VALUED |= {"--ntasks-per-node", "--gpus-per-node", "--gres", "--export", "--cpu-bind", "-t", "--time"}
_SRUN_VALUED |= {"--container-image", "--container-mounts", "--container-workdir", "--container-name"}
_SRUN_VALUED |= {"--container-env", "--kill-on-bad-exit", "-K", "--distribution", "-m", "--label"}
_SRUN_FLAGS = {"-l", "--label", "--exclusive", "--overlap", "-u", "--unbuffered", "-K", "--kill-on-bad-exit"}
_SRUN_FLAGS |= {"--no-container-mount-home", "--container-remap-root", "--container-writable", "-v"}


class Refused(Exception):
    """What the real tool would print on stderr before exiting non-zero."""


def launches(log: Path) -> list[dict[str, Any]]:
    """The ``srun`` launches recorded next to ``log``, in order: ``{"options", "command", "job",
    "nodes", "num_nodes", "env", "cwd"}``."""
    path = log.parent / LAUNCHES
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def images(log: Path) -> dict[str, Any]:
    """What the ``docker``/``enroot`` stand-ins hold: ``{"built": {tag: {...}}, "pushed": [...],
    "imported": {path: uri}, "logins": [...], "runs": [{"image", "options", "command"}]}``."""
    path = log.parent / IMAGES
    return json.loads(path.read_text()) if path.exists() else empty_images()


def empty_images() -> dict[str, Any]:
    return {"built": {}, "pushed": [], "imported": {}, "logins": [], "runs": []}


def node_env(instance_type: str, folder: Path) -> dict[str, str]:
    """The environment under which the scripts see an ``instance_type`` node: its type, and an
    ``EFA_SYSFS`` folder in ``folder`` holding its EFA devices (none for a type without EFA)."""
    facts = _instance(instance_type)
    sysfs = Path(folder) / f"efa-sysfs-{instance_type}"
    sysfs.mkdir(parents=True, exist_ok=True)
    for index in range((facts.get("efa") or {}).get("devices", 0)):
        (sysfs / f"rdmap{index}s0").mkdir(exist_ok=True)
    return {"INSTANCE_TYPE": instance_type, "EFA_SYSFS": str(sysfs.resolve())}


def _instance(instance_type: str) -> dict[str, Any]:
    facts = yaml.safe_load(INSTANCE_TYPES.read_text())
    types = facts["instance_types"] | facts.get("cpu_instance_types", {})
    if instance_type not in types:
        raise ValueError(f"{instance_type} is not in {INSTANCE_TYPES.name}; one of {', '.join(types)}")
    return types[instance_type]


def run(tool: str, config: dict, argv: list[str]) -> int:
    """The stand-in ``tool`` called with ``argv`` (the ``calls.log`` line is already written). The image
    state is read and written under a lock: jobs' srun calls run beside the walkthrough's docker calls."""
    state_file = Path(config["bin"]) / IMAGES
    tools = {"srun": _srun, "docker": _docker, "enroot": _enroot, "nvidia-smi": _nvidia_smi}
    tools["session-manager-plugin"] = _session_manager_plugin
    with open(state_file.with_suffix(".lock"), "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = json.loads(state_file.read_text()) if state_file.exists() else empty_images()
        before = json.dumps(state, indent=1)
        try:
            return tools[tool](config, state, argv)
        finally:
            if json.dumps(state, indent=1) != before:
                state_file.write_text(json.dumps(state, indent=1))


# --------------------------------------------------------------------------------------------- srun


def _real(tool: str, config: dict) -> str | None:
    """The real ``tool`` on PATH, skipping the stand-ins' folder."""
    path = os.pathsep.join(
        p
        for p in os.environ.get("PATH", "").split(os.pathsep)
        if p and Path(p).resolve() != Path(config["bin"])
    )
    return shutil.which(tool, path=path)


def _split_srun(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """srun's options (``--nodes=2``, ``-N 2``, ``--exclusive``) and the command that follows them."""
    options: dict[str, str] = {}
    items = list(argv)
    while items and items[0].startswith("-"):
        item = items.pop(0)
        if item == "--":
            break
        key, equals, value = item.partition("=")
        if equals:
            options[key] = value
        elif key in _SRUN_FLAGS or not items:
            options[key] = ""
        elif key in _SRUN_VALUED:
            options[key] = items.pop(0)
        elif re.fullmatch(r"-[A-Za-z]\d+", key):  # -N2
            options[key[:2]] = key[2:]
        else:
            options[key] = ""
    return options, items


def _srun(config: dict, state: dict, argv: list[str]) -> int:
    if argv[:1] in (["--help"], ["-h"], ["--usage"]):
        real = _real("srun", config)
        if real:
            sys.stdout.write(
                subprocess.run([real, "--help"], check=False, capture_output=True, text=True).stdout
            )
        sys.stdout.write(_PYXIS_HELP)
        return 0
    if argv[:1] in (["--version"], ["-V"]):
        real = _real("srun", config)
        return subprocess.run([real, "--version"], check=False).returncode if real else 0
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        raise Refused("srun: error: the srun stand-in runs only inside a job (sbatch or salloc allocation)")
    options, command = _split_srun(argv)
    if not command:
        raise Refused("srun: fatal: No command given to execute.")
    allocated = int(os.environ.get("SLURM_JOB_NUM_NODES", "1"))
    wanted = options.get("--nodes", options.get("-N", str(allocated)))
    nodes = int(wanted.split("-")[-1]) if wanted.split("-")[-1].isdigit() else allocated
    if nodes > allocated:
        raise Refused(
            f"srun: error: Only allocated {allocated} nodes asked for {nodes}\n"
            "srun: error: Unable to create step for job: Requested node configuration is not available"
        )
    image = options.get("--container-image")
    if image:
        squashfs = image.startswith((".", "/")) or image.endswith(".sqsh")
        if squashfs and not Path(image).exists() and image not in state["imported"]:
            raise Refused(
                f"pyxis: importing docker image: {image}\npyxis: error: squashfs {image} does not "
                "exist (make enroot SQSH=... writes it)"
            )
    else:
        _check_command(command)
    tasks = options.get("--ntasks-per-node", "1")
    recorded = config.get("outputs", {}).get(Path(command[0]).name)
    record = {
        "options": options,
        "command": command,
        "job": job,
        "nodes": os.environ.get("SLURM_JOB_NODELIST", ""),
        "num_nodes": nodes,
        "env": {k: v for k, v in sorted(os.environ.items()) if k.startswith(_RECORDED_ENV)},
        "cwd": os.getcwd(),
    }
    with open(Path(config["bin"]) / LAUNCHES, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    if recorded is True:  # a probe of the node itself (hostname): the real program answers, as there
        return subprocess.run(command, check=False).returncode
    if isinstance(recorded, int):  # what the program exits with there, printing nothing (a probe)
        return recorded
    where = f" in {image}" if image else ""
    # On stderr: the stand-in's note is not the program's output (a script may capture that with $(...)).
    print(
        f"srun stand-in: job {job}, {nodes} nodes x {tasks} tasks{where}: {shlex.join(command)}",
        file=sys.stderr,
        flush=True,
    )
    if recorded:  # what the program printed on the real cluster, as the job's log holds it
        sys.stdout.write(Path(recorded).read_text(encoding="utf-8"))
    return 0


def _check_command(command: list[str]) -> None:
    """The launched program and the script files it is given exist on this (shared) filesystem."""
    program = command[0]
    found = Path(program).is_file() if "/" in program else shutil.which(program) is not None
    if not found or ("/" in program and not os.access(program, os.X_OK)):
        raise Refused(f"slurmstepd: error: execve(): {program}: No such file or directory")
    for argument in command[1:]:
        value = argument.partition("=")[2] if argument.startswith("--") else argument
        if value.endswith((".py", ".sh")) and not value.startswith("-") and not Path(value).is_file():
            raise Refused(f"{program}: can't open file {value!r}: [Errno 2] No such file or directory")


# ------------------------------------------------------------------------------------------- docker

_DOCKER_VALUED = {"-f", "--file", "-t", "--tag", "--build-arg", "--target", "--platform", "--progress"}
_DOCKER_VALUED |= {"--secret", "--label", "--cache-from", "--network", "-u", "--username", "-p", "--password"}
_DOCKER_VALUED |= {"--output", "-o", "--iidfile", "--shm-size", "--ulimit", "--add-host"}


def parse_options(argv: list[str], valued: Iterable[str]) -> tuple[dict[str, list[str]], list[str]]:
    """A CLI's flags (``-f X``, ``--for=Y``, ``--server-side``; a flag in ``valued`` takes the next word)
    and its positional arguments (``-`` is one: stdin)."""
    valued = set(valued)
    flags: dict[str, list[str]] = {}
    positional: list[str] = []
    items = iter(argv)
    for item in items:
        if item.startswith("-") and item != "-":
            key, equals, value = item.partition("=")
            if not equals and key in valued:
                value = next(items, "")
            flags.setdefault(key, []).append(value)
        else:
            positional.append(item)
    return flags, positional


def _docker(config: dict, state: dict, argv: list[str]) -> int:
    if argv[:2] == ["buildx", "build"]:
        argv = argv[1:]
    if not argv:
        raise Refused("docker: the docker stand-in needs a command")
    command, rest = argv[0], argv[1:]
    if command == "build":
        return _docker_build(state, rest)
    if command == "login":
        flags, positional = parse_options(rest, _DOCKER_VALUED)
        if "--password-stdin" in flags and not sys.stdin.read().strip():
            raise Refused("Error: Cannot perform an interactive login from a non TTY device")
        state["logins"].append(positional[0] if positional else "docker.io")
        print("Login Succeeded")
        return 0
    if command in ("tag", "push", "run", "image", "images"):
        return _docker_image_command(state, command, rest)
    raise Refused(f"docker: the docker stand-in does not emulate 'docker {command}'")


def _docker_image_command(state: dict, command: str, rest: list[str]) -> int:
    """``docker tag|push|run|images``: on images the stand-in built or tagged before (or was told are
    present, as pulled)."""
    if command in ("images", "image"):
        print("REPOSITORY:TAG", *state["built"], sep="\n")
        return 0
    if command == "run":
        return _docker_run(state, rest)
    _, positional = parse_options(rest, _DOCKER_VALUED)
    if not positional:
        raise Refused(f'"docker {command}" requires at least 1 argument.')
    name = tagged(positional[0])
    if name not in state["built"]:
        if command == "push":
            raise Refused(f"An image does not exist locally with the tag: {name.rsplit(':', 1)[0]}")
        raise Refused(f"Error response from daemon: No such image: {name}")
    if command == "tag":
        if len(positional) != 2:
            raise Refused('"docker tag" requires exactly 2 arguments.')
        state["built"][tagged(positional[1])] = state["built"][name]
    else:
        state["pushed"].append(name)
        print(f"The push refers to repository [{name.rsplit(':', 1)[0]}]")
    return 0


# docker run's options that take a value as the next word (the image is the first word that is not one).
_RUN_VALUED = {"-e", "--env", "-v", "--volume", "--gpus", "--device", "-w", "--workdir", "--ipc", "--name"}
_RUN_VALUED |= {"--env-file", "--cap-add", "-u", "--user", "--mount", "--entrypoint", "--runtime", "--pid"}
_RUN_VALUED |= {"--security-opt", "--hostname", "--platform", "--shm-size", "--ulimit", "--network", "-p"}
_RUN_VALUED |= {"--publish", "--label", "--memory", "--cpus", "--add-host"}


def _docker_run(state: dict, rest: list[str]) -> int:
    """``docker run [OPTIONS] IMAGE [COMMAND...]``: the image must be here (built or present); the run is
    recorded (``images(log)["runs"]``), nothing is started. A bind mount's host path must exist."""
    options: list[str] = []
    items = list(rest)
    while items and items[0].startswith("-"):
        item = items.pop(0)
        options.append(item)
        if "=" not in item and item in _RUN_VALUED and items:
            options.append(items.pop(0))
    if not items:
        raise Refused('"docker run" requires at least 1 argument.')
    image, command = tagged(items[0]), items[1:]
    if image not in state["built"]:
        raise Refused(f"Unable to find image '{image}' locally (the docker stand-in pulls nothing)")
    for flag, value in zip(options, [*options[1:], ""], strict=True):
        if flag in ("-v", "--volume") and value.startswith("/") and not Path(value.split(":")[0]).exists():
            raise Refused(
                f"docker: Error response from daemon: invalid mount config: bind source path "
                f"does not exist: {value.split(':')[0]}"
            )
    state.setdefault("runs", []).append({"image": image, "options": options, "command": command})
    print(f"docker stand-in: would run {image}: {shlex.join(command)}")
    return 0


def _docker_build(state: dict, rest: list[str]) -> int:
    flags, positional = parse_options(rest, _DOCKER_VALUED)
    if len(positional) != 1:
        raise Refused('ERROR: "docker buildx build" requires exactly 1 argument.')
    context = Path(positional[0])
    if not context.is_dir():
        raise Refused(f'ERROR: unable to prepare context: path "{context}" not found')
    dockerfile = Path((flags.get("-f") or flags.get("--file") or [str(context / "Dockerfile")])[-1])
    if not dockerfile.is_file():
        raise Refused(f"ERROR: failed to solve: failed to read dockerfile: open {dockerfile}: no such file")
    build_args = dict(item.partition("=")[::2] for item in flags.get("--build-arg", []))
    text = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8"))
    declared: dict[str, str] = {}
    bases = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        instruction = words[0].upper()
        if instruction == "ARG":
            for item in words[1:]:
                name, _, default = item.partition("=")
                declared[name] = build_args.get(name, default.strip('"'))
        elif instruction == "FROM":
            image = _expand(words[1] if not words[1].startswith("--") else words[2], declared)
            if not image or "$" in image:
                raise Refused(f"ERROR: failed to solve: base name ({words[1]}) should not be blank")
            bases.append(image)
        elif instruction in ("COPY", "ADD"):
            _check_sources(words[1:], context)
    unused = sorted(set(build_args) - set(declared))
    if unused:
        print(f"[Warning] One or more build-args {unused} were not consumed", file=sys.stderr)
    tags = flags.get("-t", []) + flags.get("--tag", [])
    entry = {"dockerfile": str(dockerfile), "context": str(context), "from": bases, "build_args": build_args}
    for tag in tags or ["<none>"]:
        state["built"][tagged(tag)] = entry
    print(f"docker stand-in: checked {dockerfile} (FROM {', '.join(bases)}); tagged {' '.join(tags) or '-'}")
    return 0


def _expand(value: str, declared: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: declared.get(m[1], "$" + m[1]), value)


def _check_sources(words: list[str], context: Path) -> None:
    """COPY/ADD sources (not ``--from`` a stage, not a URL, not a variable) exist in the context."""
    if any(word.startswith("--from") for word in words) or (words[:1] and words[0].startswith("[")):
        return
    sources = [word for word in words if not word.startswith("--")][:-1]
    for source in sources:
        if "$" in source or "://" in source:
            continue
        pattern = source.lstrip("/") or "."
        matches = list(context.glob(pattern)) if any(c in pattern for c in "*?[") else []
        if not (matches or (context / pattern).exists()):
            raise Refused(f'ERROR: failed to solve: failed to compute cache key: "/{pattern}": not found')


# ------------------------------------------------------------------------------------------- enroot


def _enroot(config: dict, state: dict, argv: list[str]) -> int:
    if argv[:1] != ["import"]:
        return 0
    flags, positional = parse_options(argv[1:], {"-o", "--output", "-a", "--arch"})
    if not positional:
        raise Refused("Usage: enroot import [options] [--] URI")
    uri = positional[0]
    if uri.startswith("dockerd://") and tagged(uri.removeprefix("dockerd://")) not in state["built"]:
        raise Refused(f"[ERROR] No such image: {uri.removeprefix('dockerd://')} (build it with docker first)")
    output = (
        flags.get("-o") or flags.get("--output") or [re.sub(r"\W", "+", uri.split("://")[-1]) + ".sqsh"]
    )[-1]
    state["imported"][output] = uri
    print(f"enroot stand-in: {uri} -> {output}")
    return 0


def tagged(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


# --------------------------------------------------------------------------------------- nvidia-smi


def _nvidia_smi(config: dict, state: dict, argv: list[str]) -> int:
    instance_type = config.get("instance_type")
    if not instance_type:
        raise Refused("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")
    accelerator = _instance(instance_type).get("accelerator") or {}
    if accelerator.get("kind") != "gpu":
        raise Refused("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")
    for index in range(accelerator["count"]):
        print(f"GPU {index}: NVIDIA {accelerator['model']} (UUID: GPU-stand-in-{index})")
    return 0


# --------------------------------------------------------------------------- session-manager-plugin

PLUGIN_VERSION = "1.2.764.0"  # the AWS CLI's recommended minimum: it warns below it


def _session_manager_plugin(config: dict, state: dict, argv: list[str]) -> int:
    """``session-manager-plugin --version``, or ``RESPONSE REGION StartSession PROFILE PARAMETERS
    ENDPOINT`` as the AWS CLI calls it."""
    if argv[:1] == ["--version"]:
        print(PLUGIN_VERSION)
        return 0
    if len(argv) < 6 or argv[2] != "StartSession":
        raise Refused("session-manager-plugin: the stand-in takes what `aws ssm start-session` passes")
    response = os.environ.get(argv[0], argv[0])  # the CLI may pass the name of a variable holding it
    try:
        session = json.loads(response)
        target = json.loads(argv[4])["Target"]
    except (ValueError, KeyError, TypeError):
        raise Refused(f"session-manager-plugin: cannot read the session {argv[0][:80]!r}") from None
    if not all(session.get(key) for key in ("SessionId", "TokenValue", "StreamUrl")):
        raise Refused("session-manager-plugin: the session lacks SessionId, TokenValue or StreamUrl")
    print(
        f"\nStarting session with SessionId: {session['SessionId']} (stand-in: to {target}, no node here)\n"
    )
    print(f"\nExiting session with sessionId: {session['SessionId']}.\n")
    return 0
