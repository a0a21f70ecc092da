#!/usr/bin/env python3
"""Report the EFA/NCCL software stack of a host, or of a container image: which versions, found where.

    python3 efa-versions.py                          # this host
    python3 efa-versions.py --image nccl-tests:dev   # this host and the image side by side (docker)
    python3 efa-versions.py --require efa-installer,libfabric,aws-ofi-nccl,nccl --json

Components: EFA installer, libfabric, aws-ofi-nccl, NCCL (every copy found: system, /opt, pip wheels),
NVIDIA driver, CUDA toolkit, GDRCopy, the efa kernel module. A missing component is reported as
"not found" with the places looked at; it is a failure only when named in --require (or
$EFA_VERSIONS_REQUIRE). Exit status: 0 OK, 1 a required component is missing, 2 bad input.
Standard library only, so it runs on any host and inside any image with python3.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

VERSION = "0.1.0"
TOOL = "efa-versions"
REQUIRE_ENV = "EFA_VERSIONS_REQUIRE"
RUNTIMES = ("docker", "podman", "enroot")
COMMAND_TIMEOUT_S = 30


@dataclass
class Component:
    """One component: versions found (with where), or the places looked at."""

    name: str
    found: list[tuple[str, str]] = field(default_factory=list)  # (version, source)
    looked: list[str] = field(default_factory=list)

    @property
    def version(self) -> str | None:
        """The first version found; several different ones are listed in ``summary``."""
        return self.found[0][0] if self.found else None

    def summary(self) -> str:
        versions = sorted({version for version, _ in self.found})
        return ", ".join(versions) if versions else "not found"

    def sources(self) -> str:
        if self.found:
            return "; ".join(
                f"{version} {source}" if len(self.found) > 1 else source for version, source in self.found
            )
        return "looked in " + ", ".join(self.looked)


class Host:
    """A filesystem root to read (``/``, or a mounted image) and the commands it may run."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, relative: str) -> Path:
        return self.root / relative.lstrip("/")

    def read(self, relative: str) -> str | None:
        try:
            return self.path(relative).read_text(errors="replace")
        except OSError:
            return None

    def glob(self, pattern: str) -> list[Path]:
        return sorted(self.root.glob(pattern.lstrip("/")))

    def command(self, argv: Sequence[str], known_paths: Sequence[str] = ()) -> str | None:
        """Run a program at one of ``known_paths`` (or on PATH) of this host. Only for ``/``: programs in an
        inspected tree (``--root``, a mounted image) are never executed, since they run on this host with
        its privileges; there the files and the package database say the versions."""
        if self.root != Path("/"):
            return None
        candidates = [self.path(p) for p in known_paths]
        program = next((str(p) for p in candidates if p.is_file() and os.access(p, os.X_OK)), None)
        if program is None:
            program = shutil.which(argv[0])
        if program is None:
            return None
        try:
            done = subprocess.run(
                [program, *argv[1:]], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout + done.stderr if done.returncode == 0 else None


def _search(component: Component, source: str, text: str | None, pattern: str) -> bool:
    """Record the first group of ``pattern`` in ``text`` as a version from ``source``."""
    component.looked.append(source)
    match = re.search(pattern, text or "", re.MULTILINE)
    if match:
        component.found.append((match.group(1), source))
    return bool(match)


def efa_installer(host: Host) -> Component:
    component = Component("efa-installer")
    _search(
        component,
        "/opt/amazon/efa_installed_packages",
        host.read("/opt/amazon/efa_installed_packages"),
        r"EFA installer version:\s*(\S+)",
    )
    return component


# A package's version in dpkg's status file (Debian and Ubuntu hosts and images).
DPKG_VERSION = r"^Package: {package}\n(?:.+\n)*?Version:\s*(\S+)"


def libfabric(host: Host) -> Component:
    component = Component("libfabric")
    for pc in ("/opt/amazon/efa/lib/pkgconfig/libfabric.pc", "/opt/amazon/efa/lib64/pkgconfig/libfabric.pc"):
        if _search(component, pc, host.read(pc), r"^Version:\s*(\S+)"):
            return component
    status = host.read("/var/lib/dpkg/status")
    if _search(component, "/var/lib/dpkg/status", status, DPKG_VERSION.format(package=r"libfabric1?-aws")):
        return component
    fi_info = host.command(["fi_info", "--version"], ["/opt/amazon/efa/bin/fi_info"])
    _search(component, "fi_info --version", fi_info, r"^libfabric:\s*(\S+)")
    return component


def aws_ofi_nccl(host: Host) -> Component:
    component = Component("aws-ofi-nccl")
    packages = host.read("/opt/amazon/efa_installed_packages")
    if _search(component, "/opt/amazon/efa_installed_packages", packages, r"libnccl-ofi[_-](\d+\.\d+\.\d+)"):
        return component
    status = host.read("/var/lib/dpkg/status")
    _search(
        component,
        "/var/lib/dpkg/status",
        status,
        r"Package: libnccl-ofi\n(?:.+\n)*?Version:\s*(\d+\.\d+\.\d+)",
    )
    if not component.found:
        libs = host.glob("/opt/amazon/ofi-nccl/lib/libnccl-net*.so*") + host.glob(
            "/opt/aws-ofi-nccl/lib/libnccl-net*.so*"
        )
        component.looked.append("/opt/amazon/ofi-nccl/lib, /opt/aws-ofi-nccl/lib")
        if libs:
            component.found.append(("unknown version", f"/{libs[0].relative_to(host.root)}"))
    return component


NCCL_LIBRARY_GLOBS = (
    "/usr/lib/x86_64-linux-gnu/libnccl.so.2.*",
    "/usr/lib/aarch64-linux-gnu/libnccl.so.2.*",
    "/usr/lib64/libnccl.so.2.*",
    "/usr/local/lib/libnccl.so.2.*",
    "/usr/local/cuda/lib64/libnccl.so.2.*",
    "/opt/nccl/lib/libnccl.so.2.*",
    "/opt/nccl/build/lib/libnccl.so.2.*",
)
NCCL_WHEEL_GLOBS = (
    "/usr/lib/python3*/*-packages/nvidia_nccl_cu*-*.dist-info",
    "/usr/local/lib/python3*/*-packages/nvidia_nccl_cu*-*.dist-info",
    "/opt/conda/lib/python3*/site-packages/nvidia_nccl_cu*-*.dist-info",
)


def nccl(host: Host, extra_wheels: Sequence[Path] = ()) -> Component:
    """Every NCCL found: shared libraries named by version, and pip wheels (torch's own NCCL)."""
    component = Component("nccl")
    for pattern in NCCL_LIBRARY_GLOBS:
        component.looked.append(pattern.rsplit("/", 1)[0])
        for lib in host.glob(pattern):
            match = re.search(r"libnccl\.so\.(\d+\.\d+\.\d+)$", lib.name)
            if match:
                component.found.append((match.group(1), f"/{lib.relative_to(host.root)}"))
    wheels = [w for pattern in NCCL_WHEEL_GLOBS for w in host.glob(pattern)] + list(extra_wheels)
    component.looked.append("python packages (nvidia-nccl-cu*)")
    for wheel in wheels:
        match = re.search(r"nvidia_nccl_cu\d+-(\d+\.\d+\.\d+)", wheel.name)
        if match:
            component.found.append((match.group(1), f"pip {wheel.name.split('-')[0].replace('_', '-')}"))
    return component


def nvidia_driver(host: Host) -> Component:
    component = Component("nvidia-driver")
    if _search(
        component,
        "/proc/driver/nvidia/version",
        host.read("/proc/driver/nvidia/version"),
        r"Kernel Module\s+(\d[\d.]+)",
    ):
        return component
    smi = host.command(
        ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], ["/usr/bin/nvidia-smi"]
    )
    _search(component, "nvidia-smi", smi, r"^(\d[\d.]+)")
    return component


