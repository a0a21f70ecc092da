#!/usr/bin/env python3
"""Render slurm/<preset>.sbatch and kubernetes/<preset>.yaml for every preset, from one template each.

    python src/generate.py           # write the files (make generate)
    python src/generate.py --check   # exit 1 naming every file that differs (a test runs this)

The presets are read from fsdp/presets.py without importing torch; EFA device counts and
GPUDirect RDMA come from the repository's one file of instance facts, 1.architectures/instance-types.yaml.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import sys
from pathlib import Path

import jinja2
import yaml

FOLDER = Path(__file__).resolve().parents[1]
INSTANCE_TYPES = FOLDER.parents[2] / "1.architectures" / "instance-types.yaml"


@functools.cache
def instance_file() -> dict:
    """1.architectures/instance-types.yaml, read once per run."""
    return yaml.safe_load(INSTANCE_TYPES.read_text())


def environment() -> dict[str, dict[str, str]]:
    """instance-types.yaml's EFA/NCCL environment groups (efa, device_rdma, tuner, gpu, socket_ifname)."""
    return {
        group: {str(k): str(v) for k, v in values.items()}
        for group, values in instance_file()["efa_nccl_environment"].items()
    }


def efa_facts(instance_type: str) -> tuple[int, bool]:
    """(EFA devices, GPUDirect RDMA) of an instance type, from instance-types.yaml."""
    facts = instance_file()["instance_types"]
    if instance_type not in facts:
        raise SystemExit(f"error: {instance_type} is not in {INSTANCE_TYPES}; add it there first")
    efa = facts[instance_type]["efa"]
    return int(efa["devices"]), bool(efa["device_rdma"])


def load_presets() -> dict:
    spec = importlib.util.spec_from_file_location("presets", FOLDER / "src" / "fsdp" / "presets.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["presets"] = module
    spec.loader.exec_module(module)
    return module.PRESETS


def nproc(preset) -> int:
    return preset.launch.gpus_per_node or 2  # CPU presets: two ranks per node


def render(template: str, **values) -> str:
    """``templates/<template>`` rendered by Jinja2 (strict: a name used without a value fails)."""
    environment = jinja2.Environment(  # noqa: S701 - bash and YAML, not HTML: nothing to escape
        loader=jinja2.FileSystemLoader(FOLDER / "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template(template).render(**values)


def sbatch(name: str, preset) -> str:
    return render(
        "sbatch.template",
        preset=name,
        nodes=preset.launch.nodes,
        nproc=nproc(preset),
        exclusive=bool(preset.launch.gpus_per_node),
        # GPU runs write to shared storage; the CPU presets (local tests, laptops) beside the script.
        run_root="$SHARED_DIR/fsdp/runs" if preset.launch.gpus_per_node else "$SLURM_SUBMIT_DIR/runs",
    )


def manifest(name: str, preset) -> str:
    if preset.launch.gpus_per_node:
        efa, rdma = efa_facts(preset.launch.instance_type)
        table = environment()
        # The image has the aws-ofi-nccl tuner; pods talk over the pod network (socket_ifname kubernetes).
        env = {**table["efa"], "NCCL_SOCKET_IFNAME": table["socket_ifname"]["kubernetes"], **table["gpu"]}
        env = list((env | table["tuner"] | (table["device_rdma"] if rdma else {})).items())
        resources = [("nvidia.com/gpu", preset.launch.gpus_per_node), ("vpc.amazonaws.com/efa", efa)]
    else:
        env = [("GLOO_SOCKET_IFNAME", "eth0")]
        resources = [("cpu", 2), ("memory", "8Gi")]
    return render(
        "pytorchjob.yaml.template",
        preset=name,
        job_name=name.replace("_", "-"),
        nodes=preset.launch.nodes,
        nproc=nproc(preset),
        env=env,
        resources=resources,
    )


def expected_files() -> dict[Path, str]:
    files = {}
    for name, preset in load_presets().items():
        files[FOLDER / "slurm" / f"{name}.sbatch"] = sbatch(name, preset)
        files[FOLDER / "kubernetes" / f"{name}.yaml"] = manifest(name, preset)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="report drift instead of writing")
    args = parser.parse_args(argv)
    drift = []
    for path, text in expected_files().items():
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        if args.check:
            drift.append(str(path.relative_to(FOLDER)))
        else:
            path.write_text(text)
            path.chmod(0o755 if path.suffix == ".sbatch" else 0o644)
            print(f"wrote {path.relative_to(FOLDER)}")
    if drift:
        print(
            f"error: generated files differ from their templates: {', '.join(drift)}; run 'make generate'",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
