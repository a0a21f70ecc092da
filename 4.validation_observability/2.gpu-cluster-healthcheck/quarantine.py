#!/usr/bin/env python3
"""Quarantine and return Slurm nodes: drain with a reason, list what is out of service, resume.

    python3 quarantine.py list                          # drained/down nodes and why
    python3 quarantine.py drain n2 --reason "Xid 79 seen by the job"
    python3 quarantine.py resume n2                     # only nodes drained by healthcheck/quarantine
    python3 quarantine.py resume n2 --force             # any reason (an admin's drain, too)

Exit status: 0 done, 1 refused (the node was drained for another reason), 2 bad input or Slurm error.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

from gpu_healthcheck import output_contract, slurm_actions

# A node name as sinfo -N prints it: host-name labels of at most 63 characters.
NODE_NAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quarantine.py", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="nodes out of service and their reasons")
    drain = commands.add_parser("drain", help="drain a node with a reason")
    drain.add_argument("node")
    drain.add_argument("--reason", required=True, help="why (shown by sinfo -R)")
    resume = commands.add_parser("resume", help="return a quarantined node to service")
    resume.add_argument("node")
    resume.add_argument("--force", action="store_true", help="also when another reason drained it")
    return parser


def command_list() -> int:
    out = [node for node in slurm_actions.nodes() if node.out_of_service]
    rows = [(n.name, n.state, "yes" if n.by_healthcheck else "no", n.reason or "-") for n in out]
    print(
        "\n".join(
            output_contract.table(
                ["NODE", "STATE", "QUARANTINED", "REASON"], rows, left=3, free_text_last=True
            )
        )
    )
    print(f"# {len(out)} node(s) out of service")
    return 0


def command_resume(node: str, force: bool) -> int:
    states = slurm_actions.nodes([node])
    if not states:
        raise ValueError(f"no node {node!r} in this cluster; see `sinfo -N`")
    state = states[0]
    if not state.out_of_service:
        print(f"{node} is {state.state}, already in service")
        return 0
    if not state.by_healthcheck and not force:
        print(
            f"refused: {node} is {state.state} for {state.reason!r}, not by healthcheck/quarantine; "
            "resume it with --force if that reason is resolved",
            file=sys.stderr,
        )
        return 1
    slurm_actions.resume(node)
    print(f"resumed {node} (was {state.state}: {state.reason})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; Slurm errors and bad input are one line and exit 2."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command in ("drain", "resume") and not NODE_NAME.fullmatch(args.node):
        parser.error(
            f"node {args.node!r} is not a Slurm node name (letters, digits, '.', '-', '_'; see sinfo -N)"
        )
    if args.command == "drain" and not args.reason.strip():
        parser.error("--reason is empty; say why the node leaves service (sinfo -R shows it)")
    try:
        if args.command == "list":
            return command_list()
        if args.command == "drain":
            reason = slurm_actions.drain(args.node, f"quarantine: {args.reason}")
            print(f"drained {args.node} ({reason})")
            return 0
        return command_resume(args.node, args.force)
    except (ValueError, slurm_actions.SlurmActionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
