"""The bad-input catalogue and its runner: every command a user runs, against the same bad inputs.

Each (command, bad input) pair must end with exit code 2 (or the code the tool documents for the case),
exactly one line on stderr that says ``error:`` (argparse's usage lines may come before it), no Python
traceback, and nothing written where the command was asked to write. ``run`` tries every pair and
``figure`` gives the line ``bad inputs: N tried, N clean`` that each catalogue test prints.

Slots are the places a bad input goes: ``{file}`` (a file the command reads), ``{dir}`` (a folder it
reads), ``{value}`` (a number), ``{text}`` (a name that lands in a generated file), ``{out}`` (where it
writes), ``{jsonl}`` (a data file of JSON lines), ``{file_dir}`` (a folder holding one bad file),
``{doc}``/``{resources}`` (a document that parses but carries a bad value), ``{tree}`` (a copy of some of
the repository in which one file is bad). A command lists the catalogue entries that make sense for its
slot. ``{fresh_out}`` and ``{fresh_dir}`` are a path that does not exist and an empty folder: the command
must leave them as they are. The repository's catalogue is ``tests/test_bad_input.py``; a test case whose
commands need its framework has its own, run in its nox session.

This module is plain Python (no pytest), so any venv that holds the repository can run it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
HYPERPOD = "1.architectures/5.sagemaker-hyperpod"
NCCL_LOG = "4.validation_observability/6.nccl-tests/tests/fixtures/p5-2node-all_reduce-good.log"
TIMEOUT_S = 120

# --- The catalogue -----------------------------------------------------------------------------------

FILE_INPUTS: dict[str, Callable[[Path], None]] = {
    "missing file": lambda p: None,
    "a folder": lambda p: p.mkdir(),
    "empty file": lambda p: p.write_bytes(b""),
    "binary bytes": lambda p: p.write_bytes(bytes(range(256)) * 8),
    "non-UTF-8 text": lambda p: p.write_bytes(b"name: caf\xe9\nvalue: 1\n"),
    "malformed JSON": lambda p: p.write_text('{"a": [1, '),
    "malformed YAML": lambda p: p.write_text("a: [1\n  b: : c\n"),
    "JSON list": lambda p: p.write_text("[1]"),
    "JSON number": lambda p: p.write_text("5"),
    "Markdown": lambda p: p.write_text("# Notes\n\nSome *text*, not data.\n"),
}
ALL_FILES = tuple(FILE_INPUTS)


def _non_empty_folder(path: Path) -> None:
    path.mkdir()
    (path / "left.txt").write_text("x\n")


# Folders a command reads (sysfs trees, result folders, image roots, clones).
DIR_INPUTS: dict[str, Callable[[Path], None]] = {
    "missing folder": lambda p: None,
    "a file": lambda p: p.write_text("not a folder\n"),
    "empty folder": lambda p: p.mkdir(),
    "non-empty folder": _non_empty_folder,
}

VALUES = {"nan": "nan", "inf": "inf", "-inf": "-inf", "negative": "-1", "not a number": "abc"}
NUMBERS_AND_ZERO = {**VALUES, "zero": "0"}
TEXTS = {
    "newline": "dev\nAllowedIps: 0.0.0.0/0",
    "64 characters with hyphens": "a" + "-" * 62 + "b",
    "hash": "ops #1",
    "colon": "a: b",
    "quotes": 'it\'s "q"',
    "over-long": "x" * 300,
    "empty": "",
}
OUT_INPUTS: dict[str, Callable[[Path], None]] = {
    "output under a file": lambda p: (p.parent / "plain-file").write_text("x") or None,
}


def _params(**change) -> str:
    """The HyperPod test fixture's provisioning parameters with some values changed."""
    doc = json.loads((ROOT / HYPERPOD / "tests/fixtures/provisioning_parameters.json").read_text())
    return json.dumps({**doc, **change})


