#!/usr/bin/env python3
"""Write every copied or generated file of the repository from its one source; ``--check`` reports drift.

    make sync                      # or: python common/sync.py
    make sync-check                # or: python common/sync.py --check   (what the tests run)

Reference folders stay self-contained and copyable (a user copies ``3.test_cases/pytorch/FSDP`` to a
cluster and it works), so a module several folders need is copied into each, and facts several files
need are written into them. Each has one source:

- ``common/trainer/*.py`` -> the package of every trainer we write (FSDP, cpu-ddp);
- ``common/validation/*.py`` -> the validation tools (and the HyperPod lifecycle program's output contract);
- ``1.architectures/instance-types.yaml`` -> ``device_peaks.py`` in every trainer package (the dense bf16
  peak per GPU model, for MFU) and ``instance_cores.py`` in the HyperPod lifecycle program (Slurm's
  ``CPUs=``), plus the generators below;
- ``common/slurm/efa-env.sh.template`` + instance-types.yaml's ``efa_nccl_environment`` ->
  ``slurm/efa-env.sh`` in every test case whose Slurm scripts source it;
- instance-types.yaml's ``efa_nccl_environment`` -> the region between ``# BEGIN efa-nccl-environment`` and
  ``# END efa-nccl-environment`` in the hand-written Kubernetes templates and the AWS Batch template
  (``EFA_ENV_REGIONS``: which groups each file sets, in its own form); the rest of those files is theirs;
- the generators that render files from templates and facts: FSDP's sbatch scripts and PyTorchJobs
  (``src/generate.py``), the EKS cluster configs (``1.architectures/4.amazon-eks/generate.py``), the EFA
  cheat sheet (``1.architectures/efa_cheatsheet.py``); each keeps its own ``--check``, run from here.

Copies carry a first line saying where they come from; edit the source, then run ``make sync``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import jinja2
import yaml

ROOT = Path(__file__).resolve().parents[1]
TRAINER_PACKAGES = ("3.test_cases/pytorch/FSDP/src/fsdp", "3.test_cases/pytorch/cpu-ddp/src/cpu_ddp")
VALIDATION = "4.validation_observability"
COPIES: dict[str, tuple[str, ...]] = {
    **{
        f"common/trainer/{name}": TRAINER_PACKAGES
        for name in ("distributed.py", "faults.py", "run_folder.py", "atomic_checkpoint.py", "metrics.py")
    },
    "common/validation/instance_types.py": (
        f"{VALIDATION}/1.pytorch-env-validation/env_validation",
        f"{VALIDATION}/2.gpu-cluster-healthcheck/gpu_healthcheck",
        f"{VALIDATION}/6.nccl-tests/nccl_bench",
    ),
    "common/validation/output_contract.py": (
        f"{VALIDATION}/1.pytorch-env-validation/env_validation",
        f"{VALIDATION}/2.gpu-cluster-healthcheck/gpu_healthcheck",
        f"{VALIDATION}/6.nccl-tests/nccl_bench",
        "1.architectures/5.sagemaker-hyperpod/LifecycleScripts/base-config/hyperpod_lifecycle",
    ),
    "common/validation/inputs.py": (
        f"{VALIDATION}/1.pytorch-env-validation/env_validation",
        f"{VALIDATION}/2.gpu-cluster-healthcheck/gpu_healthcheck",
        f"{VALIDATION}/6.nccl-tests/nccl_bench",
    ),
    "common/validation/nccl_output.py": (
        f"{VALIDATION}/2.gpu-cluster-healthcheck/gpu_healthcheck",
        f"{VALIDATION}/6.nccl-tests/nccl_bench",
    ),
}
INSTANCE_TYPES = "1.architectures/instance-types.yaml"
EFA_ENV_TEMPLATE = "common/slurm/efa-env.sh.template"
HYPERPOD_LIFECYCLE = "1.architectures/5.sagemaker-hyperpod/LifecycleScripts/base-config/hyperpod_lifecycle"


@dataclass(frozen=True)
class EnvRegion:
    """The EFA/NCCL variables one file sets, written between its BEGIN and END marker lines.

    ``groups`` are efa_nccl_environment's groups in the order written; ``socket_ifname`` stands for
    NCCL_SOCKET_IFNAME with the form's value (Kubernetes: pod networking). ``only`` keeps just those
    variables of the groups. What a file sets under a condition of its own (an envsubst value, a
    CloudFormation ``!If``) or that only it needs stays hand-written outside the region.
    """

    form: str  # "kubernetes" (- name/value) or "cloudformation" (- Name/Value)
    groups: tuple[str, ...]
    only: tuple[str, ...] = ()


EFA_REGION = "efa-nccl-environment"
EFA_REGION_BEGIN, EFA_REGION_END = f"# BEGIN {EFA_REGION}", f"# END {EFA_REGION}"
# The PyTorchJobs run on GPUDirect-RDMA instances (p4d/p5*/p6, trn*); a group a file leaves out is its
# choice (bionemo: no tuner); FI_EFA_USE_DEVICE_RDMA follows the instance type in the MPIJob
# (${DEVICE_RDMA}) and the Batch job (!If DeviceRdma), so there it stays outside the region.
EFA_ENV_REGIONS: dict[str, EnvRegion] = {
    "3.test_cases/pytorch/bionemo/kubernetes/train.yaml-template": EnvRegion(
        "kubernetes", ("efa", "socket_ifname", "device_rdma", "gpu")
    ),
    "3.test_cases/pytorch/megatron-lm/kubernetes/pytorchjob.yaml-template": EnvRegion(
        "kubernetes", ("efa", "socket_ifname", "device_rdma", "tuner", "gpu")
    ),
    "3.test_cases/pytorch/mosaicml-composer/kubernetes/composer.yaml-template": EnvRegion(
        "kubernetes", ("efa", "socket_ifname", "device_rdma", "tuner", "gpu")
    ),
    "3.test_cases/pytorch/picotron/kubernetes/picotron.yaml-template": EnvRegion(
        "kubernetes", ("efa", "socket_ifname", "device_rdma", "tuner", "gpu")
    ),
    # Trainium: the Neuron runtime reads libfabric's provider and RDMA switch, not NCCL's or CUDA's settings.
    "3.test_cases/pytorch/neuronx-distributed/kubernetes/pretrain.yaml-template": EnvRegion(
        "kubernetes", ("efa", "device_rdma"), only=("FI_PROVIDER", "FI_EFA_USE_DEVICE_RDMA")
    ),
    f"{VALIDATION}/6.nccl-tests/kubernetes/nccl-tests.yaml-template": EnvRegion(
        "kubernetes", ("efa", "socket_ifname", "tuner")
    ),
    "1.architectures/3.aws-batch/aws-batch-nccl.yaml": EnvRegion("cloudformation", ("efa", "tuner")),
}
EFA_REGION_FORMS = {  # form -> (name key, value key, socket_ifname entry)
    "kubernetes": ("name", "value", "kubernetes"),
    "cloudformation": ("Name", "Value", None),
}
EFA_REGION_TEMPLATE = """\
{% for line in comments %}
{{ indent }}# {{ line }}
{% endfor %}
{% for name, value in variables %}
{{ indent }}- {{ name_key }}: {{ name }}
{{ indent }}  {{ value_key }}: {{ value | quoted }}
{% endfor %}
"""
GENERATORS = (
    "3.test_cases/pytorch/FSDP/src/generate.py",
    "1.architectures/4.amazon-eks/generate.py",
    "1.architectures/efa_cheatsheet.py",
)


@dataclass(frozen=True)
class Target:
    path: Path  # relative to the root
    text: str
    source: str
    region: str = ""  # set where only a marked region of the file is written (the rest is hand-written)


class SourceError(Exception):
    """A source of the generated files cannot be read, or lacks what a generated file needs."""


def read_source(root: Path, relative: str) -> str:
    path = root / relative
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from exc


def load_facts(root: Path) -> dict:
    """instance-types.yaml, with the sections the generated files are written from."""
    path = root / INSTANCE_TYPES
    try:
        facts = yaml.safe_load(read_source(root, INSTANCE_TYPES))
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where else ""
        raise SourceError(f"{path}: not valid YAML{line}") from exc
    if not isinstance(facts, dict) or not all(
        isinstance(facts.get(section), dict) for section in ("instance_types", "efa_nccl_environment")
    ):
        raise SourceError(
            f"{path}: expected a mapping with the sections instance_types and efa_nccl_environment"
        )
    return facts


def header(source: str) -> str:
    return f"# GENERATED by common/sync.py from {source}: edit that file, then run 'make sync'.\n"


def copies(root: Path) -> list[Target]:
    """Every copy of a ``common/`` module, with its header."""
    targets = []
    for source, folders in COPIES.items():
        text = header(source) + read_source(root, source)
        targets += [Target(Path(folder) / Path(source).name, text, source) for folder in folders]
    return targets


def device_peaks(root: Path) -> str:
    """``device_peaks.py``: dense bf16 TFLOP/s per GPU model, from instance-types.yaml."""
    facts = load_facts(root)["instance_types"]
    peaks = {}
    for spec in facts.values():
        accelerator = spec["accelerator"]
        if accelerator["kind"] == "gpu" and accelerator.get("bf16_dense_tflops"):
            peaks[accelerator["model"]] = float(accelerator["bf16_dense_tflops"])
    # Longer names first, so a name fragment match ("H100" in "NVIDIA H100 80GB HBM3") finds the right one.
    lines = [
        f'    "{model}": {peak},'
        for model, peak in sorted(peaks.items(), key=lambda kv: (-len(kv[0]), kv[0]))
    ]
    return (
        header(INSTANCE_TYPES)
        + '"""Dense (non-sparse) bf16 TFLOP/s per GPU model, the MFU denominator."""\n\n'
        + "GPU_PEAK_TFLOPS = {\n"
        + "\n".join(lines)
        + "\n}\n"
    )


def instance_cores(root: Path) -> str:
    """``instance_cores.py`` for the HyperPod lifecycle program: physical cores per ``ml.`` type."""
    facts = load_facts(root)
    cores = {
        name: int(spec["physical_cores"])
        for section in ("instance_types", "cpu_instance_types")
        for name, spec in facts.get(section, {}).items()
        if "physical_cores" in spec
    }
    lines = [f'    "ml.{name}": {count},' for name, count in sorted(cores.items())]
    return (
        header(INSTANCE_TYPES)
        + '"""Physical cores per HyperPod instance type (ml. + the EC2 name): Slurm\'s CPUs= per node."""\n\n'
        + "PHYSICAL_CORES = {\n"
        + "\n".join(lines)
        + "\n}\n"
    )


