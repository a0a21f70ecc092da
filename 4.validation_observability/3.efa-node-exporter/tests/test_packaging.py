"""The three ways to run the exporter (systemd, container, DaemonSet) agree with it and with each other."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import efa_exporter
import yaml

from testbed import kube
from testbed.standins import JOB_TOOLS, run_with_standins
from testbed.system import require_programs
from testbed.walkthrough import run_walkthrough

FOLDER = Path(efa_exporter.__file__).resolve().parent
ROOT = FOLDER.parents[1]
UNIT = FOLDER / "systemd" / "efa-exporter.service"
DOCKERFILE = FOLDER / "efa-exporter.Dockerfile"
TEMPLATE = FOLDER / "kubernetes" / "efa-exporter.yaml-template"
MAKEFILE = FOLDER / "Makefile"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/efa-exporter:1.0.0"


def unit_service() -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read(UNIT)
    return dict(parser["Service"])


def unit_command() -> list[str]:
    """ExecStart with $EFA_EXPORTER_ARGS expanded from the unit's Environment=, as systemd does."""
    service = unit_service()
    name, _, value = shlex.split(service["Environment"])[0].partition("=")
    return shlex.split(service["ExecStart"].replace(f"${name}", value))


def makefile_default(name: str) -> str:
    return re.search(rf"^{name} \?= (.+)$", MAKEFILE.read_text(), re.MULTILINE).group(1).strip()


def rendered_daemonset(**values: str) -> dict:
    text = kube.render_manifest(
        TEMPLATE, {"IMAGE": IMAGE, "NAMESPACE": makefile_default("NAMESPACE"), **values}
    )
    return yaml.safe_load(text)


def test_systemd_unit_runs_the_installed_exporter_with_valid_flags():
    command = unit_command()
    prefix = makefile_default("PREFIX")
    assert command[:2] == [f"{prefix}/venv/bin/python", f"{prefix}/efa_exporter.py"]
    args = efa_exporter.parse_args(command[2:])
    assert (args.port, str(args.sysfs_root), args.once) == (efa_exporter.DEFAULT_PORT, "/sys", False)
    service = unit_service()
    assert service["DynamicUser"] == "yes" and service["ProtectSystem"] == "strict"


def test_systemd_analyze_accepts_the_unit(tmp_path):
    analyze = require_programs("systemd unit check", "systemd-analyze", how="install systemd")[
        "systemd-analyze"
    ]
    # Point ExecStart at this checkout (the installed paths do not exist here); nothing else changes.
    prefix = makefile_default("PREFIX")
    text = UNIT.read_text().replace(f"{prefix}/venv/bin/python", sys.executable)
    text = text.replace(f"{prefix}/efa_exporter.py", str(FOLDER / "efa_exporter.py"))
    unit = tmp_path / "efa-exporter.service"
    unit.write_text(text)
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "efa-exporter.service" not in result.stderr, result.stderr  # no warnings about our unit


def dockerfile_instruction(keyword: str) -> list[str]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    matches = re.findall(rf"^{keyword}\s+(.+)$", text, re.MULTILINE)
    assert len(matches) == 1, f"{keyword} {matches}"
    return yaml.safe_load(matches[0]) if matches[0].startswith("[") else matches[0].split()


def test_container_entrypoint_and_cmd_are_valid_and_read_the_mounted_sysfs():
    entrypoint, cmd = dockerfile_instruction("ENTRYPOINT"), dockerfile_instruction("CMD")
    assert entrypoint == ["python", "/app/efa_exporter.py"]
    assert "COPY efa_exporter.py ./" in DOCKERFILE.read_text() and "WORKDIR /app" in DOCKERFILE.read_text()
    args = efa_exporter.parse_args(cmd)
    assert str(args.sysfs_root) == "/host/sys"
    assert dockerfile_instruction("USER") == ["65534:65534"]


def test_one_port_everywhere():
    port = efa_exporter.DEFAULT_PORT
    daemonset = rendered_daemonset()
    pod = daemonset["spec"]["template"]
    container = pod["spec"]["containers"][0]
    found = {
        "unit": efa_exporter.parse_args(unit_command()[2:]).port,
        "Dockerfile CMD": efa_exporter.parse_args(dockerfile_instruction("CMD")).port,
        "Dockerfile EXPOSE": int(dockerfile_instruction("EXPOSE")[0]),
        "Dockerfile HEALTHCHECK": int(re.search(r"127\.0\.0\.1:(\d+)", DOCKERFILE.read_text()).group(1)),
        "DaemonSet args": efa_exporter.parse_args(container["args"]).port,
        "DaemonSet containerPort": container["ports"][0]["containerPort"],
        "DaemonSet annotation": int(pod["metadata"]["annotations"]["prometheus.io/port"]),
        "Makefile": int(makefile_default("PORT")),
    }
    assert set(found.values()) == {port}, found


