"""Checks of a live HyperPod node, with stable IDs and the tools' output contract.

HP001 docker      docker on PATH and answering
HP002 enroot      enroot on PATH; the folders of ENROOT_*_PATH in /etc/enroot/enroot.conf can be made
HP003 fsx         /fsx mounted as Lustre
HP004 pyxis       pyxis in Slurm's plugin stack and srun offering --container-image
HP005 slurmd      a slurmd running and its node not DOWN/DRAIN (SKIP on the controller)
HP006 home        /home on shared storage (NFS/Lustre)

A check that cannot apply on this node reports SKIP with the reason, never PASS.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from . import __version__, output_contract
from .runner import SystemRunner

NVME = "/opt/dlami/nvme"


@dataclass(frozen=True)
class Result:
    """One check's verdict: PASS, FAIL or SKIP, and why."""

    id: str
    name: str
    verdict: str
    detail: str


@dataclass
class Node:
    """What the checks read: the runner (root + commands), Slurm prefix, and this node's Slurm name."""

    runner: SystemRunner
    slurm_prefix: str
    node_name: str

    def read(self, absolute: str) -> str:
        path = self.runner.path(absolute)
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""

    def mount_type(self, mountpoint: str) -> str | None:
        """The file system type mounted at ``mountpoint`` (last mount wins), or None."""
        found = None
        for line in self.read("/proc/mounts").splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[1] == mountpoint:
                found = fields[2]
        return found

    def processes(self, name: str) -> list[int]:
        """PIDs whose comm is ``name`` under the runner's /proc."""
        pids = []
        for entry in self.runner.path("/proc").glob("[0-9]*"):
            try:
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
            except OSError:
                continue
        return pids


def check_docker(node: Node) -> Result:
    if not node.runner.which("docker"):
        return Result(
            "HP001", "docker", "FAIL", "docker not on PATH; rerun the lifecycle step install_docker"
        )
    done = node.runner.run(["docker", "info", "--format", "{{.ServerVersion}}"])
    if done.returncode != 0:
        return Result("HP001", "docker", "FAIL", "docker daemon not answering; `systemctl start docker`")
    return Result("HP001", "docker", "PASS", f"server {done.stdout.strip()}")


def check_enroot(node: Node) -> Result:
    if not node.runner.which("enroot"):
        return Result(
            "HP002", "enroot", "FAIL", "enroot not on PATH; rerun the lifecycle step install_enroot"
        )
    paths = {}
    for line in node.read("/etc/enroot/enroot.conf").splitlines():
        key, _, value = line.partition(" ")
        if key in ("ENROOT_RUNTIME_PATH", "ENROOT_CACHE_PATH", "ENROOT_DATA_PATH"):
            paths[key] = value.strip()
    if len(paths) < 3:
        return Result(
            "HP002", "enroot", "FAIL", "/etc/enroot/enroot.conf lacks ENROOT_RUNTIME/CACHE/DATA_PATH"
        )
    missing = [f"{key}={value}" for key, value in paths.items() if not _creatable(node, value)]
    if missing:
        return Result("HP002", "enroot", "FAIL", f"base folder missing for {', '.join(missing)}")
    return Result("HP002", "enroot", "PASS", f"runtime {paths['ENROOT_RUNTIME_PATH']}")


def _creatable(node: Node, value: str) -> bool:
    """Whether enroot can make ``value``: its fixed part (before the first ``$``) lies under an
    existing folder, and a path on the DLAMI's local NVMe needs that volume mounted."""
    fixed = value.split("$", maxsplit=1)[0].rstrip("/") or "/"
    if fixed.startswith(NVME) and not node.runner.path(NVME).is_dir():
        return False
    path = node.runner.path(fixed)
    while not path.exists() and path != path.parent:
        path = path.parent
    return path.is_dir()


def check_fsx(node: Node) -> Result:
    kind = node.mount_type("/fsx")
    if kind == "lustre":
        return Result("HP003", "fsx", "PASS", "/fsx is Lustre")
    what = f"/fsx is {kind}, not Lustre" if kind else "/fsx is not mounted"
    return Result("HP003", "fsx", "FAIL", f"{what}; rerun the lifecycle step mount_fsx (check fsx_dns_name)")