def _resources(**change) -> str:
    doc = json.loads((ROOT / HYPERPOD / "tests/fixtures/resource_config.json").read_text())
    doc["InstanceGroups"][1].update(change)
    return json.dumps(doc)


def _cluster_config(role: object) -> str:
    group = {"InstanceGroupName": "workers", "InstanceType": "ml.p5.48xlarge", "InstanceCount": 1}
    return json.dumps(
        {
            "ClusterName": "ml-cluster",
            "InstanceGroups": [{**group, "ExecutionRole": role}],
            "VpcConfig": {"Subnets": ["subnet-0123"], "SecurityGroupIds": ["sg-0123"]},
        }
    )


# Documents that parse but carry a value that must never reach a config file (slot {doc}).
DOC_INPUTS: dict[str, Callable[[], str]] = {
    "partition name with a newline": lambda: _params(
        worker_groups=[{"instance_group_name": "worker-group-1", "partition_name": "dev\n"}]
    ),
    "mount name with a newline": lambda: _params(fsx_mountname="abc\n/ /etc xfs defaults 0 0"),
    "DNS name with a space": lambda: _params(fsx_dns_name="fs-1.example.com other"),
    "login group as a list": lambda: _params(login_group=["x"]),
    "group name of 80 characters": lambda: _params(controller_group="a" + "-" * 78 + "b"),
    "instances as numbers": lambda: _resources(Instances=[1]),
    "execution role as a bare name": lambda: _cluster_config("MyRole"),
    "execution role as a number": lambda: _cluster_config(5),
}
JSONL_INPUTS = {
    "no text key": '{"body": "hello"}\n',
    "text not a string": '{"text": 5}\n',
    "not JSON": "hello world\n",
    "empty file": "",
    "binary bytes": bytes(range(256)).decode("latin-1"),
}


@dataclass(frozen=True)
class Command:
    name: str
    argv: tuple[str, ...]  # with one slot (see the module docstring) and optionally {fresh_out}/{fresh_dir}
    inputs: tuple[str, ...]  # catalogue entries for the slot
    cwd: str = "."  # relative to the repository root
    env: dict[str, str] = field(default_factory=dict)
    codes: frozenset[int] = frozenset({2})
    suffix: str = ".json"  # of the bad file, where the command goes by it
    tree: tuple[str, ...] = ()  # {tree}: what is copied into it: repository paths, or SOURCE=PATH_IN_TREE
    bad_path: str = ""  # {tree}: the file of the tree that takes the bad input
    mentions: tuple[str, ...] = ()  # more words that name the input in the error line (a positional's)


# --- Running one pair ---------------------------------------------------------------------------------

SLOTS = (
    "{file}",
    "{dir}",
    "{value}",
    "{text}",
    "{out}",
    "{jsonl}",
    "{file_dir}",
    "{doc}",
    "{resources}",
    "{tree}",
)
OFFLINE = {
    # Any AWS call goes to a closed port and fails at once; nothing reaches a hub, a web server or the
    # instance metadata.
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_MAX_ATTEMPTS": "1",
    "HF_HUB_OFFLINE": "1",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
    "INSTANCE_TYPE": "p5.48xlarge",
    "OMP_NUM_THREADS": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}


def slot_of(command: Command) -> str:
    joined = " ".join([*command.argv, *command.env.values()])
    found = [slot for slot in SLOTS if slot in joined]
    if len(found) != 1:
        raise ValueError(f"{command.name}: one slot per command, found {found}")
    return found[0]


def entries_of(slot: str) -> Iterable[str]:
    """The catalogue entries a slot can take."""
    return {
        "{file}": FILE_INPUTS,
        "{tree}": FILE_INPUTS,
        "{file_dir}": FILE_INPUTS,
        "{dir}": DIR_INPUTS,
        "{value}": NUMBERS_AND_ZERO,
        "{text}": TEXTS,
        "{out}": {"a folder": None, **OUT_INPUTS},
        "{jsonl}": JSONL_INPUTS,
        "{doc}": DOC_INPUTS,
        "{resources}": DOC_INPUTS,
    }[slot]


