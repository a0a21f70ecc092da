"""One drift test for every copied or generated file: common/sync.py --check names each one that differs
from its source (copies of common/ modules, device peaks from instance-types.yaml, the generators)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

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
        lines = (ROOT / target.path).read_text().splitlines()
        if target.region:  # a hand-written file: its generated region says so under the BEGIN line
            begin = next(i for i, line in enumerate(lines) if line.strip() == sync.EFA_REGION_BEGIN)
            assert lines[begin + 1].strip().startswith(f"# Written by common/sync.py from {target.source}")
        else:
            assert lines[0] == sync.header(target.source).strip(), target.path


def copy_sources_and_write(tmp_path: Path) -> None:
    """A tree of the sources (and the hand-written files with regions) in tmp_path, synced."""
    for relative in {t.source for t in sync.generated(ROOT)} | set(sync.EFA_ENV_REGIONS):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / relative, tmp_path / relative)
    for target in sync.generated(tmp_path):
        (tmp_path / target.path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / target.path).write_text(target.text)
    assert sync.drifted(tmp_path) == []


def test_a_drifted_copy_and_a_stale_fact_are_named(tmp_path):
    copy_sources_and_write(tmp_path)
    copy = tmp_path / "3.test_cases/pytorch/cpu-ddp/src/cpu_ddp/faults.py"
    copy.write_text(copy.read_text() + "# edited in place\n")
    facts = tmp_path / "1.architectures/instance-types.yaml"
    facts.write_text(facts.read_text().replace("bf16_dense_tflops: 2250", "bf16_dense_tflops: 2500"))
    picotron = tmp_path / "3.test_cases/pytorch/picotron/kubernetes/picotron.yaml-template"
    picotron.write_text(picotron.read_text().replace('value: "524288"', 'value: "1048576"'))  # in the region
    batch = tmp_path / "1.architectures/3.aws-batch/aws-batch-nccl.yaml"
    batch.write_text(batch.read_text().replace("Value: INFO", "Value: WARN"))  # NCCL_DEBUG: outside it
    stale = {str(t.path) for t in sync.drifted(tmp_path)}
    assert stale == {
        "3.test_cases/pytorch/cpu-ddp/src/cpu_ddp/faults.py",
        "3.test_cases/pytorch/FSDP/src/fsdp/device_peaks.py",
        "3.test_cases/pytorch/cpu-ddp/src/cpu_ddp/device_peaks.py",
        "3.test_cases/pytorch/picotron/kubernetes/picotron.yaml-template",
    }
    assert sync.main(["--root", str(tmp_path)]) == 1  # the copies are rewritten; the generators are absent
    assert sync.drifted(tmp_path) == []
    assert 'value: "524288"' in picotron.read_text() and "Value: WARN" in batch.read_text()


def test_the_efa_nccl_regions_follow_the_table_and_a_drifted_one_is_named(tmp_path, capsys):
    copy_sources_and_write(tmp_path)
    table = yaml.safe_load((ROOT / sync.INSTANCE_TYPES).read_text())["efa_nccl_environment"]
    # Every region, read back as YAML, is its groups of the table, in the file's own form.
    for relative, region in sync.EFA_ENV_REGIONS.items():
        lines = (ROOT / relative).read_text().splitlines(keepends=True)
        begin = next(i for i, line in enumerate(lines) if line.strip() == sync.EFA_REGION_BEGIN)
        end = next(i for i, line in enumerate(lines) if line.strip() == sync.EFA_REGION_END)
        name, value, socket = sync.EFA_REGION_FORMS[region.form]
        body = {e[name]: e[value] for e in yaml.safe_load(textwrap.dedent("".join(lines[begin + 1 : end])))}
        expected = {
            k: str(v)
            for group in region.groups
            for k, v in (
                {"NCCL_SOCKET_IFNAME": table[group][socket]} if group == "socket_ifname" else table[group]
            ).items()
        }
        assert body == {k: v for k, v in expected.items() if not region.only or k in region.only}, relative
    nccl = tmp_path / "4.validation_observability/6.nccl-tests/kubernetes/nccl-tests.yaml-template"
    nccl.write_text(nccl.read_text().replace('value: "^lo"', 'value: "eth0"'))
    assert sync.main(["--check", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert (
        "error: 4.validation_observability/6.nccl-tests/kubernetes/nccl-tests.yaml-template: the region "
        "'efa-nccl-environment' differs from 1.architectures/instance-types.yaml; run 'make sync'"
    ) in err.splitlines()
    assert "nccl-tests.yaml-template" in err and "picotron" not in err
    # A file that lost its markers is named, and nothing is written.
    nccl.write_text(nccl.read_text().replace(sync.EFA_REGION_END, "# the end"))
    before = {p: p.read_text() for p in tmp_path.rglob("*") if p.is_file()}
    assert sync.main(["--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(f"error: {nccl}: expected one '{sync.EFA_REGION_BEGIN}' line")
        and "Traceback" not in err
    )
    assert {p: p.read_text() for p in tmp_path.rglob("*") if p.is_file()} == before
