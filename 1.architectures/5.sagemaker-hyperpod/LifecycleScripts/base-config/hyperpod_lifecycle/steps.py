"""The ordered lifecycle steps. Each checks whether its result is already in place (then it does
nothing), applies it through the runner, and describes itself for ``--dry-run``.

Order matters: the Slurm configuration before slurmctld; storage before users (homes may live on
OpenZFS); accounting before slurmctld; docker, enroot and pyxis before slurmd loads its plugins.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from . import slurm_conf
from .config import ClusterLayout, Instance
from .runner import Step, StepError, SystemRunner, check, write_if_changed

# Pins (a repository test keeps them equal to 2.ami_and_containers/versions.yaml).
ENROOT_VERSION = "3.4.1"
PYXIS_VERSION = "v0.19.0"
SLURMCTLD_PORT = 6817
LUSTRE_OPTIONS = "noatime,flock,_netdev,x-systemd.automount,x-systemd.requires=network-online.target"
NFS_OPTIONS = "nfsvers=4.2,_netdev,x-systemd.automount"
APT_INSTALL = ("apt-get", "-o", "DPkg::Lock::Timeout=120", "install", "-y", "--no-install-recommends")


@dataclass
class Context:
    """What the steps act on: the layout, this node, the runner and the options."""

    layout: ClusterLayout
    node: Instance
    runner: SystemRunner
    slurm_prefix: str = "/opt/slurm"
    users_file: Path | None = None
    exporters: bool = False
    changed: set[str] = field(default_factory=set)

    @property
    def role(self) -> str:
        """controller, login or worker."""
        return self.layout.role(self.node)

    @property
    def slurm_etc(self) -> str:
        return f"{self.slurm_prefix}/etc"

    def read(self, absolute: str) -> str:
        """A file's text under the runner's root ('' when absent)."""
        path = self.runner.path(absolute)
        return path.read_text(encoding="utf-8") if path.is_file() else ""


def _mounted(ctx: Context, mountpoint: str, types: tuple[str, ...]) -> bool:
    """True when /proc/mounts shows ``mountpoint`` with one of ``types``."""
    for line in ctx.read("/proc/mounts").splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[1] == mountpoint and fields[2] in types:
            return True
    return False


def _ensure_line(ctx: Context, absolute: str, line: str, key: str | None = None) -> bool:
    """Have ``line`` in a file, replacing a line that starts with ``key``; True when written."""
    lines = ctx.read(absolute).splitlines()
    kept = [old for old in lines if not (key and old.startswith(key))]
    if line in lines and len(kept) == len(lines) - 1:
        return False
    return write_if_changed(ctx.runner, absolute, "\n".join([*kept, line]) + "\n")


def _active(ctx: Context, service: str) -> bool:
    return ctx.runner.run(["systemctl", "is-active", "--quiet", service]).returncode == 0


def _roles(*roles: str):
    def reason(ctx: Context) -> str | None:
        return None if ctx.role in roles else f"{ctx.role} node: runs on {' and '.join(roles)} nodes only"

    return reason


def _always(ctx: Context) -> str | None:
    return None


# -- Slurm configuration (controller) ---------------------------------------------------------


def _slurm_conf_lines(ctx: Context) -> list[tuple[str, str]]:
    return [
        (f"Include {ctx.slurm_etc}/{slurm_conf.FILE_NAME}", "Include "),
        ("SlurmctldParameters=enable_configless", "SlurmctldParameters="),
    ]


def _slurm_conf_done(ctx: Context) -> bool:
    text = ctx.read(f"{ctx.slurm_etc}/{slurm_conf.FILE_NAME}")
    conf = ctx.read(f"{ctx.slurm_etc}/slurm.conf").splitlines()
    return text == slurm_conf.render(ctx.layout) and all(line in conf for line, _ in _slurm_conf_lines(ctx))


def _slurm_conf_apply(ctx: Context) -> str:
    write_if_changed(ctx.runner, f"{ctx.slurm_etc}/{slurm_conf.FILE_NAME}", slurm_conf.render(ctx.layout))
    for line, key in _slurm_conf_lines(ctx):
        _ensure_line(ctx, f"{ctx.slurm_etc}/slurm.conf", line, key)
    ctx.changed.add("slurm_conf")
    partitions = ", ".join(f"{name}={len(nodes)}" for name, nodes in ctx.layout.partitions().items())
    return f"wrote {slurm_conf.FILE_NAME} (partitions {partitions}) and enabled configless"


# -- storage ----------------------------------------------------------------------------------


def _fsx_line(ctx: Context) -> str:
    p = ctx.layout.params
    return f"{p.fsx_dns_name}@tcp:/{p.fsx_mountname} /fsx lustre {LUSTRE_OPTIONS} 0 0"


def _fsx_apply(ctx: Context) -> str:
    ctx.runner.path("/fsx").mkdir(parents=True, exist_ok=True)
    _ensure_line(ctx, "/etc/fstab", _fsx_line(ctx), key=None)
    if not _mounted(ctx, "/fsx", ("lustre",)):
        p = ctx.layout.params
        check(
            ctx.runner,
            [
                "mount",
                "-t",
                "lustre",
                "-o",
                "noatime,flock",
                f"{p.fsx_dns_name}@tcp:/{p.fsx_mountname}",
                "/fsx",
            ],
        )
    return f"mounted {ctx.layout.params.fsx_dns_name} on /fsx (and in /etc/fstab)"


def _home_line(ctx: Context) -> str:
    return f"{ctx.layout.params.fsx_openzfs_dns_name}:/fsx /home nfs {NFS_OPTIONS} 0 0"


def _home_apply(ctx: Context) -> str:
    _ensure_line(ctx, "/etc/fstab", _home_line(ctx), key=None)
    if not _mounted(ctx, "/home", ("nfs", "nfs4")):
        dns = ctx.layout.params.fsx_openzfs_dns_name
        check(ctx.runner, ["mount", "-t", "nfs", "-o", "nfsvers=4.2", f"{dns}:/fsx", "/home"])
    return f"mounted {ctx.layout.params.fsx_openzfs_dns_name}:/fsx on /home"


# -- users ------------------------------------------------------------------------------------


def read_users(ctx: Context) -> list[tuple[str, int, str]]:
    """(name, uid, home) from the users file: ``name,uid[,home]`` per line, # comments."""
    if ctx.users_file is None or not ctx.users_file.is_file():
        return []
    users = []
    for number, raw in enumerate(ctx.users_file.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#")[0].strip()
        if not line:
            continue
        parts = [part.strip() for part in line.split(",")]
        if (
            len(parts) not in (2, 3)
            or not re.fullmatch(r"[a-z_][a-z0-9_-]*", parts[0])
            or not parts[1].isdigit()
        ):
            raise StepError(f"{ctx.users_file} line {number}: expected name,uid[,home], got {raw!r}")
        users.append((parts[0], int(parts[1]), parts[2] if len(parts) == 3 else f"/fsx/{parts[0]}"))
    return users


def _known_users(ctx: Context) -> dict[str, int]:
    found = {}
    for line in ctx.read("/etc/passwd").splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[2].isdigit():
            found[fields[0]] = int(fields[2])
    return found


def _users_skip(ctx: Context) -> str | None:
    return None if read_users(ctx) else "no users file (shared_users.txt); nothing to add"


def _users_done(ctx: Context) -> bool:
    known = _known_users(ctx)
    for name, uid, _ in read_users(ctx):
        if name in known and known[name] != uid:
            raise StepError(
                f"user {name} exists with uid {known[name]}, users file says {uid}; make them agree"
            )
    return all(name in known for name, _, _ in read_users(ctx))


def _users_apply(ctx: Context) -> str:
    known, added = _known_users(ctx), []
    for name, uid, home in read_users(ctx):
        if name not in known:
            create_home = "-M" if ctx.runner.path(home).exists() else "-m"
            check(ctx.runner, ["useradd", create_home, "-u", str(uid), "-d", home, "-s", "/bin/bash", name])
            added.append(name)
    return f"added {', '.join(added)}"


# -- Slurm accounting (controller) ------------------------------------------------------------


def _slurmdbd_conf(ctx: Context, password: str) -> str:
    return "\n".join(
        [
            "# Written by the HyperPod lifecycle program.",
            "AuthType=auth/munge",
            "DbdHost=localhost",
            "SlurmUser=slurm",
            "LogFile=/var/log/slurm/slurmdbd.log",
            "PidFile=/var/run/slurmdbd.pid",
            "StorageType=accounting_storage/mysql",
            "StorageHost=localhost",
            "StorageUser=slurm",
            f"StoragePass={password}",
            "StorageLoc=slurm_acct_db",
            "",
        ]
    )


def _accounting_done(ctx: Context) -> bool:
    dbd = ctx.read(f"{ctx.slurm_etc}/slurmdbd.conf")
    conf = ctx.read(f"{ctx.slurm_etc}/slurm.conf").splitlines()
    return (
        "StorageType=accounting_storage/mysql" in dbd
        and "AccountingStorageType=accounting_storage/slurmdbd" in conf
        and _active(ctx, "slurmdbd")
    )


def _accounting_apply(ctx: Context) -> str:
    if not (ctx.runner.which("mariadbd") or ctx.runner.which("mysqld")):
        check(ctx.runner, ["apt-get", "update"])
        check(ctx.runner, [*APT_INSTALL, "mariadb-server"])
    check(ctx.runner, ["systemctl", "enable", "--now", "mariadb"])
    existing = re.search(r"^StoragePass=(\S+)$", ctx.read(f"{ctx.slurm_etc}/slurmdbd.conf"), re.MULTILINE)
    password = existing[1] if existing else secrets.token_hex(16)  # kept across reruns
    sql = (
        f"CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '{password}'; "
        "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
    )
    check(ctx.runner, ["mysql", "-e", sql])
    write_if_changed(ctx.runner, f"{ctx.slurm_etc}/slurmdbd.conf", _slurmdbd_conf(ctx, password), mode=0o600)
    _ensure_line(
        ctx,
        f"{ctx.slurm_etc}/slurm.conf",
        "AccountingStorageType=accounting_storage/slurmdbd",
        "AccountingStorageType=",
    )
    _ensure_line(
        ctx, f"{ctx.slurm_etc}/slurm.conf", "JobAcctGatherType=jobacct_gather/linux", "JobAcctGatherType="
    )
    check(ctx.runner, ["systemctl", "enable", "--now", "slurmdbd"])
    ctx.changed.add("slurm_conf")
    return "slurmdbd with MariaDB on the controller; slurm.conf points accounting at it"


# -- containers -------------------------------------------------------------------------------


def _docker_apply(ctx: Context) -> str:
    check(ctx.runner, ["apt-get", "update"])
    check(ctx.runner, [*APT_INSTALL, "docker.io"])
    check(ctx.runner, ["systemctl", "enable", "--now", "docker"])
    return "installed docker.io"


def _enroot_conf(ctx: Context) -> str:
    # Local NVMe (DLAMI mounts it at /opt/dlami/nvme) for image layers; else /tmp. Data on the node.
    base = "/opt/dlami/nvme/enroot" if ctx.runner.path("/opt/dlami/nvme").is_dir() else "/tmp/enroot"
    return "\n".join(
        [
            "# Written by the HyperPod lifecycle program.",
            f"ENROOT_RUNTIME_PATH {base}/user-$(id -u)",
            f"ENROOT_CACHE_PATH {base}/cache/group-$(id -g)",
            f"ENROOT_DATA_PATH {base}/data/user-$(id -u)",
            "ENROOT_SQUASH_OPTIONS -noI -noD -noF -noX -no-duplicates",
            "ENROOT_MOUNT_HOME y",
            "ENROOT_RESTRICT_DEV y",
            "",
        ]
    )


def _enroot_done(ctx: Context) -> bool:
    return bool(ctx.runner.which("enroot")) and ctx.read("/etc/enroot/enroot.conf") == _enroot_conf(ctx)


def _enroot_apply(ctx: Context) -> str:
    detail = "enroot already on the AMI; wrote /etc/enroot/enroot.conf"
    if not ctx.runner.which("enroot"):
        url = f"https://github.com/NVIDIA/enroot/releases/download/v{ENROOT_VERSION}"
        debs = [f"enroot_{ENROOT_VERSION}-1_amd64.deb", f"enroot+caps_{ENROOT_VERSION}-1_amd64.deb"]
        for deb in debs:
            check(ctx.runner, ["curl", "-fsSL", "--retry", "3", "-o", f"/tmp/{deb}", f"{url}/{deb}"])
        check(ctx.runner, [*APT_INSTALL, *(f"/tmp/{deb}" for deb in debs)])
        detail = f"installed enroot {ENROOT_VERSION}; wrote /etc/enroot/enroot.conf"
    write_if_changed(ctx.runner, "/etc/enroot/enroot.conf", _enroot_conf(ctx))
    return detail


def _pyxis_plugin(ctx: Context) -> str:
    return f"{ctx.slurm_prefix}/lib/slurm/spank_pyxis.so"


def _pyxis_done(ctx: Context) -> bool:
    plugstack = ctx.read(f"{ctx.slurm_etc}/plugstack.conf.d/pyxis.conf")
    include = ctx.read(f"{ctx.slurm_etc}/plugstack.conf")
    return (
        ctx.runner.path(_pyxis_plugin(ctx)).is_file()
        and _pyxis_plugin(ctx) in plugstack
        and f"include {ctx.slurm_etc}/plugstack.conf.d/*" in include
    )


def _pyxis_apply(ctx: Context) -> str:
    detail = "pyxis already on the AMI; registered in plugstack.conf"
    if not ctx.runner.path(_pyxis_plugin(ctx)).is_file():
        src = f"/tmp/pyxis-{PYXIS_VERSION}"
        if not ctx.runner.path(src).is_dir():
            check(
                ctx.runner,
                [
                    "git",
                    "clone",
                    "--depth",
                    "1",
                    "--branch",
                    PYXIS_VERSION,
                    "https://github.com/NVIDIA/pyxis",
                    src,
                ],
            )
        check(
            ctx.runner,
            [
                "make",
                "-C",
                src,
                f"CPPFLAGS=-I{ctx.slurm_prefix}/include",
                f"prefix={ctx.slurm_prefix}",
                "install",
            ],
        )
        detail = f"built pyxis {PYXIS_VERSION}; registered in plugstack.conf"
    write_if_changed(
        ctx.runner, f"{ctx.slurm_etc}/plugstack.conf.d/pyxis.conf", f"required {_pyxis_plugin(ctx)}\n"
    )
    _ensure_line(
        ctx, f"{ctx.slurm_etc}/plugstack.conf", f"include {ctx.slurm_etc}/plugstack.conf.d/*", "include "
    )
    ctx.changed.add("plugstack")
    return detail


# -- Slurm daemons ----------------------------------------------------------------------------

SLURMD_DROPIN = "/etc/systemd/system/slurmd.service.d/conf-server.conf"


def _slurmd_dropin(ctx: Context) -> str:
    server = f"{ctx.layout.controller.ip}:{SLURMCTLD_PORT}"
    return f"[Service]\nExecStart=\nExecStart={ctx.slurm_prefix}/sbin/slurmd -D -s --conf-server {server}\n"


def _daemon(ctx: Context) -> str:
    return "slurmctld" if ctx.role == "controller" else "slurmd"


def _start_skip(ctx: Context) -> str | None:
    if ctx.role == "login":
        return "login node: Slurm clients only; the controller serves the configuration"
    return None


def _start_done(ctx: Context) -> bool:
    if ctx.role == "worker" and ctx.read(SLURMD_DROPIN) != _slurmd_dropin(ctx):
        return False
    return not ctx.changed and _active(ctx, _daemon(ctx))


def _start_apply(ctx: Context) -> str:
    daemon = _daemon(ctx)
    if ctx.role == "worker":
        write_if_changed(ctx.runner, SLURMD_DROPIN, _slurmd_dropin(ctx))
        check(ctx.runner, ["systemctl", "daemon-reload"])
    check(ctx.runner, ["systemctl", "enable", daemon])
    # Restart, not start: a changed configuration or plugin stack is read at daemon start only.
    check(ctx.runner, ["systemctl", "restart", daemon])
    ctx.changed.clear()
    if not _active(ctx, daemon):
        raise StepError(f"{daemon} is not active after restart; see `journalctl -u {daemon}`")
    target = f" with --conf-server {ctx.layout.controller.ip}:{SLURMCTLD_PORT}" if daemon == "slurmd" else ""
    return f"{daemon} running{target}"


# -- observability ----------------------------------------------------------------------------


def _exporters_skip(ctx: Context) -> str | None:
    return None if ctx.exporters else "exporters not requested (pass --exporters)"


def _exporters_apply(ctx: Context) -> str:
    if not ctx.runner.which("prometheus-node-exporter"):
        check(ctx.runner, [*APT_INSTALL, "prometheus-node-exporter"])
    check(ctx.runner, ["systemctl", "enable", "--now", "prometheus-node-exporter"])
    return "prometheus-node-exporter on :9100"


def all_steps() -> list[Step]:
    """The steps in the order they run."""
    return [
        Step(
            "slurm_config",
            "write the node/partition lines and enable configless",
            _roles("controller"),
            _slurm_conf_done,
            _slurm_conf_apply,
            lambda ctx: f"write {ctx.slurm_etc}/{slurm_conf.FILE_NAME} and include it from slurm.conf",
        ),
        Step(
            "mount_fsx",
            "mount FSx for Lustre on /fsx",
            _always,
            lambda ctx: (
                _mounted(ctx, "/fsx", ("lustre",)) and _fsx_line(ctx) in ctx.read("/etc/fstab").splitlines()
            ),
            _fsx_apply,
            lambda ctx: f"fstab + mount: {_fsx_line(ctx)}",
        ),
        Step(
            "mount_home",
            "mount FSx for OpenZFS on /home",
            lambda ctx: (
                None
                if ctx.layout.params.fsx_openzfs_dns_name
                else "no fsx_openzfs_dns_name: /home stays local"
            ),
            lambda ctx: (
                _mounted(ctx, "/home", ("nfs", "nfs4"))
                and _home_line(ctx) in ctx.read("/etc/fstab").splitlines()
            ),
            _home_apply,
            lambda ctx: f"fstab + mount: {_home_line(ctx)}",
        ),
        Step(
            "add_users",
            "add the users of shared_users.txt",
            _users_skip,
            _users_done,
            _users_apply,
            lambda ctx: "useradd " + ", ".join(f"{n}(uid {u}, home {h})" for n, u, h in read_users(ctx)),
        ),
        Step(
            "slurm_accounting",
            "slurmdbd + MariaDB on the controller",
            _roles("controller"),
            _accounting_done,
            _accounting_apply,
            lambda ctx: (
                f"MariaDB, {ctx.slurm_etc}/slurmdbd.conf, slurmdbd; AccountingStorageType in slurm.conf"
            ),
        ),
        Step(
            "install_docker",
            "docker (skipped when the AMI has it)",
            _always,
            lambda ctx: bool(ctx.runner.which("docker")),
            _docker_apply,
            lambda ctx: "apt-get install docker.io unless docker is on PATH",
        ),
        Step(
            "install_enroot",
            f"enroot {ENROOT_VERSION} and its configuration",
            _always,
            _enroot_done,
            _enroot_apply,
            lambda ctx: f"enroot {ENROOT_VERSION} .debs unless enroot is on PATH; /etc/enroot/enroot.conf",
        ),
        Step(
            "install_pyxis",
            f"pyxis {PYXIS_VERSION} in Slurm's plugin stack",
            _always,
            _pyxis_done,
            _pyxis_apply,
            lambda ctx: f"build pyxis {PYXIS_VERSION} unless {_pyxis_plugin(ctx)} exists; plugstack.conf",
        ),
        Step(
            "start_slurm",
            "start slurmctld (controller) or slurmd --conf-server (workers)",
            _start_skip,
            _start_done,
            _start_apply,
            lambda ctx: (
                f"systemctl restart {_daemon(ctx)}"
                + (
                    f" with --conf-server {ctx.layout.controller.ip}:{SLURMCTLD_PORT}"
                    if _daemon(ctx) == "slurmd"
                    else ""
                )
            ),
        ),
        Step(
            "exporters",
            "Prometheus node exporter",
            _exporters_skip,
            lambda ctx: _active(ctx, "prometheus-node-exporter"),
            _exporters_apply,
            lambda ctx: "apt-get install prometheus-node-exporter; enable it",
        ),
    ]
