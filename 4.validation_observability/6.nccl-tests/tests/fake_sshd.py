#!/usr/bin/env python3
"""sshd stand-in for the launcher's --ssh mode: takes sshd's options, listens where sshd would, and
records them (FAKE_SSHD_DIR/<ListenAddress>.json) for ssh_shim.py to authenticate against."""

import json
import os
import socket
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    port, host_key, options = 22, None, {}
    while argv:
        flag = argv.pop(0)
        if flag == "-p":
            port = int(argv.pop(0))
        elif flag == "-h":
            host_key = argv.pop(0)
        elif flag in ("-o", "-f"):
            value = argv.pop(0)
            if flag == "-o":
                name, _, setting = value.partition("=")
                options[name] = setting
    if host_key is None or not Path(host_key).is_file():
        print(f"sshd: no host key ({host_key})", file=sys.stderr)
        return 1
    address = options.get("ListenAddress", "0.0.0.0")  # noqa: S104 (sshd's default; the launcher sets it)
    listener = socket.create_server((address, port))
    record = {"port": port, "pid": os.getpid(), "authorized_keys": options["AuthorizedKeysFile"], **options}
    (Path(os.environ["FAKE_SSHD_DIR"]) / f"{address}.json").write_text(json.dumps(record))
    while True:  # until the launcher terminates it
        conn, _ = listener.accept()
        conn.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
