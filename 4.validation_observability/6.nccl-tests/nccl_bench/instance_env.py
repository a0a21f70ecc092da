"""The EFA/NCCL environment an instance type needs, from instance-types.yaml, for sbatch and manifests.

    eval "$(python -m nccl_bench.instance_env --instance-type p5.48xlarge)"       # sbatch: exports
    python -m nccl_bench.instance_env --instance-type g5.48xlarge --format values   # make k8s: NAME=value

Only what the instance needs is set (FACTS: never FI_EFA_USE_DEVICE_RDMA=1 without GPUDirect RDMA,
where libfabric aborts; no FI_* at all without EFA). The instance type comes from the flag,
$INSTANCE_TYPE, or the node's DMI product name.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence

from nccl_bench import instance_types


def efa_nccl_environment(
    facts: instance_types.InstanceType, table: dict[str, dict[str, str]], kubernetes: bool = False
) -> dict[str, str]:
    """The variables for ``facts``: counts, then instance-types.yaml's EFA/NCCL groups that apply to it
    (the nccl-tests image has the aws-ofi-nccl tuner)."""
    env = {
        "INSTANCE_TYPE": facts.name,
        "GPUS_PER_NODE": str(facts.gpus),
        "EFA_PER_NODE": str(facts.efa_devices),
        "NCCL_SOCKET_IFNAME": table["socket_ifname"]["kubernetes" if kubernetes else "slurm"],
    }
    if facts.efa_devices == 0:
        return env
    env |= table["efa"] | table["tuner"]
    if facts.device_rdma:
        env |= table["device_rdma"]
    return env


def kubernetes_values(facts: instance_types.InstanceType) -> dict[str, str]:
    """The MPIJob template's per-instance placeholders."""
    return {
        "GPU_PER_NODE": str(facts.gpus),
        "EFA_PER_NODE": str(facts.efa_devices),
        "DEVICE_RDMA": "1" if facts.device_rdma else "0",
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Print the environment as ``export`` lines (default) or ``NAME=value`` words (``--format values``)."""
    parser = argparse.ArgumentParser(
        prog="python -m nccl_bench.instance_env", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--instance-type", default=None, help=f"default: ${instance_types.TYPE_ENV} or DMI")
    parser.add_argument("--instance-types", default=None, help="path of instance-types.yaml")
    parser.add_argument("--format", choices=["exports", "values"], default="exports")
    parser.add_argument("--kubernetes", action="store_true", help="NCCL_SOCKET_IFNAME=^lo (pod networking)")
    args = parser.parse_args(argv)
    try:
        facts = instance_types.resolve(args.instance_type, args.instance_types)
        table = instance_types.environment_table(instance_types.find_file(args.instance_types))
    except instance_types.InstanceTypesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if facts is None:
        print(
            f"error: instance type unknown; pass --instance-type or set {instance_types.TYPE_ENV} "
            "(e.g. p5.48xlarge)",
            file=sys.stderr,
        )
        return 2
    if args.format == "values":
        print(" ".join(f"{name}={value}" for name, value in kubernetes_values(facts).items()))
    else:
        for name, value in efa_nccl_environment(facts, table, args.kubernetes).items():
            print(f"export {name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
