#!/usr/bin/env python3
"""The head node's collector configuration for Amazon Managed Service for Prometheus.

Takes ``prometheus/prometheus.yml`` (the scrape jobs of the self-hosted setup, unchanged) and adds a
``remote_write`` to the workspace with SigV4 signing, for a Prometheus in agent mode
(``prometheus --enable-feature=agent``): it scrapes the cluster and forwards everything, keeping no
database and evaluating no rules (the workspace evaluates ``rules/alerts.yml``; see the README).
The URL is the ``RemoteWriteUrl`` output of ``managed-prometheus-grafana.yaml``; the region is read
from it. File-discovery paths are made absolute so the output can live anywhere::

    python3 managed/amp_remote_write.py --remote-write-url "$URL" --out /etc/prometheus/agent.yml

Exit status 2 on bad input, with one line naming the value and the fix.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
DEFAULT_CONFIG = HERE.parent / "prometheus" / "prometheus.yml"
REMOTE_WRITE_URL = re.compile(
    r"^https://aps-workspaces\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com"
    r"/workspaces/ws-[0-9a-zA-Z-]+/api/v1/remote_write$"
)
# Larger batches than Prometheus's defaults, for clusters of hundreds of nodes.
QUEUE_CONFIG = {"max_samples_per_send": 1000, "max_shards": 200, "capacity": 2500}


class InputError(ValueError):
    """Bad input; the message names the value and the fix."""


def region_of(url: str) -> str:
    """The AWS region of a workspace remote-write URL; InputError when it is not one."""
    match = REMOTE_WRITE_URL.match(url)
    if not match:
        raise InputError(
            f"--remote-write-url {url!r} is not a workspace remote-write URL "
            "(https://aps-workspaces.<region>.amazonaws.com/workspaces/ws-.../api/v1/remote_write); "
            "pass the RemoteWriteUrl output of the managed-prometheus-grafana stack"
        )
    return match.group("region")


def absolute_file_sd(config: dict, base: Path) -> None:
    """Make every file_sd_configs path absolute, relative to the source config's folder."""
    for job in config.get("scrape_configs", []):
        for sd in job.get("file_sd_configs", []):
            sd["files"] = [
                str((base / name).resolve()) if not Path(name).is_absolute() else name for name in sd["files"]
            ]


def agent_config(source: dict, base: Path, url: str) -> dict:
    """``source`` as an agent config that remote-writes to ``url``."""
    config = {key: value for key, value in source.items() if key not in {"rule_files", "alerting"}}
    config["global"] = {k: v for k, v in config.get("global", {}).items() if k != "evaluation_interval"}
    absolute_file_sd(config, base)
    config["remote_write"] = [
        {"url": url, "sigv4": {"region": region_of(url)}, "queue_config": dict(QUEUE_CONFIG)}
    ]
    return config


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--remote-write-url", required=True, help="RemoteWriteUrl output of the stack")
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help="default: ../prometheus/prometheus.yml"
    )
    parser.add_argument("--out", type=Path, required=True, help="where to write the agent configuration")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if not args.config.is_file():
            raise InputError(f"--config {args.config} does not exist; pass the self-hosted prometheus.yml")
        source = yaml.safe_load(args.config.read_text())
        config = agent_config(source, args.config.resolve().parent, args.remote_write_url)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    header = (
        f"# Written by managed/amp_remote_write.py from {args.config.name}; for --enable-feature=agent.\n"
    )
    args.out.write_text(header + yaml.safe_dump(config, sort_keys=False))
    print(f"amp-remote-write: wrote {args.out} (remote_write to {config['remote_write'][0]['url']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