def test_daemonset_renders_validates_and_mounts_sysfs_read_only():
    text = kube.render_manifest(TEMPLATE, {"IMAGE": IMAGE, "NAMESPACE": "observability"})
    assert kube.validate_manifest(text) == []
    daemonset = yaml.safe_load(text)
    assert daemonset["metadata"]["namespace"] == "observability"
    spec = daemonset["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["image"] == IMAGE
    sysfs_root = str(efa_exporter.parse_args(container["args"]).sysfs_root)
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == sysfs_root)
    assert mount["readOnly"] is True
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert volume["hostPath"]["path"] == "/sys"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"operator": "Exists"} in spec["tolerations"]  # runs on tainted GPU/EFA nodes too


def test_make_k8s_renders_the_same_as_the_test_bed(tmp_path):
    require_programs("make k8s", "make", "envsubst")
    shutil.copy(MAKEFILE, tmp_path / "Makefile")
    shutil.copytree(TEMPLATE.parent, tmp_path / "kubernetes")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    result = subprocess.run(
        ["make", "-C", str(tmp_path), "k8s", f"IMAGE={IMAGE}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load((tmp_path / "kubernetes" / "efa-exporter.yaml").read_text()) == rendered_daemonset()
    missing = subprocess.run(
        ["make", "-C", str(tmp_path), "k8s"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert missing.returncode != 0 and "IMAGE is not set" in missing.stderr


def test_requirements_pin_is_the_repository_pin():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = {
        item for group in pyproject["dependency-groups"].values() for item in group if isinstance(item, str)
    }
    requirement = (FOLDER / "requirements.txt").read_text().split()
    assert requirement == ["prometheus-client==0.26.0"] and requirement[0] in pins
    arg = re.search(r"^ARG PROMETHEUS_CLIENT_VERSION=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE).group(1)
    assert requirement[0].endswith(f"=={arg}")


def test_readme_walkthrough_serves_metrics(artifacts_root):
    require_programs("README walkthrough", "curl")
    result = run_walkthrough(FOLDER / "README.md", "local", artifacts_root / "wt-efa-exporter", timeout=300)
    assert result.returncode == 0, result.output[-4000:]
    assert "efa_devices" in result.output and "efa_exporter_info" in result.output
    assert "serving http://127.0.0.1:" in result.output


def test_readme_k8s_walkthrough_renders_a_valid_daemonset(artifacts_root, tmp_path):
    require_programs("make k8s", "make", "envsubst")
    run = run_with_standins(
        FOLDER / "README.md", "k8s", artifacts_root / "wt-efa-exporter-k8s", tmp_path / "bin", timeout=120
    ).check()
    text = (
        run.workdir / "4.validation_observability/3.efa-node-exporter/kubernetes/efa-exporter.yaml"
    ).read_text()
    assert "image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/efa-exporter:dev" in text and "${" not in text
    assert kube.validate_manifest(text) == []
    assert run.calls == ["kubectl apply -f kubernetes/efa-exporter.yaml"]
    assert [(o["kind"], o["name"]) for o in run.applied] == [("daemonset", "efa-exporter")]


def test_readme_container_walkthrough_builds_and_runs_the_image(artifacts_root, tmp_path):
    """Section 3's container block as written, with docker stood in: the Dockerfile, its context and
    its FROM are checked, and the run names the image just built with the host's /sys mounted."""
    run = run_with_standins(
        FOLDER / "README.md",
        "container",
        artifacts_root / "wt-efa-exporter-container",
        tmp_path / "bin",
        tools=JOB_TOOLS,
        timeout=120,
    ).check()
    versions = yaml.safe_load((run.workdir / "2.ami_and_containers" / "versions.yaml").read_text())
    built = run.images["built"]["efa-exporter:dev"]
    assert built["from"] == [versions["images"]["python-slim"]]
    assert Path(built["dockerfile"]).name == "efa-exporter.Dockerfile"
    assert run.calls == [
        "docker build -f efa-exporter.Dockerfile -t efa-exporter:dev .",
        "docker run --rm -p 9109:9109 -v /sys:/host/sys:ro efa-exporter:dev",
    ]