def cuda_toolkit(host: Host) -> Component:
    component = Component("cuda")
    version_json = host.read("/usr/local/cuda/version.json")
    if version_json:
        component.looked.append("/usr/local/cuda/version.json")
        try:
            component.found.append(
                (json.loads(version_json)["cuda"]["version"], "/usr/local/cuda/version.json")
            )
            return component
        except (ValueError, KeyError, TypeError):
            pass
    if _search(
        component,
        "/usr/local/cuda/version.txt",
        host.read("/usr/local/cuda/version.txt"),
        r"CUDA Version\s+(\S+)",
    ):
        return component
    cuda_nvcc = r"^Package: cuda-nvcc-\d+-\d+\n(?:.+\n)*?Version:\s*(\d+\.\d+\.\d+)"
    if _search(component, "/var/lib/dpkg/status", host.read("/var/lib/dpkg/status"), cuda_nvcc):
        return component
    nvcc = host.command(["nvcc", "--version"], ["/usr/local/cuda/bin/nvcc"])
    _search(component, "nvcc --version", nvcc, r"release [\d.]+, V(\d[\d.]+)")
    return component


def gdrcopy(host: Host) -> Component:
    component = Component("gdrcopy")
    for pattern in (
        "/usr/lib/x86_64-linux-gnu/libgdrapi.so.*.*",
        "/usr/lib64/libgdrapi.so.*.*",
        "/opt/gdrcopy/lib/libgdrapi.so.*.*",
        "/usr/local/lib/libgdrapi.so.*.*",
    ):
        component.looked.append(pattern.rsplit("/", 1)[0])
        for lib in host.glob(pattern):
            match = re.search(r"libgdrapi\.so\.(\d+\.\d+(?:\.\d+)?)$", lib.name)
            if match:
                component.found.append((match.group(1), f"/{lib.relative_to(host.root)}"))
    _search(component, "/sys/module/gdrdrv/version", host.read("/sys/module/gdrdrv/version"), r"^(\S+)")
    return component


