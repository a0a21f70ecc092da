"""One Debian minbase root file system per test session, made with debootstrap, shared by the role tests
(which converge a copy of it) and the container tests (which import it as the python:slim stand-in)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

MIRROR = os.environ.get("DEBOOTSTRAP_MIRROR", "http://deb.debian.org/debian")
SUITE = os.environ.get("DEBOOTSTRAP_SUITE", "bookworm")
# Ansible's modules run on python3 (apt's on python3-apt); the container stand-in needs pip and venv.
INCLUDE = "python3,python3-apt,python3-pip,python3-venv,ca-certificates"


@pytest.fixture(scope="session")
def minbase_rootfs(artifacts_root: Path) -> Path:
    """The pristine tree: tests copy it before they change anything."""
    if os.geteuid() != 0:
        pytest.skip("debootstrap and chroot need root (CI runs as root)")
    for program in ("debootstrap", "chroot", "mount"):
        if not shutil.which(program):
            pytest.skip(f"{program} not installed: make system-deps")
    root = artifacts_root / "minbase"
    started = time.monotonic()
    subprocess.run(
        ["debootstrap", "--variant=minbase", f"--include={INCLUDE}", SUITE, str(root), MIRROR],
        check=True,
        capture_output=True,
    )
    # A build host behind a TLS-inspecting proxy trusts its certificate authority; so must the image.
    extra = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
    for certificate in extra:
        shutil.copy(certificate, root / "usr/local/share/ca-certificates" / certificate.name)
    if extra:
        subprocess.run(["chroot", str(root), "update-ca-certificates"], check=True, capture_output=True)
    print(f"\ndebootstrap (minbase, once per session): {time.monotonic() - started:.0f} s")
    return root