def check_pyxis(node: Node) -> Result:
    etc = f"{node.slurm_prefix}/etc"
    stack = node.read(f"{etc}/plugstack.conf") + node.read(f"{etc}/plugstack.conf.d/pyxis.conf")
    if "spank_pyxis.so" not in stack:
        return Result(
            "HP004",
            "pyxis",
            "FAIL",
            f"spank_pyxis.so not in {etc}/plugstack.conf(.d); srun ignores --container-image",
        )
    if not node.runner.which("srun"):
        return Result("HP004", "pyxis", "SKIP", "srun not on PATH here, so the loaded plugin cannot be asked")
    if "--container-image" not in node.runner.run(["srun", "--help"]).stdout:
        return Result("HP004", "pyxis", "FAIL", "srun --help has no --container-image: pyxis is not loaded")
    return Result("HP004", "pyxis", "PASS", "srun offers --container-image")


def check_slurmd(node: Node) -> Result:
    if not node.processes("slurmd"):
        if node.processes("slurmctld"):
            return Result("HP005", "slurmd", "SKIP", "controller node: runs slurmctld, not slurmd")
        return Result("HP005", "slurmd", "FAIL", "no slurmd running; `systemctl status slurmd`")
    if not node.runner.which("scontrol"):
        return Result("HP005", "slurmd", "PASS", "slurmd running (scontrol not on PATH: state not asked)")
    done = node.runner.run(["scontrol", "show", "node", node.node_name, "--oneliner"])
    state = next((f.split("=", 1)[1] for f in done.stdout.split() if f.startswith("State=")), "")
    if done.returncode != 0 or not state:
        return Result(
            "HP005", "slurmd", "FAIL", f"slurmctld does not know node {node.node_name}; pass --node-name?"
        )
    if any(bad in state for bad in ("DOWN", "DRAIN", "FAIL")):
        return Result("HP005", "slurmd", "FAIL", f"node {node.node_name} is {state}")
    return Result("HP005", "slurmd", "PASS", f"node {node.node_name} {state}")


def check_home(node: Node) -> Result:
    kind = node.mount_type("/home")
    if kind in ("nfs", "nfs4", "lustre"):
        return Result("HP006", "home", "PASS", f"/home on {kind}")
    return Result("HP006", "home", "FAIL", "/home is on the local disk; mount OpenZFS (fsx_openzfs_dns_name)")


CHECKS: list[Callable[[Node], Result]] = [
    check_docker,
    check_enroot,
    check_fsx,
    check_pyxis,
    check_slurmd,
    check_home,
]


def report(results: Sequence[Result], node: Node) -> str:
    """Header, fixed-width table and OK/FAILED footer."""
    facts = {"host": socket.gethostname(), "node": node.node_name, "slurm prefix": node.slurm_prefix}
    lines = output_contract.header("hyperpod-precheck", __version__, facts)
    lines += output_contract.table(
        ["id", "check", "result", "detail"],
        [asdict(r).values() for r in results],
        left=3,
        free_text_last=True,
    )
    failures = [f"{r.id} {r.name}: {r.detail}" for r in results if r.verdict == "FAIL"]
    counts = {v: sum(r.verdict == v for r in results) for v in ("PASS", "FAIL", "SKIP")}
    summary = f"{len(results)} checks: {counts['PASS']} pass, {counts['FAIL']} fail, {counts['SKIP']} skip"
    return "\n".join(lines + output_contract.footer(failures, summary)) + "\n"


def main(argv: Sequence[str] | None = None, runner: SystemRunner | None = None) -> int:
    """Run the checks; exit 1 when any fails."""
    parser = argparse.ArgumentParser(prog="precheck.py", description="Check a live HyperPod node.")
    parser.add_argument("--root", default="/", help="file system root to read (default /)")
    parser.add_argument("--slurm-prefix", default="/opt/slurm")
    parser.add_argument("--node-name", default=socket.gethostname().split(".")[0], help="Slurm node name")
    parser.add_argument("--checks", help="comma-separated IDs or names (default all)")
    parser.add_argument("--json", action="store_true", help="machine output")
    args = parser.parse_args(argv)
    if not Path(args.root).is_dir():
        parser.error(f"--root {args.root!r} is not a folder; give the file system root to read (default /)")
    node = Node(runner or SystemRunner(args.root), args.slurm_prefix, args.node_name)
    wanted = set(args.checks.split(",")) if args.checks is not None else None
    results = [check(node) for check in CHECKS]
    if wanted is not None:
        results = [r for r in results if r.id in wanted or r.name in wanted]
        if not results:
            print(
                f"error: --checks {args.checks!r} matches no check; use IDs HP001..HP006 or names",
                file=sys.stderr,
            )
            return 2
    failed = any(r.verdict == "FAIL" for r in results)
    if args.json:
        document = {
            "tool": "hyperpod-precheck",
            "version": __version__,
            "ok": not failed,
            "results": [asdict(r) for r in results],
        }
        sys.stdout.write(output_contract.to_json(document))
    else:
        sys.stdout.write(report(results, node))
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
