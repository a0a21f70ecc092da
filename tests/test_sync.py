"""One drift test for every copied or generated file: common/sync.py --check names each one that differs
from its source (copies of common/ modules, device peaks from instance-types.yaml, the generators)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("common_sync", ROOT / "common" / "sync.py")
sync = importlib.util.module_from_spec(_spec)
sys.modules["common_sync"] = sync  # its dataclass looks the module up while the file executes
_spec.loader.exec_module(sync)


def test_every_copied_and_generated_file_is_current():
    done = subprocess.run(
        [sys.executable, "common/sync.py", "--check"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_every_copy_says_where_it_comes_from():
    for target in sync.generated(ROOT):
        first = (ROOT / target.path).read_text().splitlines()[0]
        assert first == sync.header(target.source).strip(), target.path


def test_a_drifted_copy_and_a_stale_fact_are_named(tmp_path):
    for relative in {t.source for t in sync.generated(ROOT)}:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / relative, tmp_path / relative)
    for target in sync.generated(tmp_path):
        (tmp_path / target.path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / target.path).write_text(target.text)
    assert sync.drifted(tmp_path) == []
    copy = tmp_path / "3.test_cases/pytorch/cpu-ddp/src/cpu_ddp/faults.py"
    copy.write_text(copy.read_text() + "# edited in place\n")
    facts = tmp_path / "1.architectures/instance-types.yaml"
    facts.write_text(facts.read_text().replace("bf16_dense_tflops: 2250", "bf16_dense_tflops: 2500"))
    stale = {str(t.path) for t in sync.drifted(tmp_path)}
    assert stale == {
        "3.test_cases/pytorch/cpu-ddp/src/cpu_ddp/faults.py",
        "3.test_cases/pytorch/FSDP/src/fsdp/device_peaks.py",
        "3.test_cases/pytorch/cpu-ddp/src/cpu_ddp/device_peaks.py",
    }
    assert sync.main(["--root", str(tmp_path)]) == 1  # the copies are rewritten; the generators are absent
    assert sync.drifted(tmp_path) == []
