#!/usr/bin/env python3
"""Start N training processes on this machine, as srun or a Kubernetes Job does across nodes.

    python src/launch.py --nproc 2 -- src/train.py --preset tiny --run-dir runs/local
    python src/launch.py --nproc 2 --max-restarts 1 -- src/train.py ...   # restart the group once

Each process gets JAX_COORDINATOR_ADDRESS (127.0.0.1:PORT, process 0 serves it), JAX_NUM_PROCESSES,
JAX_PROCESS_ID and RESTART_COUNT. When one process fails the others are stopped (a JAX job cannot go
on without a member), and with --max-restarts the group starts again and resumes from its newest
checkpoint. Exit status: 0, the first failing process's status, or 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="launch.py", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--nproc", type=int, default=2, help="processes to start (default 2)")
    parser.add_argument("--port", type=int, default=23456, help="coordinator port (default 23456)")
    parser.add_argument("--max-restarts", type=int, default=0, help="group restarts after a failure")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- script.py [args]: run with this Python")
    args = parser.parse_args(argv)
    args.command = args.command[1:] if args.command[:1] == ["--"] else args.command
    problems = [
        (args.nproc < 1, f"--nproc={args.nproc} must be at least 1"),
        (not 0 < args.port < 65536, f"--port={args.port} is not a TCP port; use 1024-65535"),
        (args.max_restarts < 0, f"--max-restarts={args.max_restarts} must not be negative"),
        (
            args.port + args.max_restarts > 65535,
            f"--port={args.port} + --max-restarts={args.max_restarts}: each restart takes the next port; "
            "use a lower --port",
        ),
        (not args.command, "no command; add '-- src/train.py --preset tiny'"),
    ]
    script = args.command[0] if args.command else "-"
    if not script.startswith("-") and not os.path.isfile(script):  # else every process fails on its own
        what = "is a folder" if os.path.isdir(script) else "does not exist"
        problems.append((True, f"the script {script} {what}; give the training script, e.g. -- src/train.py"))
    for bad, message in problems:
        if bad:
            print(f"error: {message}", file=sys.stderr)
            sys.exit(2)
    return args


def run_group(args: argparse.Namespace, restart: int) -> int:
    """Start the processes, wait; on the first failure stop the rest. The group's exit status."""
    coordinator = f"127.0.0.1:{args.port + restart}"  # a fresh port: the old one may linger in TIME_WAIT
    procs = []
    for index in range(args.nproc):
        env = {
            **os.environ,
            "JAX_COORDINATOR_ADDRESS": coordinator,
            "JAX_NUM_PROCESSES": str(args.nproc),
            "JAX_PROCESS_ID": str(index),
            "RESTART_COUNT": str(restart),
        }
        procs.append(subprocess.Popen([sys.executable, *args.command], env=env))
    while True:
        codes = [p.poll() for p in procs]
        failed = [c for c in codes if c not in (None, 0)]
        if failed or all(c == 0 for c in codes):
            break
        time.sleep(0.2)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return failed[0] if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    for restart in range(args.max_restarts + 1):
        code = run_group(args, restart)
        if code in (0, 2):  # done, or a configuration error that a restart would repeat
            return code
        if restart < args.max_restarts:
            print(
                f"launch: a process exited with {code}; restart {restart + 1} of {args.max_restarts}",
                file=sys.stderr,
                flush=True,
            )
    return code


if __name__ == "__main__":
    sys.exit(main())
