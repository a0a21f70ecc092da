"""The machine-image roles executed for real against a throw-away Debian root file system.

One minbase root file system per test session (debootstrap from the distribution's mirror), entered through
the ``rootfs_chroot`` connection of connection_plugins/. The roles that need neither a GPU nor a download
from AWS, NVIDIA or GitHub converge twice: the first run changes the system, the second changes nothing
(Molecule's idempotence check). The GPU playbook then runs whole in check mode on the converged system.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
AMI = HERE.parent / "1.amazon_machine_image"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"  # the venv running the tests
RECAP = re.compile(
    r"^\S.*?:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+"
    r"failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)\s+rescued=\d+\s+ignored=(?P<ignored>\d+)",
    re.MULTILINE,
)
# The roles converge.yml runs for real; the rest need a GPU, a kernel of the image's own or a download.
CONVERGED_ROLES = ["base", "packages", "docker", "enroot_pyxis", "lustre", "observability"]
pytestmark = pytest.mark.slow


def ansible_playbook() -> str:
    found = str(ANSIBLE_PLAYBOOK) if ANSIBLE_PLAYBOOK.is_file() else shutil.which("ansible-playbook")
    if not found:
        pytest.skip("ansible-playbook not installed (pyproject group infra: make setup)")
    return found


@pytest.fixture(scope="module")
def rootfs(minbase_rootfs: Path):
    """A copy of the session's minbase tree, with /proc mounted, for the roles to change."""
    ansible_playbook()
    root = minbase_rootfs.parent / "converge"
    subprocess.run(["cp", "-a", str(minbase_rootfs), str(root)], check=True)
    subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
    yield root
    subprocess.run(["umount", "-l", str(root / "proc")], check=False)