def named_by(command: Command, slot: str) -> list[str]:
    """What the error line must mention: the option (or variable) that took the bad input, or the file."""
    if any(slot in value for value in command.env.values()):
        return [name for name, value in command.env.items() if slot in value]
    index = next((i for i, arg in enumerate(command.argv) if slot in arg), -1)
    before = command.argv[index - 1] if index > 0 else ""
    names = ["bad-input"]  # every bad file or folder is called bad-input*
    if slot == "{tree}":
        names.append(Path(command.bad_path).name)
    names += command.mentions
    if before.startswith("--"):
        names += [before, before.lstrip("-"), before.lstrip("-").replace("-", "_")]
    return names


def listing(path: Path) -> set[str]:
    """What is at ``path``: nothing, the file itself, or every entry under the folder."""
    if not path.exists():
        return set()
    if not path.is_dir():
        return {"."}
    return {str(entry.relative_to(path)) for entry in path.rglob("*")}


def make_tree(command: Command, entry: str, target: Path) -> None:
    """Copy the command's paths into ``target``, then put the bad input at ``bad_path``."""
    target.mkdir()
    for item in command.tree:
        source_name, _, relative = item.partition("=")
        # ROOT / an absolute path is that path: a SOURCE may be a file the test made outside the repository.
        source, copy = ROOT / source_name, target / (relative or source_name)
        copy.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, copy)
    bad = target / command.bad_path
    if bad.is_dir():
        shutil.rmtree(bad)
    elif bad.exists():
        bad.unlink()
    bad.parent.mkdir(parents=True, exist_ok=True)
    FILE_INPUTS[entry](bad)


def prepare(command: Command, entry: str, tmp: Path) -> tuple[list[str], dict[str, str], list[Path]]:
    """The argv and env of one pair, and the paths whose content the command must leave unchanged."""
    slot = slot_of(command)
    fresh_out = tmp / "fresh-out"
    fresh_dir = tmp / "fresh-dir"
    fresh_dir.mkdir()
    values = {"{fresh_out}": str(fresh_out), "{fresh_dir}": str(fresh_dir)}
    target = None
    if slot == "{file}":
        target = tmp / f"bad-input{command.suffix}"
        FILE_INPUTS[entry](target)
    elif slot == "{dir}":
        target = tmp / "bad-input-dir"
        DIR_INPUTS[entry](target)
    elif slot == "{file_dir}":
        target = tmp / "bad-input-results"
        target.mkdir()
        FILE_INPUTS[entry](target / "node1.json")
    elif slot in ("{doc}", "{resources}"):
        target = tmp / "bad-input.json"
        target.write_text(DOC_INPUTS[entry]())
    elif slot == "{jsonl}":
        target = tmp / f"bad-input{command.suffix if command.suffix != '.json' else '.jsonl'}"
        target.write_text(JSONL_INPUTS[entry], encoding="latin-1")
    elif slot == "{tree}":
        target = tmp / "bad-input-tree"
        make_tree(command, entry, target)
    elif slot == "{out}":
        target = tmp / "bad-input-out"
        if entry == "a folder":
            target.mkdir()
        else:
            OUT_INPUTS[entry](target)
            target = tmp / "plain-file" / "bad-input-out"
    if slot == "{value}":
        values[slot] = NUMBERS_AND_ZERO[entry]
    elif slot == "{text}":
        values[slot] = TEXTS[entry]
    else:
        values[slot] = str(target)
    values["{sample_log}"] = str(ROOT / NCCL_LOG)
    values["{sample_csv}"] = str(sample_csv(tmp))

    def fill(arg: str) -> str:
        for key, value in values.items():
            arg = arg.replace(key, value)
        return arg

    argv = [fill(arg) for arg in command.argv]
    env = {**OFFLINE, **{name: fill(value) for name, value in command.env.items()}}
    watched = [
        path
        for path, key in ((fresh_out, "{fresh_out}"), (fresh_dir, "{fresh_dir}"), (target, "{tree}"))
        if any(key in arg for arg in command.argv)
    ]
    return argv, env, watched


