"""The exporters of the stack and what they emit: the EFA exporter (run on a fake sysfs tree built with
its own tests' builder, which uses the driver's real counter names), the training textfile tool (run on
the recorded training metrics), and the recorded outputs of the node, DCGM and Slurm exporters."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import training_textfile
from promql_check import FIXTURES, PROMETHEUS_OWN, exposition_names

EFA_FOLDER = Path(__file__).resolve().parents[2] / "3.efa-node-exporter"
EFA_EXPORTER = EFA_FOLDER / "efa_exporter.py"
TRAINING_FIXTURES = {"cpu-ddp": FIXTURES / "cpu-ddp-metrics.jsonl", "fsdp": FIXTURES / "fsdp-metrics.jsonl"}


def efa_sysfs_builder() -> ModuleType:
    """The EFA exporter tests' fake-sysfs builder, loaded from its file."""
    spec = importlib.util.spec_from_file_location(
        "efa_sysfs_for_stack", EFA_FOLDER / "tests" / "efa_sysfs.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_efa_node(root: Path) -> Path:
    """A node with two current EFA devices (every counter of the driver), the second port DOWN."""
    sysfs = efa_sysfs_builder()
    sysfs.write_device(root, "rdmap16s27", device_counters=sysfs.DEVICE_COUNTERS)
    sysfs.write_device(
        root,
        "rdmap32s27",
        device_counters=sysfs.DEVICE_COUNTERS,
        port_state={"state": "1: DOWN", "phys_state": "3: Disabled", "rate": "100 Gb/sec (4X EDR)"},
    )
    return root


def efa_exposition(sysfs_root: Path) -> str:
    """``efa_exporter.py --once`` on a tree."""
    return subprocess.run(
        [sys.executable, str(EFA_EXPORTER), "--once", "--sysfs-root", str(sysfs_root)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout


def training_state(fixture: Path) -> training_textfile.RunMetrics:
    """A metrics.jsonl read whole."""
    follower = training_textfile.MetricsFollower(fixture)
    follower.poll()
    return follower.state


def training_names() -> set[str]:
    """Names the training textfile of both recorded runs holds."""
    names: set[str] = set()
    for fixture in TRAINING_FIXTURES.values():
        names |= exposition_names(training_textfile.render(training_state(fixture), "r"))
    return names


def exporter_names(efa_sysfs_root: Path) -> dict[str, set[str]]:
    """{exporter: metric names it emits}."""
    return {
        "efa": exposition_names(efa_exposition(efa_sysfs_root)),
        "training (node exporter textfile)": training_names(),
        "node exporter": exposition_names((FIXTURES / "node-exporter.prom").read_text()),
        "dcgm exporter": exposition_names((FIXTURES / "dcgm-exporter.prom").read_text()),
        "slurm exporter": exposition_names((FIXTURES / "slurm-exporter.prom").read_text()),
        "prometheus": set(PROMETHEUS_OWN),
    }
