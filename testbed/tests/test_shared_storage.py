"""The /fsx stand-in (testbed/shared_storage.py): a process in a private root sees the test's folder at
/fsx and every other path as it is; the host keeps no /fsx and no mount; jobs of the shaped Slurm see
the same folder as the walkthrough shell."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from testbed import shared_storage
from testbed.system import MissingComponent


@pytest.fixture
def private_roots() -> None:
    why = shared_storage.available()
    if why:
        raise MissingComponent(f"/fsx stand-in: {why}")


def _mounts() -> str:
    return Path("/proc/self/mountinfo").read_text()


def test_a_wrapped_command_sees_the_folder_at_fsx_and_the_host_is_left_as_it_was(private_roots, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "from-host.txt").write_text("host\n")
    outside = tmp_path / "outside.txt"
    script = (
        f"cat /fsx/from-host.txt; echo job > /fsx/from-inside.txt; echo same > {outside}; "
        "echo $$; test -d /proc/self && test -d /usr/bin"
    )
    argv = shared_storage.wrap(["bash", "-c", script], {"/fsx": shared}, tmp_path / "root")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.splitlines() == ["host", str(proc.pid)]  # every step execs: the PID a service records
    assert (shared / "from-inside.txt").read_text() == "job\n"  # written through /fsx
    assert outside.read_text() == "same\n"  # every other path is the host's
    assert not Path("/fsx").exists()
    assert str(tmp_path) not in _mounts()  # nothing mounted reaches the host's table
    assert list((tmp_path / "root").iterdir()) == []


def test_wrap_adds_only_new_top_level_folders(tmp_path):
    for target, message in [
        ("/tmp", "/tmp exists on this machine"),
        ("/fsx/data", "goes at the top of the root"),
        ("fsx", "goes at the top of the root"),
    ]:
        with pytest.raises(ValueError, match=message):
            shared_storage.wrap(["true"], {target: tmp_path}, tmp_path / "root")
    with pytest.raises(ValueError, match="is not a folder"):
        shared_storage.wrap(["true"], {"/fsx": tmp_path / "missing"}, tmp_path / "root")


@pytest.mark.slurm
def test_jobs_of_the_shaped_slurm_share_fsx_with_the_test(gpu_slurm, fsx, tmp_path):
    folder = fsx / "test-shared-storage"
    folder.mkdir(exist_ok=True)
    (folder / "input.txt").write_text("data\n")
    script = tmp_path / "job.sbatch"
    script.write_text(
        "#!/bin/bash\n#SBATCH --nodes=2\nset -eu\n"
        "srun --nodes=2 --ntasks-per-node=1 bash -c "
        "'cat /fsx/test-shared-storage/input.txt > /fsx/test-shared-storage/$(hostname)-$SLURM_NODEID'\n"
    )
    job = gpu_slurm.submit(script, cwd=tmp_path)
    assert job.wait(60) == "COMPLETED", job.output()
    written = sorted(path.name for path in folder.iterdir() if path.name != "input.txt")
    assert len(written) == 2 and written[0].endswith("-0") and written[1].endswith("-1")
    assert {(folder / name).read_text() for name in written} == {"data\n"}