def sample_csv(tmp: Path) -> Path:
    """A valid ``nsys stats --report cuda_gpu_kern_sum --format csv`` export."""
    path = tmp / "sample_cuda_gpu_kern_sum.csv"
    if not path.exists():
        path.write_text(
            "Time (%),Total Time (ns),Instances,Avg (ns),Med (ns),Min (ns),Max (ns),StdDev (ns),Name\n"
            "60.0,600000,10,60000.0,60000.0,60000,60000,0.0,"
            "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevComm *, unsigned long, ncclWork *)\n"
            "40.0,400000,10,40000.0,40000.0,40000,40000,0.0,ampere_bf16_s16816gemm_bf16_128x128_ldg8_f2f_tn\n"
        )
    return path


def verdict(command: Command, entry: str, tmp: Path) -> str | None:  # noqa: PLR0911 - one return per flaw
    """None when the pair is clean, else why not (one line)."""
    argv, env, watched = prepare(command, entry, tmp)
    before = [listing(path) for path in watched]
    try:
        done = subprocess.run(
            argv,
            cwd=ROOT / command.cwd,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            errors="replace",
            timeout=TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"still running after {TIMEOUT_S} s (accepted and ran?)"
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    if "Traceback (most recent call last)" in done.stderr:
        last = lines[-1] if lines else ""
        return f"traceback ({last[:150]})"
    if done.returncode not in command.codes:
        return (
            f"exit {done.returncode}, expected {sorted(command.codes)} ({(lines or ['no stderr'])[-1][:150]})"
        )
    if len(errors) != 1 or lines[-1] != errors[0]:
        return f"{len(errors)} 'error:' lines, the last stderr line is {lines[-1][:150] if lines else None!r}"
    names = named_by(command, slot_of(command))
    if not any(name in errors[0] for name in names):
        return f"the error line names none of {names}: {errors[0][:150]}"
    for path, was in zip(watched, before, strict=True):
        if written := sorted(listing(path) - was):
            return f"wrote {path.name}/{written[0]} although it failed"
    return None


# --- Running a catalogue ------------------------------------------------------------------------------


def run(commands: Iterable[Command], tmp: Path, workers: int = 2) -> tuple[int, list[str]]:
    """Try every (command, entry) pair under ``tmp``: (pairs tried, one line per pair that is not clean)."""
    pairs = [(command, entry) for command in commands for entry in command.inputs]
    for command, entry in pairs:
        if entry not in entries_of(slot_of(command)):
            raise ValueError(f"{command.name}: {entry!r} is not a catalogue entry of {slot_of(command)}")
    for index in range(len(pairs)):
        (tmp / str(index)).mkdir()

    def one(item: tuple[int, tuple[Command, str]]) -> str | None:
        index, (command, entry) = item
        why = verdict(command, entry, tmp / str(index))
        return None if why is None else f"{command.name} <- {entry}: {why}"

    with ThreadPoolExecutor(max_workers=workers) as pool:
        problems = [line for line in pool.map(one, enumerate(pairs)) if line]
    return len(pairs), problems


def figure(tried: int, problems: list[str]) -> str:
    """``bad inputs: N tried, N clean``, then one line per pair that is not clean."""
    return "\n".join([f"bad inputs: {tried} tried, {tried - len(problems)} clean", *problems])


def check(commands: Iterable[Command], tmp: Path, workers: int = 2) -> int:
    """Run the catalogue and print its figure; AssertionError naming every pair that is not clean."""
    tried, problems = run(commands, tmp, workers)
    print(figure(tried, problems).splitlines()[0])
    if problems:
        raise AssertionError(figure(tried, problems))
    return tried
