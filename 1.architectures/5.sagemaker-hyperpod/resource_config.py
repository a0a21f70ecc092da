"""Write a running cluster's ``resource_config.json`` (what HyperPod gives every node) from the SageMaker API.

    python3 resource_config.py --cluster-name ml-hp --out build/resource_config.json

HyperPod writes ``/opt/ml/config/resource_config.json`` on each node: the instance groups with their
instances' names and private IPs, which the lifecycle program reads to find each node's role and to
write Slurm's node and partition lines. This rebuilds the fields the program reads from
``describe-cluster``, ``list-cluster-nodes`` and ``describe-cluster-node``, so the program's plan
(``lifecycle.py --dry-run``) and Slurm lines (``--print-slurm-conf``) can be seen for the cluster as it
runs, from a laptop: before an ``update-cluster-software`` with changed scripts, or to see the node names
that ``sinfo`` will show. The cluster must be ``InService`` (nodes have no IP before).

Bad input (no such cluster, a cluster not in service, an unwritable ``--out``) ends with one line on
stderr naming it and exit status 2, and nothing is written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

# SageMaker's patterns for a cluster name and a cluster ARN (CreateCluster / DescribeCluster).
CLUSTER_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
CLUSTER_NAME_MAX = 63
CLUSTER_ARN = re.compile(r"arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:cluster/[a-z0-9]{12}")


class LayoutError(Exception):
    """Bad input; the message is one line naming it and the fix."""


def cluster_layout(sagemaker: Any, cluster: str) -> dict[str, Any]:
    """The resource_config.json document of ``cluster`` (a name or an ARN)."""
    try:
        described = sagemaker.describe_cluster(ClusterName=cluster)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in {"ValidationException", "ResourceNotFound"}:
            raise LayoutError(
                f"cluster {cluster!r} not found in region {sagemaker.meta.region_name}: check --cluster-name "
                "(`aws sagemaker list-clusters`) and --region"
            ) from None
        raise
    status = described["ClusterStatus"]
    if status != "InService":
        raise LayoutError(
            f"cluster {cluster!r} is {status}: its nodes have their addresses once it is InService; "
            f"wait with `aws sagemaker describe-cluster --cluster-name {cluster} --query ClusterStatus`"
        )
    nodes: dict[str, list[dict[str, Any]]] = {}
    for page in sagemaker.get_paginator("list_cluster_nodes").paginate(ClusterName=cluster):
        for summary in page["ClusterNodeSummaries"]:
            nodes.setdefault(summary["InstanceGroupName"], []).append(summary)
    groups = []
    for group in described["InstanceGroups"]:
        name = group["InstanceGroupName"]
        instances = []
        for number, summary in enumerate(sorted(nodes.get(name, []), key=_launch_order), start=1):
            details = sagemaker.describe_cluster_node(ClusterName=cluster, NodeId=summary["InstanceId"])
            ip = details["NodeDetails"].get("PrivatePrimaryIp")
            if not ip:
                raise LayoutError(
                    f"node {summary['InstanceId']} of group {name} has no PrivatePrimaryIp yet; "
                    "rerun when `aws sagemaker list-cluster-nodes` shows it Running"
                )
            instances.append(
                {
                    "InstanceName": f"{name}-{number}",
                    "InstanceId": summary["InstanceId"],
                    "CustomerIpAddress": ip,
                }
            )
        groups.append({"Name": name, "InstanceType": group["InstanceType"], "Instances": instances})
    return {
        "ClusterConfig": {"ClusterArn": described["ClusterArn"], "ClusterName": described["ClusterName"]},
        "InstanceGroups": groups,
    }


def _launch_order(summary: dict[str, Any]) -> tuple[str, str]:
    return (str(summary.get("LaunchTime", "")), summary["InstanceId"])


def input_problem(cluster_name: str, out: Path) -> str | None:
    """What is wrong with the arguments before any AWS call (SageMaker's own name and ARN patterns)."""
    named = len(cluster_name) <= CLUSTER_NAME_MAX and CLUSTER_NAME.fullmatch(cluster_name)
    if not (named or CLUSTER_ARN.fullmatch(cluster_name)):
        return (
            f"--cluster-name {cluster_name[:80]!r} is neither a cluster name (letters, digits and inner "
            "hyphens, at most 63) nor a cluster ARN; pass the name create-cluster was given"
        )
    if out.is_dir():
        return f"cannot write --out {out}: it is a folder; pass a file such as {out / 'resource_config.json'}"
    blocking = next((parent for parent in out.parents if parent.exists() and not parent.is_dir()), None)
    if blocking is not None:
        return f"cannot write --out {out}: {blocking} is a file, not a folder; pass a writable path"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cluster-name", required=True, help="the cluster's name or ARN")
    parser.add_argument("--region", help="AWS region of the cluster (default: your AWS configuration)")
    parser.add_argument("--out", type=Path, default=Path("build/resource_config.json"), help="%(default)s")
    args = parser.parse_args(argv)
    problem = input_problem(args.cluster_name, args.out)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        session = boto3.session.Session(region_name=args.region)
        if not session.region_name:
            raise LayoutError("no AWS region configured: pass --region or set AWS_DEFAULT_REGION")
        document = cluster_layout(session.client("sagemaker"), args.cluster_name)
    except LayoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as exc:
        print(f"error: cannot read cluster {args.cluster_name!r}: {exc}", file=sys.stderr)
        return 2
    temporary = args.out.with_name(args.out.name + ".tmp")
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(document, indent=2) + "\n")
        temporary.replace(args.out)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        print(f"error: cannot write --out {args.out}: {exc.strerror}; pass a writable path", file=sys.stderr)
        return 2
    for group in document["InstanceGroups"]:
        addresses = " ".join(item["CustomerIpAddress"] for item in group["Instances"])
        print(f"{group['Name']} ({group['InstanceType']}): {addresses}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
