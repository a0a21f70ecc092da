"""Launch a Llama 3 NeMo 2.x recipe (or the tiny CPU task) with nemo-run.

    python src/launch.py --preset llama3_8b_pretrain --executor slurm --dryrun   # print the sbatch
    python src/launch.py --preset llama3_8b_pretrain --executor slurm            # submit it
    python src/launch.py --preset tiny --executor local --nproc-per-node 2       # torchrun here
    torchrun ... src/launch.py --preset llama3_8b_pretrain --direct              # in-process, per rank

The arguments and the cluster file are checked before nemo-run or NeMo is imported; bad input ends with
one ``error:`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from nemo_llama.cluster import ConfigError, load_cluster
from nemo_llama.presets import PRESETS, get_preset

CASE_DIR = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", required=True, help=f"one of: {', '.join(PRESETS)}")
    parser.add_argument("--executor", choices=["slurm", "local"], default="slurm")
    parser.add_argument(
        "--cluster",
        default=str(CASE_DIR / "configs" / "cluster.yaml"),
        help="the cluster file (Slurm executor); default configs/cluster.yaml",
    )
    parser.add_argument("--nodes", type=int, help="nodes (default: the preset's)")
    parser.add_argument("--nproc-per-node", type=int, default=2, help="ranks of the local executor")
    parser.add_argument("--max-steps", type=int, help="override the recipe's trainer.max_steps")
    parser.add_argument("--name", help="experiment name (default: the preset)")
    parser.add_argument("--log-dir", help="recipe log and checkpoint folder (default: <job_dir>/<name>)")
    parser.add_argument(
        "--no-container",
        action="store_true",
        help="Slurm: run on the nodes' Python instead of container_image (CPU variant)",
    )
    parser.add_argument(
        "--venv", help="Slurm --no-container: this venv's bin goes first on PATH on the nodes"
    )
    parser.add_argument("--rdzv-port", type=int, default=29500, help="Slurm: torchrun rendezvous port")
    parser.add_argument("--dryrun", action="store_true", help="print the generated script, submit nothing")
    parser.add_argument("--sbatch-out", help="with --dryrun: also write the generated sbatch here")
    parser.add_argument(
        "--direct",
        action="store_true",
        help="run the task in this process (under torchrun on each node: Kubernetes)",
    )
    return parser.parse_args(argv)


def check(args: argparse.Namespace):
    """The preset and cluster, or ConfigError/ValueError naming the bad value and the fix."""
    preset = get_preset(args.preset)
    for flag in ("nodes", "nproc_per_node", "max_steps"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ConfigError(f"--{flag.replace('_', '-')} must be 1 or more, got {value}")
    if args.sbatch_out and not (args.dryrun and args.executor == "slurm"):
        raise ConfigError("--sbatch-out goes with --executor slurm --dryrun")
    cluster = load_cluster(args.cluster) if args.executor == "slurm" and not args.direct else None
    if cluster is not None and not args.no_container and not cluster.container_image:
        raise ConfigError(
            f"{args.cluster}: container_image is empty; set the NeMo image (or pass --no-container)"
        )
    return preset, cluster


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        preset, cluster = check(args)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if cluster is not None and not args.dryrun:
        # nemo-run writes the experiment under its home and sbatch reads it from the job_dir: one folder.
        os.environ["NEMORUN_HOME"] = cluster.job_dir
    elif args.dryrun and "NEMORUN_HOME" not in os.environ:
        # nemo-run writes even a dry run's files: into a scratch home, not the cluster's job_dir.
        scratch_home = tempfile.mkdtemp(prefix="nemo-run-dryrun-")
        os.environ["NEMORUN_HOME"] = scratch_home
        try:
            return run_experiment(args, preset, cluster)
        finally:
            shutil.rmtree(scratch_home, ignore_errors=True)
    return run_experiment(args, preset, cluster)


def run_experiment(args: argparse.Namespace, preset, cluster) -> int:
    """Build the task and run it (or print the dry run) with the chosen executor."""
    import nemo_run as run  # noqa: PLC0415 - after the checks: a bad flag costs no import time
    from nemo_llama.executors import local_executor, slurm_executor  # noqa: PLC0415
    from nemo_llama.presets import build_task  # noqa: PLC0415

    name = args.name or preset.name
    nodes = args.nodes or preset.nodes
    gpus = cluster.gpus_per_node if cluster else int(os.environ.get("LOCAL_WORLD_SIZE", args.nproc_per_node))
    base = cluster.job_dir if cluster else str(Path.cwd() / "runs")
    log_dir = args.log_dir or f"{base}/{name}"
    task = build_task(preset, name, log_dir, nodes, gpus, args.max_steps)
    if args.direct:
        run.run(task, direct=True)
        return 0
    if args.executor == "local":
        executor = local_executor(args.nproc_per_node)
    else:
        executor = slurm_executor(
            cluster,
            nodes,
            container=not args.no_container,
            venv=args.venv,
            own_code=preset.task == "tiny",
            rdzv_port=args.rdzv_port,
        )
    with run.Experiment(name, executor=executor, log_level="WARN") as exp:
        exp.add(task, name=name, tail_logs=args.executor == "local")
        if args.dryrun:
            exp.dryrun(log=False, delete_exp_dir=args.sbatch_out is None)
            script = dryrun_script(exp)
            if args.sbatch_out:
                Path(args.sbatch_out).write_text(script)
            print(script)
            return 0
        exp.run(sequential=False, detach=args.executor == "slurm")
    state = str(exp.jobs[0].state)  # the local job is waited for when the block ends
    if args.executor == "local" and not state.endswith("SUCCEEDED"):
        print(f"error: the {name} task ended {state}; its log is above", file=sys.stderr)
        return 1
    return 0


def dryrun_script(exp) -> str:
    """The script nemo-run would submit for the experiment's one job (the sbatch on Slurm)."""
    info = exp.jobs[0]._dryrun_info
    request = info.request
    return request.materialize() if hasattr(request, "materialize") else str(info)


if __name__ == "__main__":
    sys.exit(main())
