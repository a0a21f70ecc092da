"""Command line: ``run`` the checks on this node, ``list`` them, ``aggregate`` many nodes' results.

Exit status: 0 no check failed (WARN allowed), 1 a check failed (or a node, for aggregate), 2 bad input.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from gpu_healthcheck import checks, inputs, instance_types, output_contract, report, slurm_actions

MIN_BUSBW_ENV = "MIN_BUSBW"


def _run_parser(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="run checks on this node (default: fast)")
    run.add_argument(
        "--checks", default="fast", help="fast, all, or IDs such as GPU001,EFA001 (default fast)"
    )
    run.add_argument("--skip", action="append", default=[], help="a check ID to leave out (repeatable)")
    run.add_argument(
        "--instance-type", default=None, help=f"default ${instance_types.TYPE_ENV} or the DMI name"
    )
    run.add_argument("--instance-types", default=None, help="path of instance-types.yaml")
    run.add_argument(
        "--node", default=None, help="node name in reports and for --drain (default $SLURMD_NODENAME)"
    )
    run.add_argument(
        "--dcgm-level", type=int, default=1, choices=[1, 2, 3, 4], help="GPU004 depth (default 1)"
    )
    run.add_argument(
        "--nccl-tests-dir", default=os.environ.get("NCCL_TESTS_DIR"), help="where all_reduce_perf is"
    )
    run.add_argument(
        "--min-busbw",
        type=float,
        default=None,
        help=f"GPU006 threshold, GB/s (env {MIN_BUSBW_ENV})",
    )
    run.add_argument(
        "--kernel-log", type=Path, default=None, help="read Xids from this file instead of dmesg"
    )
    run.add_argument("--root", type=Path, default=Path("/"), help=argparse.SUPPRESS)
    run.add_argument("--json", action="store_true", help="print the JSON result instead of the table")
    run.add_argument("--json-out", type=Path, default=None, help="also write the JSON result here")
    run.add_argument("--json-dir", type=Path, default=None, help="also write it to DIR/<node>.json")
    run.add_argument(
        "--drain", action="store_true", help="on failure, drain this node in Slurm with the reason"
    )
    run.add_argument(
        "--after-job-exit", default=None, metavar="CODE", help="epilog: run only if the job failed"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="healthcheck.py", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    _run_parser(commands)
    listing = commands.add_parser("list", help="the checks, their IDs and what they read")
    listing.add_argument("--markdown", action="store_true", help="as the README's table")
    aggregate = commands.add_parser("aggregate", help="one verdict over many nodes' --json-out files")
    aggregate.add_argument("results", nargs="+", type=Path)
    aggregate.add_argument("--expect-nodes", default="", help="comma list of nodes that must have a result")
    return parser


def node_name(explicit: str | None) -> str:
    return explicit or os.environ.get("SLURMD_NODENAME") or socket.gethostname().split(".")[0]


def job_failed(code: str) -> bool:
    """Slurm's ``exit:signal`` (SLURM_JOB_EXIT_CODE2) or a plain number: anything but 0 is a failure."""
    parts = code.strip().split(":")
    if not all(part.isdigit() for part in parts):
        raise ValueError(f"--after-job-exit {code!r} must be EXIT[:SIGNAL], e.g. $SLURM_JOB_EXIT_CODE2")
    return any(int(part) for part in parts)


def _min_busbw(args: argparse.Namespace) -> float | None:
    if args.min_busbw is not None:
        return inputs.number(args.min_busbw, "--min-busbw", above=0)
    raw = os.environ.get(MIN_BUSBW_ENV)
    if not raw:
        return None
    return inputs.number(raw, MIN_BUSBW_ENV, above=0)


def command_run(args: argparse.Namespace) -> int:
    node = node_name(args.node)
    if args.after_job_exit is not None and not job_failed(args.after_job_exit):
        print(
            f"# {report.TOOL}: job exited {args.after_job_exit} on {node}; checks run only after a failed job"
        )
        return 0
    # Checked (and their folders made) before any check runs: a bad output path costs no node time.
    outputs = {
        flag: inputs.output_path(path, flag)
        for flag, path in (
            ("--json-out", args.json_out),
            ("--json-dir", args.json_dir and args.json_dir / f"{node}.json"),
        )
        if path is not None
    }
    chosen = checks.select(args.checks, args.skip)
    instance = instance_types.resolve(args.instance_type, args.instance_types, root=args.root)
    options = checks.Options(
        instance=instance,
        root=args.root,
        dcgm_level=args.dcgm_level,
        nccl_tests_dir=args.nccl_tests_dir,
        min_busbw=_min_busbw(args),
        kernel_log=args.kernel_log,
    )
    ctx = checks.Context(options)
    results = checks.run_checks(ctx, chosen)
    doc = report.document(node, ctx, results)
    for flag, path in outputs.items():
        inputs.write_text(path, output_contract.to_json(doc), flag)
    print(
        output_contract.to_json(doc) if args.json else "\n".join(report.node_lines(doc)),
        end="" if args.json else "\n",
    )
    if doc["ok"]:
        return 0
    if args.drain:
        reason = slurm_actions.drain(node, report.drain_reason(results))
        print(f"# Drained : {node} ({reason})")
    return 1


def command_list(args: argparse.Namespace) -> int:
    if args.markdown:
        print("| ID | check | in `fast` | on failure | reads |")
        print("|---|---|---|---|---|")
        for check in checks.CHECKS:
            fast = "yes" if check.fast else "no"
            print(f"| `{check.id}` | {check.title} | {fast} | {check.on_failure} | `{check.reads}` |")
        return 0
    rows = [(c.id, c.title, "fast" if c.fast else "all", c.on_failure, c.reads) for c in checks.CHECKS]
    print(
        "\n".join(
            output_contract.table(
                ["ID", "CHECK", "SET", "ON FAILURE", "READS"], rows, left=4, free_text_last=True
            )
        )
    )
    return 0


def command_aggregate(args: argparse.Namespace) -> int:
    expected = [name for name in args.expect_nodes.split(",") if name]
    lines, ok = report.aggregate_lines(report.load_results(args.results), expected)
    print("\n".join(lines))
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; bad input is one line on stderr and exit 2."""
    args = _parser().parse_args(argv)
    handlers = {"run": command_run, "list": command_list, "aggregate": command_aggregate}
    try:
        return handlers[args.command](args)
    except (ValueError, slurm_actions.SlurmActionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