def efa_kernel_module(host: Host) -> Component:
    component = Component("efa-kmod")
    _search(component, "/sys/module/efa/version", host.read("/sys/module/efa/version"), r"^(\S+)")
    return component


FINDERS: tuple[Callable[[Host], Component], ...] = (
    efa_installer,
    libfabric,
    aws_ofi_nccl,
    nccl,
    nvidia_driver,
    cuda_toolkit,
    gdrcopy,
    efa_kernel_module,
)
NAMES = ("efa-installer", "libfabric", "aws-ofi-nccl", "nccl", "nvidia-driver", "cuda", "gdrcopy", "efa-kmod")


def _own_wheels() -> list[Path]:
    """nvidia-nccl wheels in this interpreter's site-packages (torch's NCCL), when reading ``/``."""
    found = []
    for folder in {p for p in sys.path if p.endswith(("site-packages", "dist-packages"))}:
        found += sorted(Path(folder).glob("nvidia_nccl_cu*-*.dist-info"))
    return found


def collect(root: Path) -> list[Component]:
    """Every component of the host or tree at ``root``; never raises for a missing one."""
    host = Host(root)
    components = []
    for finder in FINDERS:
        if finder is nccl and root == Path("/"):
            components.append(nccl(host, _own_wheels()))
        else:
            components.append(finder(host))
    return components


