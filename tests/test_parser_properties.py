"""Property tests (Hypothesis) of the parsers that read what other programs write: nvidia-smi output, Nsight
Systems CSV exports, HyperPod's resource config and our provisioning parameters, EFA sysfs counters.

The property is the same everywhere: any input either parses or raises the tool's own error type, never
another exception; and what a parser accepts keeps the invariants the rest of the tool relies on (no
newline reaches a config file, no negative counter is exported).
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import string
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
VALIDATION = ROOT / "4.validation_observability"
PROFILE = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def load(name: str, path: Path, folder: Path | None = None):
    """A script or package module by path; ``folder`` goes on sys.path for a package's own imports."""
    if folder is not None and str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


HEALTHCHECK = VALIDATION / "2.gpu-cluster-healthcheck"
parsers = load("gpu_healthcheck.parsers", HEALTHCHECK / "gpu_healthcheck" / "parsers.py", HEALTHCHECK)
kernel_stats = load("nccl_kernel_stats_props", VALIDATION / "5.nsight" / "nccl_kernel_stats.py")
exporter = load("efa_exporter_props", VALIDATION / "3.efa-node-exporter" / "efa_exporter.py")
LIFECYCLE = ROOT / "1.architectures/5.sagemaker-hyperpod/LifecycleScripts/base-config"
lifecycle_config = load(
    "hyperpod_lifecycle.config", LIFECYCLE / "hyperpod_lifecycle" / "config.py", LIFECYCLE
)

# Text that looks like what the tools read: printable, with separators, units and the odd control byte.
tool_text = st.text(alphabet=string.printable + "\x00\u00e9\u2014[]%", max_size=400)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=5),
    max_leaves=20,
)


@PROFILE
@given(tool_text)
def test_nvidia_smi_csv_parses_or_says_why(text):
    try:
        rows = parsers.parse_query_csv(text)
    except parsers.ParseError:
        return
    assert all(isinstance(row, dict) for row in rows)


@PROFILE
@given(
    st.lists(
        st.lists(
            st.sampled_from(["GPU 00000000:53:00.0", "    Clocks", "        SM : 1980 MHz", "x"]) | tool_text
        ),
        max_size=6,
    )
)
def test_nvidia_smi_query_parses_or_says_why(blocks):
    text = "\n".join(line for block in blocks for line in block)
    try:
        gpus = parsers.parse_smi_query(text)
    except parsers.ParseError:
        return
    assert gpus and all(isinstance(fields, dict) for fields in gpus.values())


CSV_HEADER = "Time (%),Total Time (ns),Instances,Avg (ns),Med (ns),Min (ns),Max (ns),StdDev (ns),Name"
csv_cell = st.one_of(st.integers(-(10**12), 10**12).map(str), st.floats().map(str), tool_text)


@PROFILE
@given(st.one_of(tool_text, st.lists(st.lists(csv_cell, min_size=9, max_size=9), max_size=5)))
def test_nsight_csv_parses_or_says_why(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("nsys") / "rank0_cuda_gpu_kern_sum.csv"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    else:
        path.write_text("\n".join([CSV_HEADER, *(",".join(json.dumps(c) for c in row) for row in content)]))
    try:
        kernel_stats.read_csv(path)
    except kernel_stats.InputError:
        return


@PROFILE
@given(json_value)
def test_provisioning_parameters_parse_or_say_why_and_never_carry_a_newline(data):
    try:
        params = lifecycle_config.parse_provisioning_parameters(data)
    except lifecycle_config.ConfigError:
        return
    names = [params.controller_group, params.fsx_dns_name, params.fsx_mountname, params.login_group or ""]
    names += [g.partition_name for g in params.worker_groups] + [
        g.instance_group_name for g in params.worker_groups
    ]
    assert not any(char in name for name in names for char in "\n\r\t #:")


@PROFILE
@given(json_value)
def test_resource_config_parses_or_says_why(data):
    try:
        lifecycle_config.parse_resource_config(data)
    except lifecycle_config.ConfigError:
        return


@PROFILE
@given(
    st.dictionaries(
        st.sampled_from(["rx_bytes", "tx_bytes", "rx_drops", "lifespan"]),
        st.one_of(st.binary(max_size=24), st.integers(-(10**6), 10**15).map(lambda i: f"{i}\n".encode())),
    )
)
def test_efa_counters_never_crash_and_never_export_garbage(tmp_path_factory, files):
    root = tmp_path_factory.mktemp("sys")
    device = root / "class" / "infiniband" / "rdmap0s6"
    counters = device / "ports" / "1" / "hw_counters"
    counters.mkdir(parents=True)
    driver = root / "bus" / "pci" / "drivers" / "efa"
    driver.mkdir(parents=True)
    (device / "device").mkdir()
    (device / "device" / "driver").symlink_to(driver)
    for name, data in files.items():
        (counters / name).write_bytes(data)
    snapshot = exporter.read_efa(root)
    assert all(sample.value >= 0 for sample in snapshot.samples)
    # Every counter file is exactly one sample or one error (no port state files here: nothing else).
    assert len(snapshot.samples) + len(snapshot.errors) == len(files)
    for name, data in files.items():
        text = data.decode("utf-8").strip() if _utf8(data) else ""
        if re.fullmatch(r"[0-9]+", text):  # a plain counter is exported as it is (lifespan: ms -> s)
            expected = int(text) * (1e-3 if name == "lifespan" else 1)
            assert any(math.isclose(s.value, expected) for s in snapshot.samples)


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
