"""A local AWS: moto in server mode on loopback, plus stack helpers for the tests.

``AwsEmulator`` starts ``python -m testbed.aws serve`` (moto's server app with the emulator
extensions of ``testbed.moto_extensions`` registered) on 127.0.0.1 and a free port, over HTTPS as AWS
endpoints are (its certificate signed at start by a certificate authority made for it with trustme),
and gives the environment the AWS CLI and boto3 need: ``AWS_ENDPOINT_URL``, ``AWS_CA_BUNDLE`` (that
authority), dummy credentials and a region. The
reference READMEs' ``aws ...`` commands then run unchanged against it.

Command line (state in ``.testbed/aws`` under the current folder unless ``--state-dir``)::

    python -m testbed.aws up        # prints the `export ...` lines
    python -m testbed.aws status
    python -m testbed.aws down
"""

from __future__ import annotations

import argparse
import os
import signal
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import boto3
import trustme

from testbed.service import Service, run_cli

DEFAULT_STATE_DIR = Path(".testbed/aws")
STATE_FILE = "emulator.json"
LOG_FILE = "moto.log"
PORT_FILE = "port"
CA_FILE, CERT_FILE, KEY_FILE = "ca.crt", "tls.crt", "tls.key"
DEFAULT_REGION = "us-east-1"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
START_TIMEOUT_S = 60.0
STACK_TIMEOUT_S = 300.0
# Variables that would send the CLI to a real account or profile instead of the emulator.
_FOREIGN = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CONFIG_FILE", "AWS_ROLE_ARN")
FAILED_STATUSES = {"CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "UPDATE_ROLLBACK_COMPLETE"}


class EmulatorError(RuntimeError):
    """The emulator did not start, or a stack operation on it failed."""


class AwsEmulator(Service):
    """moto server on loopback, started as a subprocess with its own state folder and log."""

    error = EmulatorError
    state_file = STATE_FILE

    def __init__(self, state_dir: Path = DEFAULT_STATE_DIR, region: str = DEFAULT_REGION, keep: bool = False):
        super().__init__(Path(state_dir), keep)
        self.region = region
        self.port: int | None = None

    @classmethod
    def attach(cls, state_dir: Path = DEFAULT_STATE_DIR) -> AwsEmulator:
        """The emulator started earlier (``up``) whose state is in ``state_dir``."""
        state_file = Path(state_dir) / STATE_FILE
        state = cls._read_state(
            state_dir, f"no emulator state in {state_file}; start one with `python -m testbed.aws up`"
        )
        emulator = cls(Path(state_dir), region=state["region"])
        emulator.port = state["port"]
        return emulator._adopt(state)

    @property
    def pid(self) -> int | None:
        """The server process's PID (None when not started)."""
        return self._pids.get("emulator")

    @property
    def endpoint(self) -> str:
        """The URL every AWS SDK and the CLI are pointed at."""
        return f"https://127.0.0.1:{self.port}"

    @property
    def certificate(self) -> Path:
        """The certificate authority that signed the server's certificate (``AWS_CA_BUNDLE``)."""
        return self.state_dir / CA_FILE

    @property
    def env(self) -> dict[str, str]:
        """What to export so that ``aws`` and boto3 talk to this emulator."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_CA_BUNDLE": str(self.certificate),
            **DUMMY_CREDENTIALS,
            "AWS_DEFAULT_REGION": self.region,
        }

    def export(self, setenv: Callable[[str, str], object]) -> None:
        """Call ``setenv`` (e.g. ``monkeypatch.setenv``) for each variable of ``env``."""
        for key, value in self.env.items():
            setenv(key, value)

    def environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) pointed at the emulator, profiles removed."""
        merged = {k: v for k, v in (os.environ if base is None else base).items() if k not in _FOREIGN}
        return {**merged, **self.env}

    def start(self) -> AwsEmulator:
        """Start the server and wait until it answers; raise with its log if it does not."""
        self._replace_stale(f"{self.state_dir / STATE_FILE} exists: an emulator runs there; stop it first")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._claim_state_dir()
        (self.state_dir / PORT_FILE).unlink(missing_ok=True)
        write_certificate(self.state_dir / CA_FILE, self.state_dir / CERT_FILE, self.state_dir / KEY_FILE)
        repo_root = Path(__file__).resolve().parents[1]
        argv = [sys.executable, "-m", "testbed.aws", "serve", "--state-dir", str(self.state_dir)]
        # AWS managed policies (e.g. AmazonSageMakerClusterInstanceRolePolicy) exist, with their
        # documents, as in any account: templates attach them and validators read them.
        env = {**os.environ, "PYTHONPATH": str(repo_root), "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
        try:
            self._spawn("emulator", argv, self.state_dir / LOG_FILE, env=env, cwd=repo_root)
            self.port = self._wait_until(self._answering_port, START_TIMEOUT_S, "emulator did not answer")
        except BaseException:
            self.stop()
            raise
        self._save_state()
        return self

    def _state(self) -> dict[str, Any]:
        return {"pid": self.pid, "port": self.port, "region": self.region}

    def _answering_port(self) -> int | None:
        """The server's port once it wrote it and answers there, else None."""
        port_file = self.state_dir / PORT_FILE
        port = port_file.read_text().strip() if port_file.is_file() else ""
        if port and _answers(f"https://127.0.0.1:{port}/moto-api/reset-auth", self.certificate):
            return int(port)
        return None

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` on the emulator."""
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            verify=str(self.certificate),
        )

    def deploy(self, template: Path, stack_name: str, parameters: Mapping[str, str] | None = None) -> dict:
        """Create ``stack_name`` from ``template``; return its outputs, or raise with the stack events."""
        return deploy_stack(self.client("cloudformation"), template, stack_name, parameters)

    def delete(self, stack_name: str) -> None:
        """Delete a stack and wait until it is gone."""
        cloudformation = self.client("cloudformation")
        cloudformation.delete_stack(StackName=stack_name)
        cloudformation.get_waiter("stack_delete_complete").wait(
            StackName=stack_name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
        )


def write_certificate(ca: Path, cert: Path, key: Path) -> None:
    """A certificate authority made for this emulator (trustme), and the server's certificate for
    127.0.0.1 and localhost signed by it, with its private key (0600)."""
    authority = trustme.CA(organization_name="testbed AWS emulator")
    server = authority.issue_cert("127.0.0.1", "localhost")
    authority.cert_pem.write_to_path(str(ca))
    key.touch(mode=0o600)
    server.private_key_pem.write_to_path(str(key))
    for index, blob in enumerate(server.cert_chain_pems):
        blob.write_to_path(str(cert), append=index > 0)


def _answers(url: str, certificate: Path) -> bool:
    context = ssl.create_default_context(cafile=str(certificate))
    try:
        with urllib.request.urlopen(url, timeout=2, context=context):  # noqa: S310 - loopback URL we built
            return True
    except urllib.error.HTTPError:
        return True  # an HTTP answer, even an error, means the server is up
    except OSError:
        return False


def deploy_stack(cloudformation: Any, template: Path, stack_name: str, parameters=None) -> dict[str, str]:
    """Create a stack, wait for it, return ``{OutputKey: OutputValue}``; failures carry the events."""
    cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=Path(template).read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in (parameters or {}).items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
    )
    stack = wait_for_stack(cloudformation, stack_name)
    return {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}


def wait_for_stack(cloudformation: Any, stack_name: str, timeout: float = STACK_TIMEOUT_S) -> dict:
    """Wait until the stack settles; raise ``EmulatorError`` with its events when it failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        status = stack["StackStatus"]
        if status in FAILED_STATUSES:
            raise EmulatorError(
                f"stack {stack_name} is {status}:\n{stack_events(cloudformation, stack_name)}"
            )
        if not status.endswith("_IN_PROGRESS"):
            return stack
        time.sleep(0.5)
    raise EmulatorError(f"stack {stack_name} did not settle in {timeout:.0f}s")


def stack_events(cloudformation: Any, stack_name: str) -> str:
    """One line per stack event, oldest first: resource, type, status, reason."""
    events = cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"]
    return "\n".join(
        f"  {e['LogicalResourceId']} ({e['ResourceType']}) {e['ResourceStatus']} "
        f"{e.get('ResourceStatusReason', '')}".rstrip()
        for e in reversed(events)
    )


def exports_line(env: Mapping[str, str]) -> str:
    """The shell line that points the AWS CLI and SDKs at the emulator."""
    return "export " + " ".join(f"{key}={value}" for key, value in env.items())


def serve(state_dir: Path) -> None:
    """Run moto's server app with the extensions on 127.0.0.1 and a free port, over HTTPS with the
    certificate in ``state_dir`` (the port is written there)."""
    # Imported here, in the server process only: moto is slow to import and patched by the extensions.
    from moto.moto_server.threaded_moto_server import MotoRequestHandler  # noqa: PLC0415
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app  # noqa: PLC0415
    from werkzeug.serving import make_server  # noqa: PLC0415

    from testbed import moto_extensions  # noqa: PLC0415

    added = moto_extensions.apply()
    print(f"emulator extensions: {', '.join(added)}", flush=True)
    app = DomainDispatcherApplication(create_backend_app)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(state_dir / CERT_FILE, state_dir / KEY_FILE)
    server = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler, ssl_context=tls
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    (state_dir / PORT_FILE).write_text(f"{server.server_address[1]}\n")
    print(f"moto server on https://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    """``up`` | ``status`` | ``down`` (and ``serve``, the server process itself)."""
    commands = [
        ("up", _cli_up, "start an emulator that keeps running after this command"),
        ("status", _cli_status, "say whether it runs, and its environment"),
        ("down", _cli_down, "stop it and remove its state folder"),
        ("serve", lambda ns: serve(ns.state_dir), "the server process itself (what `up` starts)"),
    ]
    region = lambda _, parser: parser.add_argument("--region", default=DEFAULT_REGION)  # noqa: E731
    description = __doc__.splitlines()[0]
    return run_cli(
        argv, "python -m testbed.aws", description, DEFAULT_STATE_DIR, commands, (EmulatorError,), region
    )


def _cli_up(args: argparse.Namespace) -> None:
    emulator = AwsEmulator(args.state_dir, region=args.region, keep=True).start()
    print(f"AWS emulator up: {emulator.endpoint} (moto, pid {emulator.pid})")
    print(exports_line(emulator.env))


def _cli_status(args: argparse.Namespace) -> None:
    emulator = AwsEmulator.attach(args.state_dir)
    state = "running" if emulator.running() else "not running (stale state; run down)"
    print(f"AWS emulator {state}: {emulator.endpoint}")
    print(exports_line(emulator.env))


def _cli_down(args: argparse.Namespace) -> None:
    AwsEmulator.attach(args.state_dir).stop()
    print(f"AWS emulator stopped and {args.state_dir} removed")


if __name__ == "__main__":
    sys.exit(main())
