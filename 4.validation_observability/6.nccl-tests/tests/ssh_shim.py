#!/usr/bin/env python3
"""ssh stand-in for Open MPI's rsh launcher (OMPI_MCA_plm_rsh_agent): runs the "remote" command here.

Like ssh, the command runs in a fresh environment (so only what mpirun -x forwards reaches the ranks),
with SHIM_HOST naming the host it was meant for. With FAKE_SSHD_DIR set it also authenticates like ssh:
the host must run fake_sshd.py on the -p port, and its authorized_keys must hold the -i key's public half.

Two things make the "hosts" separate machines, as far as Open MPI can tell:
- Each host has its own temporary folder (TMPDIR=<caller's TMPDIR>/<host>), so the daemons do not share
  one Open MPI session folder, as they never do on real nodes.
- The orted runs in the foreground (its --daemonize is dropped), so a daemon that dies ends this "ssh"
  with its status and its last words, and mpirun reports the failed node. Daemonized, its output goes to
  /dev/null and mpirun waits for it forever.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

OPTIONS_WITH_VALUE = {"-i", "-p", "-o", "-l", "-F"}


def authenticate(sshd_dir: Path, host: str, options: dict[str, list[str]]) -> str | None:
    """None when ssh would get in, else the reason it would not."""
    record = sshd_dir / f"{host}.json"
    if not record.is_file():
        return f"ssh: connect to host {host}: Connection refused (no sshd there)"
    sshd = json.loads(record.read_text())
    if options.get("-p", ["22"])[-1] != str(sshd["port"]):
        return (
            f"ssh: connect to host {host} port {options.get('-p')}: Connection refused (sshd: {sshd['port']})"
        )
    if "-i" not in options:
        return f"{host}: Permission denied (publickey): no -i key"
    public = subprocess.run(
        ["ssh-keygen", "-y", "-f", options["-i"][-1]], capture_output=True, text=True, check=True
    ).stdout.split()[:2]
    authorized = [line.split()[:2] for line in Path(sshd["authorized_keys"]).read_text().splitlines()]
    return None if public in authorized else f"{host}: Permission denied (publickey)"


def main(argv: list[str]) -> int:
    options: dict[str, list[str]] = {}
    while argv and argv[0].startswith("-"):
        flag = argv.pop(0)
        if flag in OPTIONS_WITH_VALUE:
            options.setdefault(flag, []).append(argv.pop(0))
    host, command = argv[0], " ".join(word for word in argv[1:] if word != "--daemonize")
    if os.environ.get("FAKE_SSHD_DIR"):
        refused = authenticate(Path(os.environ["FAKE_SSHD_DIR"]), host, options)
        if refused:
            print(refused, file=sys.stderr)
            return 255
    host_tmp = Path(os.environ.get("TMPDIR", "/tmp"), host)
    host_tmp.mkdir(parents=True, exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/"), "SHIM_HOST": host}
    env["TMPDIR"] = str(host_tmp)
    return subprocess.run(["/bin/sh", "-c", command], env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
