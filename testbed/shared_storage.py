"""A cluster's shared storage at its own path (``/fsx``) for the test bed's processes, without touching ``/``.

README commands written for a cluster read and write ``/fsx`` on the login node and inside jobs. This
machine has no ``/fsx``, and the test bed does not make one in the host's root. Instead each process
that should see it (a walkthrough's shell, the slurmd of a cluster shaped like the README's) starts in
a private mount namespace whose root is a tmpfs holding a bind mount of every entry of the real ``/``
plus the extra folders (``/fsx`` -> a folder of the test's). Everything else is the same files at the
same paths, so the processes inside and outside agree on every path but the shared ones, and all the
processes given the same folder see the same ``/fsx``, as a cluster's nodes do.

Needs root (a mount namespace and bind mounts) and ``mount``: ``wrap(argv, {"/fsx": folder}, scratch)``
returns the command line that runs ``argv`` so. The private root lives as long as the processes in it;
``scratch`` is an empty folder it is built on. Nothing it mounts reaches the host's mount table.

    python testbed/shared_storage.py --root DIR --bind /fsx=FOLDER -- COMMAND...
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

CLONE_NEWNS = 0x00020000  # <sched.h>


def available() -> str | None:
    """None when this machine can give processes a private root; else why not."""
    if os.geteuid() != 0:
        return "mount namespaces and bind mounts need root"
    if shutil.which("mount") is None:
        return "mount not found; install the mount package"
    done = subprocess.run([sys.executable, __file__, "--probe"], capture_output=True, text=True, check=False)
    return None if done.returncode == 0 else done.stderr.strip().removeprefix("error: ")


def wrap(argv: Sequence[str], binds: Mapping[str, Path], scratch: Path) -> list[str]:
    """The command line that runs ``argv`` (unchanged PID: every step execs) with ``binds`` (an absolute
    top-level path such as ``/fsx`` -> an existing folder) added to its root; ``scratch``: an empty
    folder to mount the private root on (made when missing)."""
    for target, source in binds.items():
        _check_bind(target, Path(source))
    Path(scratch).mkdir(parents=True, exist_ok=True)
    options = [f"--bind={target}={Path(source).resolve()}" for target, source in binds.items()]
    return [
        sys.executable,
        __file__,  # by path: the processes may start anywhere; this part imports nothing of the test bed
        f"--root={Path(scratch).resolve()}",
        *options,
        "--",
        *map(str, argv),
    ]


def _check_bind(target: str, source: Path) -> None:
    if not target.startswith("/") or target.count("/") != 1 or target == "/":
        raise ValueError(f"{target!r}: a shared folder goes at the top of the root, e.g. /fsx")
    if Path(target).exists():
        raise ValueError(f"{target} exists on this machine; the test bed adds only paths it does not have")
    if not source.is_dir():
        raise ValueError(f"{source} is not a folder")


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


def private_namespace() -> None:
    """Move this process into a mount namespace of its own whose mounts propagate nowhere: what it
    mounts from now on, and its children, never reach the host's."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"unshare(CLONE_NEWNS): {os.strerror(error)}")
    _mount("--make-rprivate", "/")


def enter(root: Path, binds: Mapping[str, Path]) -> None:
    """Build the root on ``root`` (in this process's private mount namespace) and change into it."""
    cwd = os.getcwd()
    _mount("-t", "tmpfs", "-o", "mode=0755", "shared-storage-root", str(root))
    for entry in sorted(os.listdir("/")):
        real, mirror = Path("/") / entry, root / entry
        if real.is_symlink():
            mirror.symlink_to(os.readlink(real))
        elif real.is_dir():
            mirror.mkdir()
            _mount("--rbind", str(real), str(mirror))
        else:
            mirror.touch()
            _mount("--bind", str(real), str(mirror))
    for target, source in binds.items():
        mirror = root / target.lstrip("/")
        mirror.mkdir()
        _mount("--bind", str(source), str(mirror))
    os.chroot(root)
    os.chdir(cwd)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shared_storage.py", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, help="an empty folder to build the private root on")
    parser.add_argument("--bind", action="append", default=[], metavar="/PATH=FOLDER", help="a shared folder")
    parser.add_argument(
        "--probe", action="store_true", help="only check that a private namespace can be made"
    )
    parser.add_argument("command", nargs="*", help="the program and its arguments")
    args = parser.parse_args(argv)
    binds: dict[str, Path] = {}
    try:
        for item in args.bind:
            target, sep, source = item.partition("=")
            if not sep:
                raise ValueError(f"--bind {item!r}: write /PATH=FOLDER, e.g. --bind /fsx=/tmp/shared")
            _check_bind(target, Path(source))
            binds[target] = Path(source)
        if not args.probe and (args.root is None or not args.root.is_dir() or any(args.root.iterdir())):
            raise ValueError(f"--root {args.root}: pass an empty folder")
        if not args.probe and not args.command:
            raise ValueError("no command: pass it after --, e.g. -- bash -c 'ls /fsx'")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        private_namespace()
        if args.probe:
            return 0
        enter(args.root, binds)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = (getattr(exc, "stderr", "") or str(exc)).strip()
        print(f"error: cannot build a private root on {args.root} (needs root): {detail}", file=sys.stderr)
        return 2
    os.execvp(args.command[0], args.command)  # noqa: S606 - the command replaces this process, no shell


if __name__ == "__main__":
    sys.exit(main())