def efa_env_script(root: Path) -> str:
    """``slurm/efa-env.sh``: the EFA/NCCL groups that apply, decided on the node; GPUDirect RDMA for the
    types whose facts say so."""
    facts = load_facts(root)
    table = {
        group: {str(k): str(v) for k, v in values.items()}
        for group, values in facts["efa_nccl_environment"].items()
    }
    rdma_types = sorted(
        name for name, fact in facts["instance_types"].items() if (fact.get("efa") or {}).get("device_rdma")
    )
    template = jinja2.Environment(  # noqa: S701 - bash, not HTML: nothing to escape
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True
    ).from_string(read_source(root, EFA_ENV_TEMPLATE))
    return header(EFA_ENV_TEMPLATE) + template.render(
        gpu=table["gpu"].items(),
        efa=table["efa"].items(),
        device_rdma=list(table["device_rdma"].items()),
        tuner=table["tuner"].items(),
        socket_ifname=table["socket_ifname"]["slurm"],
        rdma_types=rdma_types,
    )


def efa_env_folders(root: Path) -> list[Path]:
    """Every test case (relative to the root) whose Slurm scripts source ``slurm/efa-env.sh``."""
    scripts = [*root.glob("3.test_cases/**/slurm/*.sbatch"), *root.glob("3.test_cases/**/slurm/*.sh")]
    return sorted(
        {
            script.parent.parent.relative_to(root)
            for script in scripts
            if script.name != "efa-env.sh" and "slurm/efa-env.sh" in script.read_text(encoding="utf-8")
        }
    )


