"""A fake node for the lifecycle steps: a root folder plus a small model of the commands they run.

Commands change the fake root the way they change a real node (``mount`` adds a /proc/mounts line,
``apt-get install docker.io`` puts ``docker`` on the PATH, ``useradd`` writes /etc/passwd,
``systemctl`` tracks active services), so running the real step logic twice shows idempotence.
``fail`` scripts failures: {command prefix: [CommandResult, ...]} returned before the model runs.
"""

from __future__ import annotations

from pathlib import Path

from hyperpod_lifecycle.runner import CommandResult, SystemRunner

APT_LOCK = CommandResult(
    100, "", "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (unattended-upgr)"
)


class FakeNode(SystemRunner):
    """SystemRunner over a fake root; records every command and every sleep."""

    def __init__(self, root: Path, programs: tuple[str, ...] = ()) -> None:
        super().__init__(root)
        self.commands: list[list[str]] = []
        self.sleeps: list[float] = []
        self.active: set[str] = set()
        self.fail: dict[tuple[str, ...], list[CommandResult]] = {}
        for sub in ("proc", "etc", "usr/bin"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "proc/mounts").write_text("/dev/root / ext4 rw 0 0\n")
        (root / "etc/passwd").write_text(
            "root:x:0:0::/root:/bin/bash\nubuntu:x:1000:1000::/home/ubuntu:/bin/bash\n"
        )
        for program in programs:
            self.install(program)

    def install(self, program: str) -> None:
        (self.root / "usr/bin" / program).write_text("#!/bin/sh\n")

    def which(self, name: str) -> str | None:
        return f"/usr/bin/{name}" if (self.root / "usr/bin" / name).exists() else None

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def run(self, argv, timeout: float = 900) -> CommandResult:
        argv = list(argv)
        self.commands.append(argv)
        for prefix, results in self.fail.items():
            if tuple(argv[: len(prefix)]) == prefix and results:
                return results.pop(0)
        return self._model(argv)

    def changes(self) -> list[list[str]]:
        """Commands other than read-only queries."""
        return [c for c in self.commands if c[:2] != ["systemctl", "is-active"] and c[0] != "hostname"]

    def _model(self, argv: list[str]) -> CommandResult:
        program = argv[0]
        if program == "mount":
            kind, source, target = argv[2], argv[-2], argv[-1]
            with (self.root / "proc/mounts").open("a") as mounts:
                mounts.write(f"{source} {target} {kind} rw 0 0\n")
        elif program == "apt-get" and "install" in argv:
            for package in argv[argv.index("install") + 1 :]:
                name = {"docker.io": "docker", "mariadb-server": "mariadbd"}.get(package, package)
                if package.endswith(".deb"):
                    name = "enroot"
                if not package.startswith("-"):
                    self.install(name)
        elif program == "useradd":
            uid, home, name = argv[argv.index("-u") + 1], argv[argv.index("-d") + 1], argv[-1]
            with (self.root / "etc/passwd").open("a") as passwd:
                passwd.write(f"{name}:x:{uid}:{uid}::{home}:/bin/bash\n")
        elif program == "make" and "install" in argv:
            prefix = next(a.split("=", 1)[1] for a in argv if a.startswith("prefix="))
            plugin = self.path(f"{prefix}/lib/slurm/spank_pyxis.so")
            plugin.parent.mkdir(parents=True, exist_ok=True)
            plugin.write_bytes(b"")
        elif program == "systemctl":
            return self._systemctl(argv[1:])
        elif program == "hostname":
            return CommandResult(0, "172.17.0.1 10.1.0.11 \n")
        return CommandResult(0)

    def _systemctl(self, args: list[str]) -> CommandResult:
        if args[0] == "is-active":
            return CommandResult(0 if args[-1] in self.active else 3)
        if args[0] in ("restart", "start") or (args[0] == "enable" and "--now" in args):
            self.active.add(args[-1])
        return CommandResult(0)
