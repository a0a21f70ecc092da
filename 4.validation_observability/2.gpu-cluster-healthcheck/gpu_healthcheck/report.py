"""The node report (header, table, footer; JSON) and the aggregate over many nodes."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path

from gpu_healthcheck import __version__, inputs, output_contract
from gpu_healthcheck.checks import CheckResult, Context, worst

TOOL = "gpu-healthcheck"
_EFA_INSTALLER = re.compile(r"EFA installer version:\s*(\S+)")


def efa_installer_version(root: Path) -> str | None:
    """From /opt/amazon/efa_installed_packages (None when EFA is not installed)."""
    try:
        text = (root / "opt/amazon/efa_installed_packages").read_text()
    except OSError:
        return None
    match = _EFA_INSTALLER.search(text)
    return match.group(1) if match else None


def header_facts(node: str, ctx: Context) -> dict[str, object]:
    """What the header lists: node, instance, GPUs and driver (if GPU001 ran), EFA installer."""
    rows = ctx.learned.get("gpus")
    gpus = driver = None
    if isinstance(rows, list) and rows:
        gpus = f"{len(rows)}x {rows[0].get('name')}"
        driver = rows[0].get("driver_version")
    instance = ctx.options.instance
    return {
        "node": node,
        "instance type": instance.name if instance else None,
        "GPUs": gpus,
        "driver": driver,
        "EFA installer": efa_installer_version(ctx.options.root),
    }


def failures(results: Sequence[CheckResult]) -> list[CheckResult]:
    """FAIL results, most severe first."""
    order = {"isolate": 0, "reboot": 1}
    return sorted((r for r in results if r.status == "FAIL"), key=lambda r: order.get(r.severity, 2))


def document(node: str, ctx: Context, results: Sequence[CheckResult]) -> dict:
    """The JSON a node writes (and ``aggregate`` reads)."""
    failed = failures(results)
    return {
        "tool": TOOL,
        "version": __version__,
        "node": node,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "facts": header_facts(node, ctx),
        "checks": [result.to_dict() for result in results],
        "ok": not failed,
        "action": worst([r.severity for r in results if r.severity != "-"]),
        "failed": [result.id for result in failed],
    }


def node_lines(doc: dict) -> list[str]:
    """The human report of one node."""
    lines = output_contract.header(TOOL, __version__, doc["facts"])
    rows = [(c["id"], c["title"], c["status"], c["severity"], c["detail"]) for c in doc["checks"]]
    lines += output_contract.table(
        ["ID", "CHECK", "STATUS", "ACTION", "DETAIL"], rows, left=4, free_text_last=True
    )
    lines.append(f"# Action : {doc['action']}")
    failed = [f"{c['id']} {c['severity']}: {c['detail']}" for c in doc["checks"] if c["status"] == "FAIL"]
    return lines + output_contract.footer(failed, f"Node {doc['node']}")


def drain_reason(results: Sequence[CheckResult]) -> str:
    """``healthcheck GPU002 isolate (+1 more): ...``: the most severe failure and a count of the others."""
    failed = failures(results)
    first = failed[0]
    more = f" (+{len(failed) - 1} more)" if len(failed) > 1 else ""
    return f"healthcheck {first.id} {first.severity}{more}: {first.detail}"


def load_results(paths: Sequence[Path]) -> list[dict]:
    """Node documents written with --json-out; ValueError naming a file that is not one."""
    documents = []
    for path in paths:
        data = inputs.read_json(path, "result")
        if data.get("tool") != TOOL or not isinstance(data.get("node"), str):
            raise ValueError(
                f"{path} is not a {TOOL} result; pass files written by `healthcheck.py run --json-out`"
            )
        documents.append(data)
    return documents


def aggregate_lines(documents: Sequence[dict], expected: Sequence[str]) -> tuple[list[str], bool]:
    """One row per node and a footer; nodes in ``expected`` without a result count as failures."""
    by_node = {doc["node"]: doc for doc in documents}
    rows, failed = [], []
    for node in sorted(set(by_node) | set(expected)):
        doc = by_node.get(node)
        if doc is None:
            rows.append((node, "MISSING", "-", "no result: the check did not run there"))
            failed.append(f"{node}: no result")
            continue
        verdict = "OK" if doc["ok"] else "FAILED"
        rows.append((node, verdict, doc["action"], ", ".join(doc["failed"]) or "-"))
        if not doc["ok"]:
            failed.append(f"{node}: {doc['action']} ({', '.join(doc['failed'])})")
    lines = output_contract.header(f"{TOOL} aggregate", __version__, {"nodes": len(rows)})
    lines += output_contract.table(
        ["NODE", "VERDICT", "ACTION", "FAILED CHECKS"], rows, left=3, free_text_last=True
    )
    return lines + output_contract.footer(failed, "Cluster"), not failed
