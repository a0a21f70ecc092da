#!/usr/bin/env python3
"""One mpirun across the nodes of an AWS Batch multi-node parallel job (standard library only).

Every node runs the same command; AWS_BATCH_JOB_NODE_INDEX tells the nodes apart:

    batch_mnp.py --slots 8 --ssh -- /opt/nccl-tests/all_reduce_perf -b 8 -e 16G -f 2 -g 1

- The main node (AWS_BATCH_JOB_MAIN_NODE_INDEX) listens on --port (BATCH_MNP_PORT, default 2022).
- Each child connects to AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS and announces its node index,
  address and slots (ranks it hosts: its GPUs). With --ssh on the main node, the main node sends each child
  the public half of a key made for this job; the child starts its own sshd for that key on --ssh-port
  (its state folder only: no ~/.ssh is touched) and answers ready.
- Once all AWS_BATCH_JOB_NUM_NODES - 1 children are ready (within --timeout, BATCH_MNP_TIMEOUT), the main
  node writes an Open MPI hostfile (itself first) and runs mpirun over it; its exit status is mpirun's.
  Then it tells the children, which stop their sshd and exit 0. A child whose main node goes away
  exits 1.

Output: one status line per phase on stdout, `batch_mnp: phase=<phase> node=<index> key=value...`
(values shell-quoted where needed); errors are one line on stderr, `batch_mnp: error: ...`. Exit
status: mpirun's on the main node, 0 on a child after an orderly end, 1 on a failed rendezvous, 2 on bad
input. Runs on Python 3.10+ (the image's Ubuntu 22.04 python3).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from io import BufferedRWPair
from pathlib import Path

PREFIX = "batch_mnp"
FORWARDED_PREFIXES = ("FI_", "NCCL_")  # the EFA and NCCL settings of the job, passed to every rank
FORWARDED_NAMES = ("PATH", "LD_LIBRARY_PATH")
HANDSHAKE_TIMEOUT_S = 30.0  # one child's hello and ready, once it is connected
NEWLINE, ESCAPED_NEWLINE = "\n", "\\n"


class BadInput(Exception):
    """A missing or malformed variable or option: one line, exit status 2."""


class RendezvousError(Exception):
    """The nodes did not come together, or the main node went away: one line, exit status 1."""


@dataclass(frozen=True)
class Config:
    node: int
    main: int
    nodes: int
    main_address: str | None
    args: argparse.Namespace


@dataclass
class Member:
    node: int
    address: str
    slots: int
    stream: BufferedRWPair | None = None
    conn: socket.socket | None = None


def status(phase: str, node: int, **fields: object) -> None:
    """The one parseable line of a phase: key=value words that shlex.split reads back (newlines as \\n)."""
    words = [
        f"{key}={shlex.quote(str(value).replace(NEWLINE, ESCAPED_NEWLINE))}" for key, value in fields.items()
    ]
    print(" ".join([f"{PREFIX}: phase={phase} node={node}", *words]), flush=True)


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise BadInput(f"{message} (usage: batch_mnp.py --slots N [--ssh] -- COMMAND...)")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    try:
        return int(value)
    except ValueError:
        raise BadInput(f"{name}={value!r} is not an integer") from None


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = Parser(prog="batch_mnp.py", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--slots", type=int, required=True, help="MPI ranks on this node (its GPUs)")
    parser.add_argument("--port", type=int, default=env_int("BATCH_MNP_PORT", 2022))
    parser.add_argument("--timeout", type=float, default=env_int("BATCH_MNP_TIMEOUT", 600))
    parser.add_argument("--address", help="this node's address (default: the one that reaches the main node)")
    parser.add_argument("--ssh", action="store_true", help="main: job key, children run sshd")
    parser.add_argument("--ssh-port", type=int, default=22, help="the children's sshd port")
    parser.add_argument("--sshd", default="/usr/sbin/sshd", help="child: the sshd program")
    parser.add_argument("--state-dir", type=Path, default=Path("/tmp/batch_mnp"), help="keys and hostfile")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- and the program mpirun starts")
    args = parser.parse_args(argv)
    args.state_dir = args.state_dir.resolve()  # mpirun reads the hostfile from there
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command:
        raise BadInput("no command: put the program after '--', e.g. -- all_reduce_perf -b 8 -e 1G")
    for name, low, high in (("slots", 1, 4096), ("port", 1, 65535), ("ssh_port", 1, 65535)):
        if not low <= getattr(args, name) <= high:
            raise BadInput(f"--{name.replace('_', '-')}={getattr(args, name)} must be in [{low}, {high}]")
    if args.timeout <= 0:
        raise BadInput(f"--timeout={args.timeout} must be > 0 seconds")
    return args


def required_int(name: str, low: int, high: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None:
        raise BadInput(f"{name} is not set: run inside an AWS Batch multi-node parallel job")
    try:
        number = int(value)
    except ValueError:
        raise BadInput(f"{name}={value!r} is not an integer") from None
    if number < low or (high is not None and number > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise BadInput(f"{name}={number} must be {bound}")
    return number


def read_config(argv: list[str]) -> Config:
    """The options and the AWS Batch variables, validated."""
    args = parse_args(argv)
    nodes = required_int("AWS_BATCH_JOB_NUM_NODES", 1)
    node = required_int("AWS_BATCH_JOB_NODE_INDEX", 0, nodes - 1)
    main = required_int("AWS_BATCH_JOB_MAIN_NODE_INDEX", 0, nodes - 1)
    main_address = None
    if node != main:
        name = "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"
        main_address = os.environ.get(name, "")
        try:
            ipaddress.IPv4Address(main_address)
        except ValueError:
            raise BadInput(
                f"{name}={main_address!r} is not an IPv4 address (Batch sets it on children)"
            ) from None
    return Config(node, main, nodes, main_address, args)


def send(stream, message: dict) -> None:
    stream.write(json.dumps(message).encode() + b"\n")
    stream.flush()


def receive(stream) -> dict | None:
    """The next message, or None when the other side closed the connection."""
    line = stream.readline()
    if not line:
        return None
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError(f"unexpected message {line[:80]!r}")
    return message


def open_stream(conn: socket.socket):
    return conn.makefile("rwb")


# --- main node --------------------------------------------------------------------------------------


def make_job_key(state: Path) -> tuple[Path, str]:
    """A key pair for this job only; the public half goes to the children."""
    key = state / "id_ed25519"
    for path in (key, key.with_suffix(".pub")):
        path.unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "batch_mnp", "-f", str(key)], check=True
    )
    return key, key.with_suffix(".pub").read_text().strip()


def handshake(conn: socket.socket, config: Config, joined: dict, ssh: dict) -> Member:
    """Hello (node, address, slots) -> ssh settings -> ready.

    ValueError: a bad announce (refused, the wait goes on); RendezvousError: the child failed to get ready.
    """
    conn.settimeout(HANDSHAKE_TIMEOUT_S)
    stream = open_stream(conn)
    hello = receive(stream) or {}
    node, address, slots = hello.get("node"), hello.get("address"), hello.get("slots")
    if not isinstance(node, int) or not 0 <= node < config.nodes or node == config.main:
        raise ValueError(f"node index {node!r} is not a child of this {config.nodes}-node job")
    if node in joined:
        raise ValueError(f"node {node} joined twice (from {joined[node].address} and {address})")
    if not isinstance(slots, int) or slots < 1 or not isinstance(address, str):
        raise ValueError(f"node {node}: bad announce {hello}")
    send(stream, ssh)
    answer = receive(stream) or {}
    if "error" in answer:
        raise RendezvousError(f"node {node} could not get ready: {answer['error']}")
    if answer.get("ready") is not True:
        raise ValueError(f"node {node} closed the connection before it was ready")
    conn.settimeout(None)
    return Member(node, address, slots, stream, conn)


def gather(listener: socket.socket, config: Config, ssh: dict) -> dict[int, Member]:
    """Accept children until all have joined; RendezvousError naming the missing ones at the deadline."""
    expected = set(range(config.nodes)) - {config.main}
    joined: dict[int, Member] = {}
    deadline = time.monotonic() + config.args.timeout
    while set(joined) != expected:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            missing = ", ".join(str(n) for n in sorted(expected - set(joined)))
            abort(joined, f"node {config.main} (main) stopped waiting for node(s) {missing}")
            raise RendezvousError(
                f"timed out after {config.args.timeout:g} s waiting for node(s) {missing} of "
                f"{config.nodes} (joined: {len(joined)}); check that they are RUNNING and reach this node "
                f"on TCP port {config.args.port}"
            )
        listener.settimeout(remaining)
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        try:
            member = handshake(conn, config, joined, ssh)
        except (OSError, ValueError) as error:
            reject(conn, str(error))
            continue
        except RendezvousError as error:
            conn.close()
            abort(joined, str(error))
            raise
        joined[member.node] = member
        status("joined", config.main, child=member.node, address=member.address, slots=member.slots)
    return joined


def reject(conn: socket.socket, reason: str) -> None:
    print(f"{PREFIX}: error: refused a child: {reason}", file=sys.stderr, flush=True)
    with contextlib.suppress(OSError):
        send(open_stream(conn), {"error": reason})
    conn.close()


def abort(joined: dict[int, Member], reason: str) -> None:
    for member in joined.values():
        finish(member, {"error": reason})


def finish(member: Member, message: dict) -> None:
    with contextlib.suppress(OSError):  # that child is gone already
        send(member.stream, message)
    member.conn.close()


def find_mpirun() -> str:
    """mpirun by absolute path: Open MPI then sets its own PATH and LD_LIBRARY_PATH on the remote nodes."""
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        raise BadInput("mpirun is not on PATH (the nccl-tests image has it in /opt/amazon/openmpi/bin)")
    return mpirun


def mpirun_command(config: Config, mpirun: str, hostfile: Path, np: int, key: Path | None) -> list[str]:
    """One rank per slot of the hostfile; no tree spawn (only the main node holds the job key)."""
    command = [mpirun, "--allow-run-as-root", "--tag-output", "--bind-to", "none"]
    command += ["--hostfile", str(hostfile), "-np", str(np), "--mca", "plm_rsh_no_tree_spawn", "1"]
    if key is not None:
        ssh_args = f"-i {key} -p {config.args.ssh_port} -o StrictHostKeyChecking=no"
        ssh_args += " -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR"
        command += ["--mca", "plm_rsh_args", ssh_args]
    names = sorted(n for n in os.environ if n.startswith(FORWARDED_PREFIXES) or n in FORWARDED_NAMES)
    for name in names:
        command += ["-x", name]
    return command + config.args.command


def run_main(config: Config) -> int:
    args = config.args
    state = args.state_dir
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    mpirun = find_mpirun()  # before any waiting
    key, public = make_job_key(state) if args.ssh else (None, None)
    ssh = {"authorized_key": public, "ssh_port": args.ssh_port}
    joined: dict[int, Member] = {}
    address = args.address
    if config.nodes > 1:
        # All interfaces by default: the children reach the container's ENI (awsvpc), not a known address.
        with socket.create_server((args.address or "0.0.0.0", args.port)) as listener:  # noqa: S104
            status("listen", config.main, port=args.port, nodes=config.nodes, timeout_s=f"{args.timeout:g}")
            joined = gather(listener, config, ssh)
        address = address or next(iter(joined.values())).conn.getsockname()[0]
    members = [Member(config.main, address or "localhost", args.slots)]
    members += [joined[n] for n in sorted(joined)]
    hostfile = state / "hostfile"
    hostfile.write_text("".join(f"{m.address} slots={m.slots}\n" for m in members))
    np = sum(m.slots for m in members)
    status("hostfile", config.main, path=hostfile, hosts=len(members), slots=np)
    command = mpirun_command(config, mpirun, hostfile, np, key)
    status("launch", config.main, np=np, command=shlex.join(command))
    try:
        code = subprocess.run(command, check=False).returncode
    except BaseException:
        abort(joined, "mpirun did not finish (the main node was interrupted)")
        raise
    code = 128 - code if code < 0 else code  # killed by a signal: the shell's convention
    for member in joined.values():
        finish(member, {"exit": code})
    status("done", config.main, exit=code)
    return code


# --- child node -------------------------------------------------------------------------------------


def connect(config: Config) -> socket.socket:
    """Connect to the main node, retrying until --timeout: children may start before it listens."""
    args = config.args
    deadline = time.monotonic() + args.timeout
    while True:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if args.address:
                sock.bind((args.address, 0))
            sock.settimeout(max(1.0, min(10.0, deadline - time.monotonic())))
            sock.connect((config.main_address, args.port))
            return sock
        except OSError as error:
            sock.close()
            if time.monotonic() >= deadline:
                raise RendezvousError(
                    f"main node {config.main_address}:{args.port} did not answer within {args.timeout:g} s "
                    f"({error.strerror or error}); is node {config.main} running batch_mnp.py on that port?"
                ) from None
            time.sleep(1.0)


def start_sshd(config: Config, address: str, authorized_key: str, port: int) -> subprocess.Popen:
    """sshd for the job key only, from the state folder (host key, authorized_keys), bound to address."""
    state = config.args.state_dir
    host_key = state / "ssh_host_ed25519_key"
    if not host_key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    authorized = state / "authorized_keys"
    authorized.write_text(authorized_key + "\n")
    authorized.chmod(0o600)
    options = {
        "ListenAddress": address,
        "AuthorizedKeysFile": authorized,
        "PasswordAuthentication": "no",
        "KbdInteractiveAuthentication": "no",
        "PermitRootLogin": "prohibit-password",
        "StrictModes": "no",  # the state folder may sit under /tmp
        "PidFile": "none",
    }
    command = [config.args.sshd, "-D", "-e", "-f", "/dev/null", "-p", str(port), "-h", str(host_key)]
    for name, value in options.items():
        command += ["-o", f"{name}={value}"]
    sshd = subprocess.Popen(command)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # ready means listening: mpirun connects right after
        if sshd.poll() is not None:
            raise RendezvousError(f"sshd exited with status {sshd.returncode} (command: {' '.join(command)})")
        try:
            socket.create_connection((address, port), timeout=1).close()
            return sshd
        except OSError:
            time.sleep(0.1)
    sshd.terminate()
    raise RendezvousError(f"sshd is not listening on {address}:{port} after 10 s")


def keep_alive(conn: socket.socket) -> None:
    """Notice a main node whose instance vanished (no FIN ever comes) within about two minutes."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 6)):
        if hasattr(socket, name):
            conn.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def run_child(config: Config) -> int:
    args = config.args
    args.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    main = f"{config.main_address}:{args.port}"
    conn = connect(config)
    address = args.address or conn.getsockname()[0]
    status("connect", config.node, main=main, address=address, slots=args.slots)
    sshd = None
    gone = f"main node {main} closed the connection before the run finished"
    try:
        stream = open_stream(conn)
        conn.settimeout(max(args.timeout, HANDSHAKE_TIMEOUT_S))
        send(stream, {"node": config.node, "address": address, "slots": args.slots})
        reply = receive(stream)
        if reply is None or "error" in reply:
            reason = (reply or {}).get("error", "it closed the connection")
            raise RendezvousError(f"main node {main} refused this node: {reason}")
        if reply.get("authorized_key"):
            try:
                sshd = start_sshd(config, address, reply["authorized_key"], int(reply["ssh_port"]))
            except RendezvousError as error:
                send(stream, {"error": str(error)})  # the main node stops waiting and says why
                raise
            status("sshd", config.node, address=address, port=reply["ssh_port"])
        send(stream, {"ready": True})
        status("ready", config.node)
        conn.settimeout(None)
        keep_alive(conn)
        end = receive(stream)
        if end is None:
            raise RendezvousError(gone)
        if "error" in end:
            raise RendezvousError(f"main node {main} gave up: {end['error']}")
        status("done", config.node, exit=end.get("exit"))
        return 0
    except (OSError, ValueError) as error:
        raise RendezvousError(f"{gone} ({error})") from None
    finally:
        conn.close()
        if sshd is not None:
            sshd.terminate()
            sshd.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    node = os.environ.get("AWS_BATCH_JOB_NODE_INDEX", "?")
    try:
        config = read_config(sys.argv[1:] if argv is None else argv)
        return run_main(config) if config.node == config.main else run_child(config)
    except BadInput as error:
        print(f"{PREFIX}: error: {error}", file=sys.stderr, flush=True)
        return 2
    except RendezvousError as error:
        print(f"{PREFIX}: error: node {node}: {error}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