def region_variables(table: dict, region: EnvRegion) -> list[tuple[str, str]]:
    """(name, value) of the region's groups, in order, from efa_nccl_environment."""
    socket_form = EFA_REGION_FORMS[region.form][2]
    variables: list[tuple[str, str]] = []
    for group in region.groups:
        if group == "socket_ifname":
            if socket_form is None:
                raise ValueError(f"the {region.form} form has no socket_ifname entry")
            variables.append(("NCCL_SOCKET_IFNAME", str(table["socket_ifname"][socket_form])))
        else:
            variables += [(str(name), str(value)) for name, value in table[group].items()]
    if region.only:
        missing = sorted(set(region.only) - {name for name, _ in variables})
        if missing:
            raise ValueError(f"{', '.join(missing)} not in the groups {', '.join(region.groups)}")
        variables = [(name, value) for name, value in variables if name in region.only]
    return variables


def efa_env_region(root: Path, relative: str, region: EnvRegion, table: dict) -> str:
    """The whole text of ``relative`` with its efa-nccl-environment region rendered from the table."""
    text = read_source(root, relative)
    lines = text.splitlines(keepends=True)
    begins = [i for i, line in enumerate(lines) if line.strip() == EFA_REGION_BEGIN]
    ends = [i for i, line in enumerate(lines) if line.strip() == EFA_REGION_END]
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise SourceError(
            f"{root / relative}: expected one '{EFA_REGION_BEGIN}' line and, below it, one "
            f"'{EFA_REGION_END}' line around the EFA/NCCL variables"
        )
    begin, end = begins[0], ends[0]
    indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
    described = []  # the groups, and which of their variables when not all of them
    for group in region.groups:
        if group == "socket_ifname":
            described.append(f"socket_ifname.{EFA_REGION_FORMS[region.form][2]}")
            continue
        chosen = [name for name in table[group] if not region.only or name in region.only]
        described.append(group if len(chosen) == len(table[group]) else f"{group} ({', '.join(chosen)})")
    environment = jinja2.Environment(  # noqa: S701 - YAML, not HTML: values are quoted by the filter
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True
    )
    environment.filters["quoted"] = json.dumps  # a JSON string is a YAML double-quoted scalar
    name_key, value_key, _ = EFA_REGION_FORMS[region.form]
    body = environment.from_string(EFA_REGION_TEMPLATE).render(
        indent=indent,
        comments=[
            f"Written by common/sync.py from {INSTANCE_TYPES}: edit there, then make sync.",
            f"efa_nccl_environment: {', '.join(described)}.",
        ],
        variables=region_variables(table, region),
        name_key=name_key,
        value_key=value_key,
    )
    return "".join(lines[: begin + 1]) + body + "".join(lines[end:])


