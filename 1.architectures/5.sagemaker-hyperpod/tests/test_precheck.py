"""precheck on a fake node (every check passing, every check failing, a controller) and against the
real local Slurm for the slurmd check; the output contract and exit status hold in each case."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from fake_node import FakeNode
from hyperpod_lifecycle import precheck
from hyperpod_lifecycle.runner import CommandResult

PRECHECK = Path(__file__).resolve().parents[1] / "LifecycleScripts" / "base-config" / "precheck.py"


class LiveFake(FakeNode):
    """A fake node whose docker, srun and scontrol answer like a healthy worker's."""

    def _model(self, argv: list[str]) -> CommandResult:
        answers = {
            "docker": CommandResult(0, "24.0.7\n"),
            "srun": CommandResult(
                0, "Usage: srun [OPTIONS...]\n      --container-image=[USER@][REGISTRY#]IMAGE[:TAG]\n"
            ),
            "scontrol": CommandResult(
                0, f"NodeName={argv[3] if len(argv) > 3 else ''} State=IDLE Partitions=dev\n"
            ),
        }
        return answers.get(argv[0], super()._model(argv))


def healthy(root: Path, daemon: str = "slurmd") -> LiveFake:
    node = LiveFake(root, programs=("docker", "enroot", "srun", "scontrol"))
    (root / "proc/mounts").write_text("fs@tcp:/abc /fsx lustre rw 0 0\nzfs:/fsx /home nfs4 rw 0 0\n")
    (root / "proc/4242").mkdir()
    (root / "proc/4242/comm").write_text(f"{daemon}\n")
    (root / "etc/enroot").mkdir(parents=True)
    (root / "etc/enroot/enroot.conf").write_text(
        "ENROOT_RUNTIME_PATH /tmp/enroot/user-$(id -u)\nENROOT_CACHE_PATH /tmp/enroot/cache/group-$(id -g)\n"
        "ENROOT_DATA_PATH /tmp/enroot/data/user-$(id -u)\n"
    )
    (root / "tmp").mkdir()
    stack = root / "opt/slurm/etc/plugstack.conf.d"
    stack.mkdir(parents=True)
    (stack / "pyxis.conf").write_text("required /opt/slurm/lib/slurm/spank_pyxis.so\n")
    return node


def run(node: FakeNode, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = precheck.main(["--node-name", "ip-10-1-0-11", *args], runner=node)
    return code, out.getvalue()


def verdicts(text: str) -> dict[str, str]:
    rows = [line.split() for line in text.splitlines() if line.startswith("  HP")]
    return {row[0]: row[2] for row in rows}


def test_a_healthy_worker_passes_every_check_with_header_table_and_ok_footer(tmp_path: Path) -> None:
    code, out = run(healthy(tmp_path))
    assert code == 0, out
    assert out.startswith("# hyperpod-precheck ")
    assert "# id     check   result  detail" in out
    assert verdicts(out) == {f"HP00{i}": "PASS" for i in range(1, 7)}
    assert out.rstrip().endswith(": OK")


def test_a_bare_node_fails_every_check_and_exits_1(tmp_path: Path) -> None:
    node = FakeNode(tmp_path)
    code, out = run(node)
    assert code == 1
    assert set(verdicts(out).values()) == {"FAIL"}
    assert ": FAILED" in out and "#  - HP003 fsx: /fsx is not mounted" in out


def test_the_controller_skips_the_slurmd_check_with_the_reason(tmp_path: Path) -> None:
    code, out = run(healthy(tmp_path, daemon="slurmctld"))
    assert code == 0 and verdicts(out)["HP005"] == "SKIP" and "controller node" in out


def test_enroot_on_nvme_that_is_not_mounted_fails(tmp_path: Path) -> None:
    node = healthy(tmp_path)
    conf = tmp_path / "etc/enroot/enroot.conf"
    conf.write_text(conf.read_text().replace("/tmp/enroot", "/opt/dlami/nvme/enroot"))
    code, out = run(node, "--checks", "enroot")
    assert code == 1 and "ENROOT_RUNTIME_PATH=/opt/dlami/nvme/enroot" in out
    (tmp_path / "opt/dlami/nvme").mkdir(parents=True)
    assert run(node, "--checks", "enroot")[0] == 0


def test_json_and_a_subset_of_checks(tmp_path: Path) -> None:
    node = healthy(tmp_path)
    (tmp_path / "proc/mounts").write_text("tmpfs /fsx tmpfs rw 0 0\n")
    code, out = run(node, "--json", "--checks", "HP003,home")
    document = json.loads(out)
    assert code == 1 and document["ok"] is False
    assert [(r["id"], r["verdict"]) for r in document["results"]] == [("HP003", "FAIL"), ("HP006", "FAIL")]
    assert "tmpfs, not Lustre" in document["results"][0]["detail"]
    assert run(node, "--checks", "HP999")[0] == 2


@pytest.mark.slurm
def test_slurmd_and_pyxis_checks_against_the_local_slurm(local_slurm) -> None:
    def precheck_cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(PRECHECK), *args],
            env=local_slurm.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    done = precheck_cli("--checks", "HP005", "--node-name", "n1")
    assert done.returncode == 0, done.stdout
    assert "PASS" in done.stdout and "node n1 IDLE" in done.stdout
    done = precheck_cli("--checks", "HP005", "--node-name", "n9")
    assert done.returncode == 1 and "does not know node n9" in done.stdout
    # LocalSlurm loads no pyxis: the check must say so, never pass.
    done = precheck_cli("--checks", "HP004", "--slurm-prefix", str(local_slurm.state_dir))
    assert done.returncode == 1 and "spank_pyxis.so not in" in done.stdout
