"""Command line of the lifecycle program (``python3 lifecycle.py --help``).

Exit status: 0 every step done or already in place; 1 a step failed; 2 bad input (files that
disagree, an IP in no group). Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__, slurm_conf
from .config import ClusterLayout, ConfigError, Instance, load
from .runner import LifecycleError, RetryPolicy, SystemRunner, run_steps
from .steps import Context, all_steps

HERE = Path(__file__).resolve().parent.parent
DEFAULT_RESOURCE_CONFIG = Path("/opt/ml/config/resource_config.json")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lifecycle.py", description="Set up one SageMaker HyperPod (Slurm) node."
    )
    parser.add_argument(
        "--resource-config", type=Path, default=DEFAULT_RESOURCE_CONFIG, help="default: %(default)s"
    )
    parser.add_argument(
        "--provisioning-parameters",
        type=Path,
        default=HERE / "provisioning_parameters.json",
        help="default: provisioning_parameters.json next to this program",
    )
    parser.add_argument("--ip", help="this node's IP (default: found with `hostname -I`)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan for the node; change nothing")
    parser.add_argument(
        "--print-slurm-conf", action="store_true", help="print the generated node/partition lines"
    )
    parser.add_argument(
        "--slurm-prefix", default="/opt/slurm", help="Slurm's install prefix (default %(default)s)"
    )
    parser.add_argument(
        "--users-file", type=Path, default=HERE / "shared_users.txt", help="name,uid[,home] lines"
    )
    parser.add_argument("--exporters", action="store_true", help="also install the Prometheus node exporter")
    parser.add_argument("--attempts", type=int, default=5, help="attempts per step (default %(default)s)")
    parser.add_argument(
        "--backoff", type=float, default=2.0, help="first retry delay in s, doubling (default %(default)s)"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def find_node(layout: ClusterLayout, runner: SystemRunner, ip: str | None) -> Instance:
    """This node: by --ip, else the first address of `hostname -I` that the resource config lists."""
    if ip:
        return layout.instance_by_ip(ip)
    addresses = runner.run(["hostname", "-I"]).stdout.split()
    for address in addresses:
        try:
            return layout.instance_by_ip(address)
        except ConfigError:
            continue
    return layout.instance_by_ip(addresses[0] if addresses else "(none found by `hostname -I`)")


def print_plan(ctx: Context) -> None:
    """The --dry-run output: the node, its role, and what each step would do (or why it is skipped)."""
    print(f"# plan for {ctx.node.ip} ({ctx.node.node_name}): group {ctx.node.group}, role {ctx.role}")
    print(f"# controller {ctx.layout.controller.ip}; nothing is changed (--dry-run)")
    for number, step in enumerate(all_steps(), start=1):
        reason = step.skip_reason(ctx)
        print(f"{number:>2}. {step.name:<17} " + (f"skip: {reason}" if reason else step.plan(ctx)))


def main(argv: Sequence[str] | None = None, runner: SystemRunner | None = None) -> int:
    """Entry point; ``runner`` lets tests drive the real steps against a fake root."""
    args = _parser().parse_args(argv)
    runner = runner or SystemRunner()
    try:
        if args.attempts < 1 or args.backoff < 0:
            raise ConfigError(
                f"--attempts {args.attempts} / --backoff {args.backoff}: use attempts >= 1, backoff >= 0"
            )
        layout = load(args.resource_config, args.provisioning_parameters)
        if args.print_slurm_conf:
            print(slurm_conf.render(layout), end="")
            return 0
        node = find_node(layout, runner, args.ip)
        ctx = Context(layout, node, runner, args.slurm_prefix, args.users_file, args.exporters)
        if args.dry_run:
            print_plan(ctx)
            return 0
        print(f"lifecycle {__version__}: node {node.ip} group {node.group} role {ctx.role}", file=sys.stderr)
        run_steps(all_steps(), ctx, runner, RetryPolicy(args.attempts, args.backoff), sys.stdout)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except LifecycleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
