"""efa-cheatsheet.md's instance table is generated from instance-types.yaml and cannot drift."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "1.architectures" / "efa_cheatsheet.py"


def load_generator():
    spec = importlib.util.spec_from_file_location("efa_cheatsheet", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["efa_cheatsheet"] = module
    spec.loader.exec_module(module)
    return module


def test_rows_follow_the_facts_and_rdma_rules():
    text = (ROOT / "1.architectures" / "efa-cheatsheet.md").read_text()
    facts = yaml.safe_load((ROOT / "1.architectures" / "instance-types.yaml").read_text())["instance_types"]
    for name, entry in facts.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` |"))
        assert f"| {entry['efa']['devices']} |" in row
        assert ("`FI_EFA_USE_DEVICE_RDMA=1`" in row) == (
            entry["efa"]["device_rdma"] and entry["accelerator"]["kind"] == "gpu"
        )
    g5 = next(line for line in text.splitlines() if line.startswith("| `g5.48xlarge` |"))
    assert re.search(r"never `FI_EFA_USE_DEVICE_RDMA`", g5)


def test_drift_is_reported(tmp_path, monkeypatch):
    generator = load_generator()
    facts = yaml.safe_load(generator.FACTS.read_text())
    facts["instance_types"]["p5.48xlarge"]["efa"]["devices"] = 31
    (tmp_path / "facts.yaml").write_text(yaml.safe_dump(facts))
    (tmp_path / "sheet.md").write_text(generator.CHEATSHEET.read_text())
    monkeypatch.setattr(generator, "FACTS", tmp_path / "facts.yaml")
    monkeypatch.setattr(generator, "CHEATSHEET", tmp_path / "sheet.md")
    assert generator.main(["--check"]) == 1
    assert (
        generator.main([]) == 0 and "| `p5.48xlarge` | 8 x H100 | 31 |" in (tmp_path / "sheet.md").read_text()
    )
