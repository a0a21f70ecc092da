#!/usr/bin/env python3
"""Prometheus file-based discovery targets for a Slurm cluster, from ``sinfo``.

Writes one JSON file per scrape job into ``--out`` (the ``targets/`` folder that
``prometheus/prometheus.yml`` reads with ``file_sd_configs``; Prometheus picks up changes by itself):

- ``node.json``  every node's node exporter       (``<NodeAddr>:9100``)
- ``efa.json``   every node's EFA exporter        (``<NodeAddr>:9109``; 0 devices on non-EFA nodes)
- ``dcgm.json``  the DCGM exporter of nodes with a ``gpu`` GRES (``<NodeAddr>:9400``)
- ``slurm.json`` the Slurm exporter on the head node (``--slurm-exporter``, default localhost:8080)

Each node is its own target group labelled ``instance=<NodeName>``, so the series of one node from
every exporter share one ``instance`` value. Nodes that are powered down or powering up or down by
Slurm's power saving (ParallelCluster's dynamic nodes: state suffixes ``~ # % !``) are left out,
so they do not show as down; nodes that are DOWN or DRAINED stay in.

Run it on the head node whenever nodes change, e.g. from cron every minute::

    python3 slurm_targets.py --out prometheus/targets

Exit status 2 when ``sinfo`` fails or prints something unexpected (one line says what).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

SINFO = ["sinfo", "--Node", "--noheader", "--format=%N|%o|%G|%t"]
POWER_SAVING_SUFFIXES = ("~", "#", "%", "!")
DEFAULT_PORTS = {"node": 9100, "efa": 9109, "dcgm": 9400}


class TargetsError(RuntimeError):
    """sinfo failed or printed something this tool cannot read; the message says what."""


@dataclass(frozen=True)
class Node:
    name: str
    addr: str
    gres: str
    state: str

    @property
    def has_gpus(self) -> bool:
        return any(item.startswith("gpu") for item in self.gres.split(","))

    @property
    def powered(self) -> bool:
        """False for nodes that Slurm's power saving has (or is about to have) powered off."""
        return not self.state.endswith(POWER_SAVING_SUFFIXES)


def parse_sinfo(text: str) -> list[Node]:
    """Nodes of ``sinfo --Node --format=%N|%o|%G|%t`` output, once each (a node can be in two partitions)."""
    nodes: dict[str, Node] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.strip().split("|")
        if len(fields) != 4 or not all(fields[:2]):
            raise TargetsError(f"sinfo line {number} is not 'name|addr|gres|state': {line.strip()[:80]!r}")
        nodes.setdefault(fields[0], Node(*fields))
    return list(nodes.values())


def run_sinfo() -> str:
    """The output of ``sinfo`` for this cluster (``SLURM_CONF`` and PATH as in the environment)."""
    try:
        result = subprocess.run(SINFO, capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError:
        raise TargetsError("sinfo not found; run this on a Slurm head node (or add Slurm to PATH)") from None
    if result.returncode != 0:
        raise TargetsError(f"sinfo failed (exit {result.returncode}): {result.stderr.strip()[:200]}")
    return result.stdout


def node_groups(nodes: list[Node], port: int, gpus_only: bool = False) -> list[dict]:
    """One target group per powered node: ``{"targets": ["addr:port"], "labels": {"instance": name}}``."""
    return [
        {"targets": [f"{node.addr}:{port}"], "labels": {"instance": node.name}}
        for node in nodes
        if node.powered and (node.has_gpus or not gpus_only)
    ]


def all_groups(nodes: list[Node], ports: dict[str, int], slurm_exporter: str) -> dict[str, list[dict]]:
    """Target groups for every job of prometheus.yml."""
    return {
        "node": node_groups(nodes, ports["node"]),
        "efa": node_groups(nodes, ports["efa"]),
        "dcgm": node_groups(nodes, ports["dcgm"], gpus_only=True),
        "slurm": [{"targets": [slurm_exporter], "labels": {}}],
    }


def write_json_atomically(path: Path, content: object) -> None:
    """Prometheus watches these files: it must never read a half-written one."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as out:
        json.dump(content, out, indent=2)
        out.write("\n")
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("prometheus/targets"), help="default %(default)s")
    parser.add_argument("--slurm-exporter", default="localhost:8080", help="host:port (default %(default)s)")
    for job, port in DEFAULT_PORTS.items():
        parser.add_argument(f"--{job}-port", type=tcp_port, default=port, help=f"default {port}")
    return parser.parse_args(argv)


def tcp_port(text: str) -> int:
    """A TCP port, 1-65535 (argparse names the flag when this refuses a value)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-65535)")
    return port


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.out.is_dir():
        print(
            f"error: --out {args.out} is not a folder; create it or pass prometheus.yml's targets/",
            file=sys.stderr,
        )
        return 2
    try:
        nodes = parse_sinfo(run_sinfo())
    except TargetsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ports = {job: getattr(args, f"{job}_port") for job in DEFAULT_PORTS}
    for job, groups in all_groups(nodes, ports, args.slurm_exporter).items():
        write_json_atomically(args.out / f"{job}.json", groups)
    powered = sum(node.powered for node in nodes)
    gpu_nodes = sum(node.powered and node.has_gpus for node in nodes)
    print(f"slurm-targets: {powered} of {len(nodes)} nodes ({gpu_nodes} with GPUs) -> {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
