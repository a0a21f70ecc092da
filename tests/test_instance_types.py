"""1.architectures/instance-types.yaml: the facts the tools judge against are the published ones.

The loader is the validation tools' own (one of its identical copies); the file is also checked
against FACTS-style anchors so that a fantasy threshold (800 GB/s for two p5 nodes) cannot slip in.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
FILE = ROOT / "1.architectures" / "instance-types.yaml"
_spec = importlib.util.spec_from_file_location(
    "validation_instance_types", ROOT / "4.validation_observability/6.nccl-tests/nccl_bench/instance_types.py"
)
instance_types = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = instance_types  # dataclasses look their module up
_spec.loader.exec_module(instance_types)
TYPES = instance_types.load(FILE)


def test_every_type_loads_with_its_facts():
    raw = yaml.safe_load(FILE.read_text())
    assert set(TYPES) == set(raw["instance_types"]) and len(TYPES) >= 12
    assert FILE.read_text().startswith("# Instance facts")  # the header comment says what is what


@pytest.mark.parametrize(
    ("name", "gpus", "model", "efa", "rdma", "tflops"),
    [
        ("p4d.24xlarge", 8, "A100", 4, True, 312),
        ("p4de.24xlarge", 8, "A100", 4, True, 312),
        ("p5.48xlarge", 8, "H100", 32, True, 989),
        ("p5e.48xlarge", 8, "H200", 32, True, 989),
        ("p5en.48xlarge", 8, "H200", 16, True, 989),
        ("p6-b200.48xlarge", 8, "B200", 8, True, 2250),
        ("g5.48xlarge", 8, "A10G", 1, False, None),
        ("g4dn.metal", 8, "T4", 1, False, None),
        ("trn1.32xlarge", 0, "Trainium", 8, True, None),
        ("trn1n.32xlarge", 0, "Trainium", 16, True, None),
    ],
)
def test_published_facts(name, gpus, model, efa, rdma, tflops):
    facts = TYPES[name]
    assert (facts.gpus, facts.accelerator_model, facts.efa_devices, facts.device_rdma) == (
        gpus,
        model,
        efa,
        rdma,
    )
    assert facts.bf16_dense_tflops == tflops  # dense, not the sparse figure


def test_busbw_bands_match_published_runs():
    p5 = TYPES["p5.48xlarge"]
    assert (p5.busbw_two_node.low, p5.busbw_two_node.high) == (440, 490)  # 2x p5, 1-16 GB messages
    assert p5.busbw_single_node.judge(370) == "within" and p5.busbw_single_node.judge(470) == "within"
    assert TYPES["p4de.24xlarge"].busbw_two_node.judge(78) == "within"  # 2x p4de ~78 GB/s at 2 GB
    assert p5.busbw_band(4) == p5.busbw_two_node and p5.judge_min_bytes == 1 << 30
    for facts in TYPES.values():
        for band in (facts.busbw_single_node, facts.busbw_two_node):
            if band is not None:
                assert band.high <= 500, f"{facts.name}: {band} is beyond any published all_reduce busbw"
                if facts.nvlink_gbytes_per_s_per_gpu:
                    assert band.high < facts.nvlink_gbytes_per_s_per_gpu


def test_detection_and_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("INSTANCE_TYPE", raising=False)
    monkeypatch.setenv("INSTANCE_TYPES_FILE", str(FILE))
    dmi = tmp_path / "sys/devices/virtual/dmi/id"
    dmi.mkdir(parents=True)
    (dmi / "product_name").write_text("p5en.48xlarge\n")
    assert instance_types.resolve(None, root=tmp_path).name == "p5en.48xlarge"
    (dmi / "product_name").write_text("Standard PC (Q35 + ICH9, 2009)\n")
    assert instance_types.resolve(None, root=tmp_path) is None  # not an EC2 name: unknown, no error
    (dmi / "product_name").write_text("x9.large\n")
    assert instance_types.resolve(None, root=tmp_path) is None  # an EC2 type the file lacks
    monkeypatch.setenv("INSTANCE_TYPE", "g5.48xlarge")
    assert instance_types.resolve(None, root=tmp_path).name == "g5.48xlarge"  # the environment wins
    with pytest.raises(
        instance_types.InstanceTypesError, match=r"unknown instance type 'p9\.huge'; known: g4dn"
    ):
        instance_types.resolve("p9.huge")
    bad = tmp_path / "bad.yaml"
    bad.write_text("instance_types:\n  p5.48xlarge:\n    accelerator: {kind: gpu}\n")
    with pytest.raises(
        instance_types.InstanceTypesError,
        match=r"p5\.48xlarge lacks or mistypes 'efa'; compare it with p5\.48xlarge",
    ):
        instance_types.load(bad)
    with pytest.raises(
        instance_types.InstanceTypesError, match=r"--instance-types /nope\.yaml does not exist"
    ):
        instance_types.resolve("p5.48xlarge", "/nope.yaml")
