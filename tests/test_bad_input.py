"""The repository's bad-input catalogue: every command a user runs, against the same bad inputs.

Each (command, bad input) pair must end with exit code 2 (or the code the tool documents for the case),
exactly one line on stderr that says ``error:`` (argparse's usage lines may come before it), no Python
traceback, and no output written where the command was asked to write one. The test prints the figure
``bad inputs: N tried, N clean`` and fails below 100%, naming each pair that is not clean.

Slots are the places a bad input goes: ``{file}`` (a file the command reads), ``{dir}`` (a folder it
reads), ``{value}`` (a number), ``{text}`` (a name that lands in a generated file), ``{out}`` (where it
writes). A command lists the catalogue entries that make sense for its slot.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
VALIDATION = "4.validation_observability"
HYPERPOD = "1.architectures/5.sagemaker-hyperpod"
PCLUSTER = "1.architectures/2.aws-parallelcluster"
FSDP = "3.test_cases/pytorch/FSDP"
CPU_DDP = "3.test_cases/pytorch/cpu-ddp"

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
# Folders a command reads (sysfs trees, result folders, image roots).
DIR_INPUTS: dict[str, Callable[[Path], None]] = {
    "missing folder": lambda p: None,
    "a file": lambda p: p.write_text("not a folder\n"),
}
VALUES = {"nan": "nan", "inf": "inf", "-inf": "-inf", "negative": "-1", "not a number": "abc"}
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
NUMBERS_AND_ZERO = {**VALUES, "zero": "0"}


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
}


@dataclass(frozen=True)
class Command:
    name: str
    argv: tuple[str, ...]  # with one of {file} {dir} {value} {text} {out} and optionally {fresh_out}
    inputs: tuple[str, ...]  # catalogue entries for the slot
    cwd: str = "."
    env: dict[str, str] = field(default_factory=dict)
    codes: frozenset[int] = frozenset({2})
    suffix: str = ".json"  # of the bad file, where the command goes by it


ALL_FILES = tuple(FILE_INPUTS)
TRAIN_FAST = ("--max-steps", "1", "--run-dir", "{fresh_out}")

COMMANDS: list[Command] = [
    # 4.validation_observability
    Command(
        "validate_env --instance-types",
        (PY, f"{VALIDATION}/1.pytorch-env-validation/validate_env.py", "--instance-types", "{file}"),
        ALL_FILES,
        env={"INSTANCE_TYPE": "p5.48xlarge"},
    ),
    Command(
        "validate_env --summarize",
        (PY, f"{VALIDATION}/1.pytorch-env-validation/validate_env.py", "--summarize", "{dir}"),
        tuple(DIR_INPUTS),
    ),
    Command(
        "validate_env --summarize (a bad result inside)",
        (PY, f"{VALIDATION}/1.pytorch-env-validation/validate_env.py", "--summarize", "{file_dir}"),
        ("binary bytes", "non-UTF-8 text", "malformed JSON", "JSON list", "JSON number", "empty file"),
    ),
    Command(
        "healthcheck aggregate",
        (PY, f"{VALIDATION}/2.gpu-cluster-healthcheck/healthcheck.py", "aggregate", "{file}"),
        ALL_FILES,
    ),
    Command(
        "healthcheck run --json-out",
        (
            PY,
            f"{VALIDATION}/2.gpu-cluster-healthcheck/healthcheck.py",
            "run",
            "--checks",
            "GPU001",
            "--instance-type",
            "p5.48xlarge",
            "--json-out",
            "{out}",
        ),
        ("a folder", *OUT_INPUTS),
        codes=frozenset({2}),
    ),
    Command(
        "healthcheck run --min-busbw",
        (
            PY,
            f"{VALIDATION}/2.gpu-cluster-healthcheck/healthcheck.py",
            "run",
            "--checks",
            "GPU001",
            "--min-busbw",
            "{value}",
        ),
        tuple(VALUES),
    ),
    Command(
        "efa_exporter --once --sysfs-root",
        (PY, f"{VALIDATION}/3.efa-node-exporter/efa_exporter.py", "--once", "--sysfs-root", "{dir}"),
        tuple(DIR_INPUTS),
    ),
    Command(
        "efa_exporter --port",
        (PY, f"{VALIDATION}/3.efa-node-exporter/efa_exporter.py", "--port", "{value}"),
        tuple(VALUES),
    ),
    Command(
        "training_textfile",
        (
            PY,
            f"{VALIDATION}/4.prometheus-grafana/training_textfile.py",
            "{file}",
            "--textfile-dir",
            "{fresh_dir}",
        ),
        ALL_FILES,
    ),
    Command(
        "training_textfile --interval",
        (
            PY,
            f"{VALIDATION}/4.prometheus-grafana/training_textfile.py",
            "--follow",
            "--interval",
            "{value}",
            "--textfile-dir",
            "{fresh_dir}",
            "{sample_log}",
        ),
        tuple(NUMBERS_AND_ZERO),
    ),
    Command(
        "slurm_targets --node-port",
        (
            PY,
            f"{VALIDATION}/4.prometheus-grafana/slurm_targets.py",
            "--node-port",
            "{value}",
            "--out",
            "{fresh_dir}",
        ),
        tuple(NUMBERS_AND_ZERO),
    ),
    Command(
        "amp_remote_write --remote-write-url",
        (
            PY,
            f"{VALIDATION}/4.prometheus-grafana/managed/amp_remote_write.py",
            "--remote-write-url",
            "{text}",
            "--out",
            "{fresh_out}",
        ),
        ("newline", "hash", "quotes", "empty"),
    ),
    Command(
        "nccl_kernel_stats",
        (PY, f"{VALIDATION}/5.nsight/nccl_kernel_stats.py", "{file}"),
        ALL_FILES,
    ),
    Command(
        "nccl_kernel_stats (a .csv export)",
        (PY, f"{VALIDATION}/5.nsight/nccl_kernel_stats.py", "{file}"),
        ("a folder", "empty file", "binary bytes", "non-UTF-8 text", "Markdown", "JSON list"),
        suffix="_cuda_gpu_kern_sum.csv",
    ),
    Command(
        "nccl_kernel_stats --plot",
        (PY, f"{VALIDATION}/5.nsight/nccl_kernel_stats.py", "--plot", "{out}", "{sample_csv}"),
        ("a folder", *OUT_INPUTS),
    ),
    Command(
        "nccl_kernel_stats --max-nccl-share",
        (PY, f"{VALIDATION}/5.nsight/nccl_kernel_stats.py", "--max-nccl-share", "{value}", "{sample_csv}"),
        tuple(VALUES),
    ),
    Command(
        "nccl_report",
        (PY, f"{VALIDATION}/6.nccl-tests/nccl_report.py", "{file}"),
        ALL_FILES,
    ),
    Command(
        "nccl_report --min-busbw",
        (PY, f"{VALIDATION}/6.nccl-tests/nccl_report.py", "--min-busbw", "{value}", "{sample_log}"),
        tuple(VALUES),
    ),
    Command(
        "nccl_report MIN_BUSBW=",
        (PY, f"{VALIDATION}/6.nccl-tests/nccl_report.py", "{sample_log}"),
        tuple(VALUES),
        env={"MIN_BUSBW": "{value}"},
    ),
    Command(
        "nccl_report --instance-types",
        (
            PY,
            f"{VALIDATION}/6.nccl-tests/nccl_report.py",
            "--instance-type",
            "p5.48xlarge",
            "--instance-types",
            "{file}",
            "{sample_log}",
        ),
        ALL_FILES,
    ),
    Command(
        "nccl_report --csv",
        (PY, f"{VALIDATION}/6.nccl-tests/nccl_report.py", "--csv", "{out}", "{sample_log}"),
        ("a folder", *OUT_INPUTS),
    ),
    Command(
        "nccl_report --plot",
        (PY, f"{VALIDATION}/6.nccl-tests/nccl_report.py", "--plot", "{out}", "{sample_log}"),
        ("a folder", *OUT_INPUTS),
    ),
    Command(
        "efa-versions --root",
        (PY, f"{VALIDATION}/efa-versions.py", "--root", "{dir}"),
        tuple(DIR_INPUTS),
    ),
    # 3.test_cases trainers and data tools
    Command(
        "FSDP train --lr",
        (PY, f"{FSDP}/src/train.py", "--lr", "{value}", *TRAIN_FAST),
        tuple(VALUES),
    ),
    Command(
        "FSDP train --grad-clip",
        (PY, f"{FSDP}/src/train.py", "--grad-clip", "{value}", *TRAIN_FAST),
        tuple(VALUES),
    ),
    Command(
        "FSDP train --weight-decay",
        (PY, f"{FSDP}/src/train.py", "--weight-decay", "{value}", *TRAIN_FAST),
        tuple(VALUES),
    ),
    Command(
        "FSDP train --step-delay-s",
        (PY, f"{FSDP}/src/train.py", "--step-delay-s", "{value}", *TRAIN_FAST),
        tuple(VALUES),
    ),
    Command(
        "FSDP train --data-path",
        (PY, f"{FSDP}/src/train.py", "--data-path", "{file}", *TRAIN_FAST),
        ("missing file", "a folder", "empty file", "binary bytes", "non-UTF-8 text", "Markdown", "JSON list"),
    ),
    Command(
        "FSDP train --data-path (jsonl)",
        (PY, f"{FSDP}/src/train.py", "--data-path", "{jsonl}", *TRAIN_FAST),
        ("no text key", "text not a string", "not JSON"),
    ),
    Command(
        "FSDP stage --input",
        (PY, f"{FSDP}/src/stage.py", "--input", "{file}", "--out", "{fresh_out}"),
        ("missing file", "a folder", "empty file", "binary bytes", "non-UTF-8 text"),
    ),
    Command(
        "cpu-ddp train --lr",
        (PY, f"{CPU_DDP}/src/train.py", "--lr", "{value}", *TRAIN_FAST),
        tuple(VALUES),
    ),
    Command(
        "cpu-ddp train --momentum",
        (PY, f"{CPU_DDP}/src/train.py", "--momentum", "{value}", *TRAIN_FAST),
        tuple(VALUES),
    ),
    Command(
        "cpu-ddp train --weight-decay",
        (PY, f"{CPU_DDP}/src/train.py", "--weight-decay", "{value}", *TRAIN_FAST),
        tuple(VALUES),
    ),
    Command(
        "cpu-ddp train --step-delay-s",
        (PY, f"{CPU_DDP}/src/train.py", "--step-delay-s", "{value}", *TRAIN_FAST),
        tuple(VALUES),
    ),
    # 1.architectures generators and the lifecycle program
    Command(
        "HyperPod lifecycle --provisioning-parameters",
        (
            PY,
            f"{HYPERPOD}/LifecycleScripts/base-config/lifecycle.py",
            "--dry-run",
            "--resource-config",
            f"{HYPERPOD}/tests/fixtures/resource_config.json",
            "--provisioning-parameters",
            "{file}",
        ),
        ALL_FILES,
    ),
    Command(
        "HyperPod lifecycle --provisioning-parameters (values)",
        (
            PY,
            f"{HYPERPOD}/LifecycleScripts/base-config/lifecycle.py",
            "--dry-run",
            "--resource-config",
            f"{HYPERPOD}/tests/fixtures/resource_config.json",
            "--provisioning-parameters",
            "{doc}",
        ),
        (
            "partition name with a newline",
            "mount name with a newline",
            "DNS name with a space",
            "login group as a list",
            "group name of 80 characters",
        ),
    ),
    Command(
        "HyperPod lifecycle --resource-config",
        (
            PY,
            f"{HYPERPOD}/LifecycleScripts/base-config/lifecycle.py",
            "--dry-run",
            "--provisioning-parameters",
            f"{HYPERPOD}/tests/fixtures/provisioning_parameters.json",
            "--resource-config",
            "{resources}",
        ),
        ("instances as numbers",),
    ),
    Command(
        "HyperPod create_config --groups",
        (
            PY,
            f"{HYPERPOD}/create_config.py",
            "--stack",
            "s",
            "--groups",
            "{file}",
            "--out-dir",
            "{fresh_out}",
        ),
        ALL_FILES,
    ),
    Command(
        "HyperPod create_config --cluster-name",
        (
            PY,
            f"{HYPERPOD}/create_config.py",
            "--stack",
            "s",
            "--controller",
            "ml.c5.xlarge",
            "--worker",
            "ml.p5.48xlarge:2",
            "--cluster-name",
            "{text}",
            "--out-dir",
            "{fresh_out}",
        ),
        tuple(TEXTS),
    ),
    Command(
        "HyperPod create_config --out-dir",
        (
            PY,
            f"{HYPERPOD}/create_config.py",
            "--stack",
            "s",
            "--controller",
            "ml.c5.xlarge",
            "--worker",
            "ml.p5.48xlarge:2",
            "--cluster-name",
            "ok",
            "--out-dir",
            "{out}",
        ),
        tuple(OUT_INPUTS),
    ),
    Command(
        "HyperPod validate_config --cluster-config",
        (PY, f"{HYPERPOD}/validate_config.py", "--cluster-config", "{file}"),
        ALL_FILES,
    ),
    Command(
        "HyperPod validate_config --cluster-config (values)",
        (PY, f"{HYPERPOD}/validate_config.py", "--cluster-config", "{doc}"),
        ("execution role as a bare name", "execution role as a number"),
    ),
    Command(
        "ParallelCluster create_config --key-name",
        (
            PY,
            f"{PCLUSTER}/create_config.py",
            "--stack",
            "s",
            "--cluster",
            "cpu-small",
            "--key-name",
            "{text}",
            "--out",
            "{fresh_out}",
        ),
        ("newline", "over-long", "empty"),  # '#' and quotes are valid key pair names
    ),
    # The framework cases' own commands (those that run in the project venv)
    Command(
        "picotron_config --verify",
        (
            PY,
            "3.test_cases/pytorch/picotron/src/picotron_config.py",
            "--verify",
            "{file}",
            "--world-size",
            "16",
        ),
        ALL_FILES,
    ),
    Command(
        "picotron_config --world-size",
        (
            PY,
            "3.test_cases/pytorch/picotron/src/picotron_config.py",
            "--verify",
            "3.test_cases/pytorch/picotron/configs/llama3_1_8b-2nodes.json",
            "--world-size",
            "{value}",
        ),
        tuple(NUMBERS_AND_ZERO),
    ),
    Command(
        "jax train --lr",
        (PY, "3.test_cases/jax/src/train.py", "--lr", "{value}", *TRAIN_FAST),
        tuple(VALUES),
    ),
    Command(
        "nemo-run launch --cluster",
        (
            PY,
            "3.test_cases/pytorch/nemo-run/src/launch.py",
            "--preset",
            "tiny",
            "--dryrun",
            "--cluster",
            "{file}",
        ),
        ALL_FILES,
    ),
    Command(
        "nemo-launcher launcher_overrides --conf",
        (
            PY,
            "3.test_cases/pytorch/nemo-launcher/src/launcher_overrides.py",
            "--preset",
            "gpt3_5b",
            "--conf",
            "{dir}",
        ),
        tuple(DIR_INPUTS),
    ),
    Command(
        "neuronx-distributed nxd_args --nodes",
        (
            PY,
            "3.test_cases/pytorch/neuronx-distributed/src/nxd_args.py",
            "args",
            "--preset",
            "llama3-8b",
            "--data-dir",
            "/fsx/data",
            "--run-dir",
            "{fresh_out}",
            "--nodes",
            "{value}",
        ),
        tuple(NUMBERS_AND_ZERO),
    ),
    Command(
        "torchtitan metrics_jsonl",
        (PY, "3.test_cases/pytorch/torchtitan/src/metrics_jsonl.py", "{dir}"),
        tuple(DIR_INPUTS),
    ),
    # Repository tools
    Command(
        "benchmarks/gpu_check --steps", (PY, "benchmarks/gpu_check.py", "--steps", "{value}"), tuple(VALUES)
    ),
]


# --- Running one pair ---------------------------------------------------------------------------------

SLOTS = ("{file}", "{dir}", "{value}", "{text}", "{out}", "{jsonl}", "{file_dir}", "{doc}", "{resources}")
OFFLINE = {
    # Any AWS call goes to a closed port and fails at once; nothing reaches a hub or the instance metadata.
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_MAX_ATTEMPTS": "1",
    "HF_HUB_OFFLINE": "1",
    "INSTANCE_TYPE": "p5.48xlarge",
    "OMP_NUM_THREADS": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}


def slot_of(command: Command) -> str:
    joined = " ".join([*command.argv, *command.env.values()])
    found = [slot for slot in SLOTS if slot in joined]
    assert len(found) == 1, f"{command.name}: one slot per command, found {found}"
    return found[0]


def named_by(command: Command, slot: str) -> list[str]:
    """What the error line must mention: the option (or variable) that took the bad input, or the file."""
    if any(slot in value for value in command.env.values()):
        return [name for name, value in command.env.items() if slot in value]
    index = command.argv.index(slot) if slot in command.argv else -1
    before = command.argv[index - 1] if index > 0 else ""
    names = ["bad-input"]  # every bad file or folder is called bad-input*
    if before.startswith("--"):
        names += [before, before.lstrip("-"), before.lstrip("-").replace("-", "_")]
    return names


def prepare(command: Command, entry: str, tmp: Path) -> tuple[list[str], dict[str, str], Path | None]:
    """The argv and env of one pair, and the output path that must not exist afterwards (if any)."""
    slot = slot_of(command)
    fresh_out = tmp / "fresh-out"
    fresh_dir = tmp / "fresh-dir"
    fresh_dir.mkdir()
    values = {"{fresh_out}": str(fresh_out), "{fresh_dir}": str(fresh_dir)}
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
        target = tmp / "bad-input.jsonl"
        target.write_text(JSONL_INPUTS[entry])
    elif slot == "{out}":
        target = tmp / "bad-input-out"
        if entry == "a folder":
            target.mkdir()
        else:
            OUT_INPUTS[entry](target)
            target = tmp / "plain-file" / "bad-input-out"
    values[slot] = str(target) if slot not in ("{value}", "{text}") else ""
    if slot == "{value}":
        values[slot] = NUMBERS_AND_ZERO[entry]
    if slot == "{text}":
        values[slot] = TEXTS[entry]
    values["{sample_log}"] = str(
        ROOT / VALIDATION / "6.nccl-tests/tests/fixtures/p5-2node-all_reduce-good.log"
    )
    values["{sample_csv}"] = str(sample_csv(tmp))

    def fill(arg: str) -> str:
        for key, value in values.items():
            arg = arg.replace(key, value)
        return arg

    argv = [fill(arg) for arg in command.argv]
    env = {**OFFLINE, **{name: fill(value) for name, value in command.env.items()}}
    watched = [
        path for path, key in ((fresh_out, "{fresh_out}"), (fresh_dir, "{fresh_dir}")) if key in command.argv
    ]
    return argv, env, (watched[0] if watched else None)


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
    argv, env, fresh_out = prepare(command, entry, tmp)
    try:
        done = subprocess.run(
            argv,
            cwd=ROOT / command.cwd,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            errors="replace",
            timeout=120,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "still running after 120 s (accepted and ran?)"
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
    if (
        fresh_out is not None
        and fresh_out.exists()
        and any(fresh_out.iterdir() if fresh_out.is_dir() else [1])
    ):
        return f"wrote {fresh_out.name} although it failed"
    return None


def test_every_command_ends_every_bad_input_cleanly(tmp_path):
    pairs = [(command, entry) for command in COMMANDS for entry in command.inputs]
    for index in range(len(pairs)):
        (tmp_path / str(index)).mkdir()

    def run(item: tuple[int, tuple[Command, str]]) -> str | None:
        index, (command, entry) = item
        why = verdict(command, entry, tmp_path / str(index))
        return None if why is None else f"{command.name} <- {entry}: {why}"

    with ThreadPoolExecutor(max_workers=2) as pool:
        problems = [line for line in pool.map(run, enumerate(pairs)) if line]
    clean = len(pairs) - len(problems)
    print(f"bad inputs: {len(pairs)} tried, {clean} clean")
    assert not problems, f"bad inputs: {len(pairs)} tried, {clean} clean\n" + "\n".join(problems)
