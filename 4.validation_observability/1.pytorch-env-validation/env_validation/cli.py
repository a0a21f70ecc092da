"""Command line: validate this node, or summarize every node's JSON after an sbatch run.

Exit status: 0 nothing failed (WARN and SKIP allowed), 1 a check (or a node) failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from env_validation import __version__, inputs, instance_types, output_contract
from env_validation.checks import Options, Result, run_checks

TOOL = "pytorch-env-validation"
EXPECT_GPUS_ENV = "EXPECT_GPUS"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="validate_env.py", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--instance-type", default=None, help=f"default ${instance_types.TYPE_ENV} or the DMI name"
    )
    parser.add_argument("--instance-types", default=None, help="path of instance-types.yaml")
    parser.add_argument(
        "--expect-gpus", type=int, default=None, help=f"GPUs this node must have (env {EXPECT_GPUS_ENV})"
    )
    parser.add_argument(
        "--local-ranks", type=int, default=None, help="ranks for ENV007 (default: GPUs, or 2)"
    )
    parser.add_argument("--skip", action="append", default=[], help="a check ID to leave out (repeatable)")
    parser.add_argument("--node", default=None, help="node name (default $SLURMD_NODENAME or the hostname)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--json-dir", type=Path, default=None, help="also write DIR/<node>.json")
    parser.add_argument("--summarize", type=Path, default=None, metavar="DIR", help="verdict over DIR/*.json")
    parser.add_argument("--expect-nodes", default="", help="with --summarize: nodes that must have a result")
    parser.add_argument("--root", type=Path, default=Path("/"), help=argparse.SUPPRESS)
    return parser


def _first_line_version(path: Path, pattern: str) -> str | None:
    try:
        match = re.search(pattern, path.read_text())
    except OSError:
        return None
    return match.group(1) if match else None


def header_facts(node: str, options: Options) -> dict[str, object]:
    """Versions found: Python, torch, CUDA, cuDNN, NCCL, NVIDIA driver, EFA installer, and the instance."""
    facts: dict[str, object] = {"node": node, "python": platform.python_version()}
    try:
        import torch  # noqa: PLC0415

        cuda = torch.cuda.is_available()
        facts |= {
            "torch": torch.__version__,
            "CUDA": torch.version.cuda,
            "cuDNN": torch.backends.cudnn.version() if cuda else None,
            "NCCL": ".".join(map(str, torch.cuda.nccl.version())) if cuda else None,
        }
    except ImportError:
        facts["torch"] = None
    root = options.root
    facts["driver"] = _first_line_version(root / "proc/driver/nvidia/version", r"Kernel Module\s+(\S+)")
    facts["EFA installer"] = _first_line_version(
        root / "opt/amazon/efa_installed_packages", r"installer version:\s*(\S+)"
    )
    facts["instance type"] = options.instance.name if options.instance else None
    return facts


def node_document(node: str, options: Options, results: list[Result]) -> dict:
    failed = [r.id for r in results if r.status == "FAIL"]
    return {
        "tool": TOOL,
        "version": __version__,
        "node": node,
        "facts": header_facts(node, options),
        "checks": [r.to_dict() for r in results],
        "ok": not failed,
        "failed": failed,
    }


def node_lines(doc: dict) -> list[str]:
    lines = output_contract.header(TOOL, __version__, doc["facts"])
    rows = [(c["id"], c["title"], c["status"], c["detail"]) for c in doc["checks"]]
    lines += output_contract.table(["ID", "CHECK", "STATUS", "DETAIL"], rows, left=3, free_text_last=True)
    failed = [f"{c['id']}: {c['detail']}" for c in doc["checks"] if c["status"] == "FAIL"]
    return lines + output_contract.footer(failed, f"Node {doc['node']}")


def summarize(folder: Path, expected: list[str]) -> int:
    """One row per node from ``folder/*.json``; missing expected nodes fail."""
    docs = {}
    if not folder.is_dir():
        raise inputs.InputError(
            f"--summarize {folder} is not a folder; pass the --json-dir the nodes wrote to"
        )
    for path in sorted(folder.glob("*.json")):
        doc = inputs.read_json(path, "result")
        if not (
            isinstance(doc.get("node"), str)
            and isinstance(doc.get("ok"), bool)
            and isinstance(doc.get("failed"), list)
        ):
            raise inputs.InputError(
                f"result {path} is not validate_env.py output (node, ok, failed); keep only "
                "validate_env.py --json-dir files in that folder"
            )
        docs[doc["node"]] = doc
    if not docs and not expected:
        raise ValueError(
            f"no results in {folder}; run validate_env.py --json-dir {folder} on each node first"
        )
    rows, failed = [], []
    for node in sorted(set(docs) | set(expected)):
        doc = docs.get(node)
        if doc is None:
            rows.append((node, "MISSING", "no result: the validation did not run there"))
            failed.append(f"{node}: no result")
        else:
            rows.append((node, "OK" if doc["ok"] else "FAILED", ", ".join(doc["failed"]) or "-"))
            if not doc["ok"]:
                failed.append(f"{node}: {', '.join(doc['failed'])}")
    lines = output_contract.header(f"{TOOL} summary", __version__, {"nodes": len(rows), "results": folder})
    lines += output_contract.table(["NODE", "VERDICT", "FAILED CHECKS"], rows, left=2, free_text_last=True)
    print("\n".join(lines + output_contract.footer(failed, "Allocation")))
    return 1 if failed else 0


def _expect_gpus(args: argparse.Namespace) -> int | None:
    if args.expect_gpus is not None:
        value = args.expect_gpus
    elif os.environ.get(EXPECT_GPUS_ENV):
        raw = os.environ[EXPECT_GPUS_ENV]
        if not raw.isdigit():
            raise ValueError(f"{EXPECT_GPUS_ENV}={raw!r} must be a whole number of GPUs")
        value = int(raw)
    else:
        return None
    if value < 0:
        raise ValueError(f"--expect-gpus={value} must be >= 0")
    return value


def validate(args: argparse.Namespace) -> int:
    node = args.node or os.environ.get("SLURMD_NODENAME") or socket.gethostname().split(".")[0]
    if args.local_ranks is not None and args.local_ranks < 1:
        raise ValueError(f"--local-ranks={args.local_ranks} must be at least 1")
    options = Options(
        instance=instance_types.resolve(args.instance_type, args.instance_types, root=args.root),
        expect_gpus=_expect_gpus(args),
        local_ranks=args.local_ranks,
        root=args.root,
    )
    doc = node_document(node, options, run_checks(options, {s.upper() for s in args.skip}))
    if args.json_dir:
        args.json_dir.mkdir(parents=True, exist_ok=True)
        (args.json_dir / f"{node}.json").write_text(output_contract.to_json(doc))
    sys.stdout.write(output_contract.to_json(doc) if args.json else "\n".join(node_lines(doc)) + "\n")
    return 0 if doc["ok"] else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; bad input is one line on stderr and exit 2."""
    args = _parser().parse_args(argv)
    try:
        if args.summarize is not None:
            return summarize(args.summarize, [n for n in args.expect_nodes.split(",") if n])
        return validate(args)
    except ValueError as exc:  # InstanceTypesError included
        print(f"error: {exc}", file=sys.stderr)
        return 2
