"""An Ansible connection that runs tasks inside a root file system with chroot(8).

The tests converge the machine-image roles against a throw-away Debian root file system made with
debootstrap. Ansible's own chroot connection lives in the community.general collection, which is installed
from Ansible Galaxy (not reachable from the test machines) or with the full ``ansible`` bundle (a Python
newer than this repository's); this is the same idea in the few lines the tests need.
"""

from __future__ import annotations

import shlex
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.plugins.connection import ConnectionBase

DOCUMENTATION = """
    name: rootfs_chroot
    short_description: Run tasks inside a root file system folder with chroot
    description:
        - Commands run as C(chroot <folder> /bin/sh -c <command>); files are copied in and out through the
          chroot's own shell, so symbolic links inside the root file system never point outside it.
    options:
        remote_addr:
            description: The root file system folder.
            default: inventory_hostname
            vars:
                - name: inventory_hostname
                - name: ansible_host
        executable:
            description: The shell inside the root file system.
            default: /bin/sh
            vars:
                - name: ansible_executable
    extends_documentation_fragment:
        - connection_pipelining
"""


class Connection(ConnectionBase):
    """chroot into the folder named by ansible_host; the controller must run as root."""

    transport = "rootfs_chroot"
    has_pipelining = True
    has_tty = False
    default_user = "root"

    def _connect(self):
        if not self._connected:
            root = self.get_option("remote_addr")
            probe = subprocess.run(["chroot", root, "/bin/true"], capture_output=True, check=False)
            if probe.returncode != 0:
                raise AnsibleConnectionFailure(f"cannot chroot into {root}: {probe.stderr.decode().strip()}")
            self._root = root
            self._connected = True
        return self

    def _chroot(self, command: str, stdin=subprocess.DEVNULL, input_data: bytes | None = None):
        shell = self.get_option("executable")
        process = subprocess.Popen(
            ["chroot", self._root, shell, "-c", command],
            stdin=subprocess.PIPE if input_data is not None else stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = process.communicate(input_data)
        return process.returncode, out, err

    def exec_command(self, cmd, in_data=None, sudoable=False):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        self._connect()
        return self._chroot(cmd, input_data=in_data)

    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        self._connect()
        with open(in_path, "rb") as source:
            code, _, err = self._chroot(f"cat > {shlex.quote(out_path)}", stdin=source)
        if code != 0:
            raise AnsibleError(f"copying {in_path} to {out_path} in {self._root}: {err.decode().strip()}")

    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        self._connect()
        code, out, err = self._chroot(f"cat {shlex.quote(in_path)}")
        if code != 0:
            raise AnsibleError(f"copying {in_path} out of {self._root}: {err.decode().strip()}")
        with open(out_path, "wb") as target:
            target.write(out)

    def close(self):
        self._connected = False