def in_image(image: str, runtime: str) -> list[Component]:
    """Run this script inside ``image`` (its python3) and read its JSON back."""
    if runtime not in RUNTIMES:
        raise ValueError(f"--runtime {runtime!r} is unknown; choose one of: {', '.join(RUNTIMES)}")
    if shutil.which(runtime) is None:
        raise ValueError(f"{runtime} not found; install it or pick another --runtime ({', '.join(RUNTIMES)})")
    if runtime == "enroot":
        argv = ["enroot", "start", image, "python3", "-", "--json"]
    else:
        argv = [runtime, "run", "--rm", "-i", "--entrypoint", "python3", image, "-", "--json"]
    script = Path(__file__).read_text()
    try:
        done = subprocess.run(argv, input=script, capture_output=True, text=True, timeout=600, check=False)
    except subprocess.TimeoutExpired:
        raise ValueError(
            f"`{' '.join(argv[:4])} ...` did not finish in 600 s; is the image pullable?"
        ) from None
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise ValueError(
            f"image {image}: `{runtime}` exited {done.returncode}: {last}; does it have python3?"
        )
    try:
        document = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise ValueError(f"image {image} printed no JSON; does its python3 run this script?") from None
    return [Component(c["name"], [tuple(f) for f in c["found"]], c["looked"]) for c in document["components"]]


def report_lines(
    host_name: str,
    root: Path,
    components: list[Component],
    image: tuple[str, list[Component]] | None,
    failures: list[str],
) -> list[str]:
    """nccl-tests style: # header, fixed-width table, OK/FAILED footer."""
    lines = [f"# {TOOL} {VERSION}", f"#  host  : {host_name}", f"#  root  : {root}"]
    if image:
        lines.append(f"#  image : {image[0]}")
    lines.append("#")
    if image:
        theirs = {c.name: c for c in image[1]}
        rows = [
            (c.name, c.summary(), theirs[c.name].summary() if c.name in theirs else "-") for c in components
        ]
        header = ("COMPONENT", "HOST", "IMAGE")
    else:
        rows = [(c.name, c.summary(), c.sources()) for c in components]
        header = ("COMPONENT", "VERSION", "FOUND IN")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(2)]
    lines.append(f"# {header[0]:<{widths[0]}}  {header[1]:<{widths[1]}}  {header[2]}")
    lines += [f"  {name:<{widths[0]}}  {version:<{widths[1]}}  {third}" for name, version, third in rows]
    multiple = [c.name for c in components if len({v for v, _ in c.found}) > 1]
    lines += [
        f"# Note : several {name} versions on this host; check which one the job loads" for name in multiple
    ]
    if failures:
        return [*lines, "# Result : FAILED", *(f"#  - {failure}" for failure in failures)]
    return [*lines, "# Result : OK"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="efa-versions.py", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--root", type=Path, default=Path("/"), help="read this tree instead of / (a mounted image)"
    )
    parser.add_argument("--image", default=None, help="also report inside this container image")
    parser.add_argument(
        "--runtime", default="docker", help=f"container runtime for --image: {', '.join(RUNTIMES)}"
    )
    parser.add_argument(
        "--require",
        default=os.environ.get(REQUIRE_ENV, ""),
        help=f"comma list of components that must be found (env {REQUIRE_ENV})",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    required = [name.strip() for name in args.require.split(",") if name.strip()]
    unknown = [name for name in required if name not in NAMES]
    if unknown:
        print(
            f"error: --require {', '.join(unknown)} unknown; choose from: {', '.join(NAMES)}", file=sys.stderr
        )
        return 2
    if not args.root.is_dir():
        print(f"error: --root {args.root} is not a folder; pass / or a mounted image tree", file=sys.stderr)
        return 2
    components = collect(args.root)
    try:
        image = (args.image, in_image(args.image, args.runtime)) if args.image else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    by_name = {c.name: c for c in components}
    failures = [
        f"{name} required but not found ({by_name[name].sources()})"
        for name in required
        if not by_name[name].found
    ]
    if args.json:
        document = {
            "tool": TOOL,
            "version": VERSION,
            "host": socket.gethostname(),
            "root": str(args.root),
            "components": [asdict(c) for c in components],
            "ok": not failures,
            "failures": failures,
        }
        if image:
            document["image"] = {"name": image[0], "components": [asdict(c) for c in image[1]]}
        print(json.dumps(document, indent=2))
    else:
        print("\n".join(report_lines(socket.gethostname(), args.root, components, image, failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