def run_playbook(rootfs: Path, playbook: Path, *args: str) -> tuple[dict[str, int], str, float]:
    """ansible-playbook against the root file system; returns the recap counts, the output, the seconds."""
    inventory = rootfs.parent / "rootfs-inventory.ini"
    inventory.write_text(f"[image]\n{rootfs}\n")
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(AMI / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(AMI / "roles"),
        "ANSIBLE_CONNECTION_PLUGINS": str(HERE / "connection_plugins"),
        "ANSIBLE_PIPELINING": "true",
        "ANSIBLE_FORCE_COLOR": "false",
        "ANSIBLE_NOCOLOR": "true",
    }
    env.pop("PIP_FIND_LINKS", None)  # this machine's wheel folder does not exist inside the root file system
    command = [ansible_playbook(), "-i", str(inventory), "-c", "rootfs_chroot", "-e", "ansible_become=false"]
    started = time.monotonic()
    result = subprocess.run(
        [*command, "-e", "image_login_user=nobody", *args, str(playbook)],
        cwd=AMI,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    output = result.stdout + result.stderr
    match = RECAP.search(output)
    assert result.returncode == 0 and match, output[-6000:]
    return {key: int(value) for key, value in match.groupdict().items()}, output, seconds


def changed_tasks(output: str) -> list[str]:
    """The task names whose result line says changed."""
    names, current = [], None
    for line in output.splitlines():
        if line.startswith(("TASK [", "RUNNING HANDLER [")):
            current = line.split("[", 1)[1].rsplit("]", 1)[0]
        elif line.startswith("changed:") and current and current not in names:
            names.append(current)
    return names


@pytest.fixture(scope="module")
def converged(rootfs: Path):
    first = run_playbook(rootfs, HERE / "converge.yml", "--skip-tags", "download")
    second = run_playbook(rootfs, HERE / "converge.yml", "--skip-tags", "download")
    return first, second


def test_converge_changes_the_system_then_nothing(converged):
    (first, _, first_s), (second, second_out, second_s) = converged
    tasks = first["ok"] + first["skipped"]
    print(
        f"\nroles converged: {len(CONVERGED_ROLES)} ({', '.join(CONVERGED_ROLES)}); tasks: {tasks}; "
        f"changed on the first run: {first['changed']}, on the second: {second['changed']}; "
        f"first run {first_s:.0f} s, "
        f"second run {second_s:.0f} s"
    )
    assert first["failed"] == 0 and first["unreachable"] == 0 and first["ignored"] == 0
    assert first["changed"] >= 20, first
    assert second["changed"] == 0, f"not idempotent, changed again: {changed_tasks(second_out)}"


def test_converged_system_has_what_the_roles_promise(converged, rootfs: Path):
    etc = rootfs / "etc"
    sysctl = (etc / "sysctl.d/90-distributed-training.conf").read_text()
    assert "vm.max_map_count = 1048576" in sysctl
    limits = (etc / "security/limits.d/90-distributed-training.conf").read_text()
    assert "* hard memlock unlimited" in limits and "* soft memlock unlimited" in limits
    daemon = (etc / "docker/daemon.json").read_text()
    assert '"memlock": {"Name": "memlock", "Soft": -1, "Hard": -1}' in daemon
    assert (etc / "systemd/system/multi-user.target.wants/docker.service").is_symlink()
    assert "nobody" in (etc / "group").read_text().split("docker:", 1)[1].splitlines()[0]
    pyxis = (rootfs / "opt/slurm/etc/plugstack.conf.d/pyxis.conf").read_text()
    assert "required /opt/slurm/lib/slurm/spank_pyxis.so" in pyxis
    assert (rootfs / "opt/slurm/etc/plugstack.conf").read_text().strip().startswith("include ")
    assert "@tcp:/abcdefgh /fsx lustre " in (etc / "fstab").read_text()
    assert (etc / "modprobe.d/lustre-client.conf").read_text().count("options ") == 2
    exporter = subprocess.run(
        ["chroot", str(rootfs), "/opt/efa-exporter/venv/bin/python", "/opt/efa-exporter/efa_exporter.py",
         "--once", "--sysfs-root", "/nonexistent-sysfs"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert exporter.returncode == 2 and "error: --sysfs-root" in exporter.stderr, exporter.stderr
    assert "--collector.textfile.directory=" in (etc / "default/prometheus-node-exporter").read_text()


# The settings enroot v3.4.1 documents in conf/enroot.conf.in (github.com/NVIDIA/enroot, tag v3.4.1).
ENROOT_SETTINGS = {
    *("LIBRARY_PATH", "SYSCONF_PATH", "RUNTIME_PATH", "CONFIG_PATH", "CACHE_PATH", "DATA_PATH", "TEMP_PATH"),
    *("GZIP_PROGRAM", "ZSTD_OPTIONS", "SQUASH_OPTIONS", "ROOTFS_WRITABLE", "REMAP_ROOT", "MAX_PROCESSORS"),
    *("MAX_CONNECTIONS", "CONNECT_TIMEOUT", "TRANSFER_TIMEOUT", "TRANSFER_RETRIES", "LOGIN_SHELL"),
    *("ALLOW_SUPERUSER", "ALLOW_HTTP", "BUNDLE_ALL", "BUNDLE_CHECKSUM", "MOUNT_HOME", "RESTRICT_DEV"),
    "FORCE_OVERRIDE",
}
# How enroot v3.4.1 loads its configuration (enroot.in, config::load): the file must pass `bash -n`, then
# each `KEY value` line whose key is ENROOT_* is exported with the value expanded by `eval echo`.
ENROOT_LOADER = r"""
bash -n "$1" || exit 3
while IFS=$' \t=' read -r key value; do
    if [[ "${key}" =~ ^ENROOT_[[:upper:]_]+$ ]]; then printf '%s=%s\n' "${key}" "$(eval echo "${value}")"; fi
done < "$1"
"""


def test_enroot_configuration_is_what_enroot_reads(converged, rootfs: Path):
    """The file the role writes, loaded the way enroot loads it, as an unprivileged user inside the image:
    every setting is one enroot knows, and every per-user path expands."""
    loaded = subprocess.run(
        ["chroot", "--userspec=65534:65534", str(rootfs), "/bin/bash", "-c", ENROOT_LOADER, "enroot",
         "/etc/enroot/enroot.conf"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    settings = dict(line.split("=", 1) for line in loaded.stdout.splitlines())
    names = {key.removeprefix("ENROOT_") for key in settings}
    assert names <= ENROOT_SETTINGS, names - ENROOT_SETTINGS
    assert settings["ENROOT_RUNTIME_PATH"] == "/run/enroot/user-65534"
    assert settings["ENROOT_DATA_PATH"] == "/scratch/enroot/data/user-65534"
    assert settings["ENROOT_CACHE_PATH"] == "/scratch/enroot/cache/group-65534"
    assert settings["ENROOT_SQUASH_OPTIONS"].startswith("-comp zstd")


# Playbooks that together hold every role needing a GPU, a Neuron device or a download.
CHECKED = {
    AMI / "playbooks" / "pcluster-gpu.yml": ("awscli", "efa", "nvidia_driver", "cuda", "nccl", "gdrcopy"),
    HERE / "neuron.yml": ("neuron",),
}


@pytest.mark.parametrize("playbook", sorted(CHECKED), ids=lambda path: path.name)
def test_gpu_neuron_and_download_roles_pass_in_check_mode(converged, rootfs: Path, playbook: Path):
    """In check mode nothing is downloaded or installed; tasks that need a download's result fail only as
    ignored (their ignore_errors is true in check mode alone)."""
    counts, output, seconds = run_playbook(rootfs, playbook, "--check")
    print(f"\ncheck mode, {playbook.name}: {counts} in {seconds:.0f} s")
    assert counts["failed"] == 0 and counts["unreachable"] == 0
    for role in CHECKED[playbook]:
        assert f"TASK [{role} : " in output, f"role {role} did not run"