def efa_env_regions(root: Path) -> list[Target]:
    """Every file of EFA_ENV_REGIONS with its region written from the table."""
    table = load_facts(root)["efa_nccl_environment"]
    return [
        Target(Path(path), efa_env_region(root, path, region, table), INSTANCE_TYPES, EFA_REGION)
        for path, region in EFA_ENV_REGIONS.items()
    ]


def generated(root: Path) -> list[Target]:
    """Every file this tool writes itself: the copies and the tables written from instance-types.yaml."""
    try:
        peaks, cores = device_peaks(root), instance_cores(root)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SourceError(
            f"{root / INSTANCE_TYPES}: an instance type lacks a fact or has a wrong one ({exc})"
        ) from exc
    try:
        efa_env = efa_env_script(root)
    except (KeyError, TypeError, ValueError, AttributeError, jinja2.TemplateError) as exc:
        raise SourceError(
            f"{root / INSTANCE_TYPES} or {EFA_ENV_TEMPLATE}: cannot write efa-env.sh ({exc})"
        ) from exc
    try:
        regions = efa_env_regions(root)
    except (KeyError, TypeError, ValueError, AttributeError, jinja2.TemplateError) as exc:
        raise SourceError(
            f"{root / INSTANCE_TYPES}: cannot write the efa-nccl-environment regions ({exc})"
        ) from exc
    return (
        copies(root)
        + [Target(Path(pkg) / "device_peaks.py", peaks, INSTANCE_TYPES) for pkg in TRAINER_PACKAGES]
        + [Target(Path(HYPERPOD_LIFECYCLE) / "instance_cores.py", cores, INSTANCE_TYPES)]
        + [Target(case / "slurm" / "efa-env.sh", efa_env, EFA_ENV_TEMPLATE) for case in efa_env_folders(root)]
        + regions
    )


def drifted(root: Path) -> list[Target]:
    return [
        t for t in generated(root) if not (root / t.path).is_file() or (root / t.path).read_text() != t.text
    ]


def run_generators(root: Path, check: bool) -> list[str]:
    """Run each generator (with ``--check``): one line per failure."""
    failures = []
    for script in GENERATORS:
        if not (root / script).is_file():
            failures.append(f"{script}: the generator is missing")
            continue
        done = subprocess.run(
            [sys.executable, str(root / script), *(["--check"] if check else [])],
            cwd=(root / script).parent,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or ["no message"])[-1]
            failures.append(f"{script}: {why}")
        elif not check and done.stdout.strip():
            print(done.stdout.strip())
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="report drift instead of writing")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        stale = drifted(args.root)
    except SourceError as exc:
        print(f"error: {exc}; fix the source, then run 'make sync' (nothing written)", file=sys.stderr)
        return 2
    if args.check:
        problems = [
            f"{t.path}: the region '{t.region}' differs from {t.source}"
            if t.region
            else f"{t.path} differs from {t.source}"
            for t in stale
        ]
    else:
        for target in stale:
            (args.root / target.path).write_text(target.text, encoding="utf-8")
            part = f"the region '{target.region}' of " if target.region else ""
            print(f"wrote {part}{target.path} (from {target.source})")
        problems = []
    problems += run_generators(args.root, args.check)
    for problem in problems:
        print(f"error: {problem}; run 'make sync'", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
