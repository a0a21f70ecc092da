"""The lifecycle program: inputs checked together, the plan, and the real steps run on a fake node.

The fake node (fake_node.py) models what the commands change, so these tests run the same step
code a HyperPod node runs and show idempotence (a second run changes nothing), retries with backoff,
the one-line error after the last attempt, and the order of the steps.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fake_node import APT_LOCK, FakeNode
from hyperpod_lifecycle import cli, steps
from hyperpod_lifecycle.config import load
from hyperpod_lifecycle.runner import CommandResult, LifecycleError, RetryPolicy, run_steps

from testbed.walkthrough import run_walkthrough

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
BASE_CONFIG = HERE.parent / "LifecycleScripts" / "base-config"
RESOURCE_CONFIG = HERE / "fixtures" / "resource_config.json"
PARAMS = HERE / "fixtures" / "provisioning_parameters.json"
CONTROLLER, WORKER = "10.1.0.10", "10.1.0.11"
STATUS = re.compile(r'^LIFECYCLE step=(\w+) status=(\w+) attempts=(\d+) seconds=[\d.]+ detail="(.*)"$')


def statuses(text: str) -> dict[str, str]:
    """{step: status} from the program's status lines (every line of stdout must be one)."""
    found = {}
    for line in text.splitlines():
        match = STATUS.match(line)
        assert match, f"not a status line: {line!r}"
        found[match[1]] = match[2]
    return found


def run_lifecycle(node: FakeNode, ip: str, *extra: str, params: Path = PARAMS) -> tuple[int, str, str]:
    """cli.main on the fake node with the fixture inputs; (exit, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    argv = ["--resource-config", str(RESOURCE_CONFIG), "--provisioning-parameters", str(params), "--ip", ip]
    argv += ["--slurm-prefix", "/opt/slurm", "--users-file", str(node.root / "no-users.txt"), *extra]
    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        code = cli.main(argv, runner=node)
    finally:
        sys.stdout, sys.stderr = old
    return code, out.getvalue(), err.getvalue()


def cli_subprocess(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BASE_CONFIG / "lifecycle.py"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def dry_run_subprocess(ip: str, params: Path = PARAMS) -> subprocess.CompletedProcess:
    """``lifecycle.py --dry-run`` for ``ip`` with the fixture resource config."""
    return cli_subprocess(
        "--resource-config",
        str(RESOURCE_CONFIG),
        "--provisioning-parameters",
        str(params),
        "--ip",
        ip,
        "--dry-run",
    )


def write_params(tmp_path: Path, **changes) -> Path:
    data = json.loads(PARAMS.read_text()) | changes
    path = tmp_path / "provisioning_parameters.json"
    path.write_text(json.dumps(data))
    return path


# -- inputs -------------------------------------------------------------------------------------


def test_layout_joins_groups_roles_and_partitions() -> None:
    layout = load(RESOURCE_CONFIG, PARAMS)
    assert layout.controller.ip == CONTROLLER
    assert {name: [i.node_name for i in nodes] for name, nodes in layout.partitions().items()} == {
        "dev": ["ip-10-1-0-11"],
        "train": ["ip-10-1-0-12"],
    }
    assert [layout.role(layout.instance_by_ip(ip)) for ip in (CONTROLLER, WORKER)] == ["controller", "worker"]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"controller_group": "head"}, "controller_group 'head' is not an instance group"),
        (
            {"worker_groups": [{"instance_group_name": "workers", "partition_name": "dev"}]},
            "instance_group_name 'workers' is not an instance group",
        ),
        (
            {"worker_groups": [{"instance_group_name": "worker-group-1", "partition_name": "a b"}]},
            "partition_name",
        ),
        ({"fsx_dns_name": ""}, "fsx_dns_name is missing or empty"),
        ({"workload_manager": "k8s"}, "workload_manager 'k8s' is not supported"),
    ],
)
def test_inputs_that_disagree_are_one_line_errors_exit_2(tmp_path: Path, changes: dict, words: str) -> None:
    done = dry_run_subprocess(WORKER, write_params(tmp_path, **changes))
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ") and words in done.stderr
    assert done.stdout == ""


def test_an_ip_in_no_group_names_the_ip_and_the_groups() -> None:
    done = dry_run_subprocess("10.9.9.9")
    assert done.returncode == 2
    assert "10.9.9.9 is in no instance group" in done.stderr and "worker-group-2" in done.stderr
    assert done.stderr.count("\n") == 1


def test_missing_or_broken_files_are_named(tmp_path: Path) -> None:
    broken = tmp_path / "resource_config.json"
    broken.write_text("{not json")
    for path in (tmp_path / "absent.json", broken):
        done = cli_subprocess(
            "--resource-config", str(path), "--provisioning-parameters", str(PARAMS), "--dry-run"
        )
        assert done.returncode == 2 and str(path) in done.stderr and done.stderr.count("\n") == 1


def test_node_found_by_hostname_addresses_when_no_ip_given(tmp_path: Path) -> None:
    node = FakeNode(tmp_path)
    layout = load(RESOURCE_CONFIG, PARAMS)
    assert cli.find_node(layout, node, None).ip == WORKER  # 172.17.0.1 (docker0) is skipped


# -- plan ---------------------------------------------------------------------------------------


def test_dry_run_prints_the_plan_and_touches_nothing(tmp_path: Path) -> None:
    node = FakeNode(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code, out, _ = run_lifecycle(node, WORKER, "--dry-run")
    assert code == 0 and node.commands == []
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert "group worker-group-1, role worker" in out
    lines = [line.split()[1] for line in out.splitlines() if re.match(r"^\s*\d+\.", line)]
    assert lines == [step.name for step in steps.all_steps()]
    assert "slurm_config      skip: worker node" in out
    assert "--conf-server 10.1.0.10:6817" in out and "@tcp:/abcdefgh /fsx lustre" in out


def test_dry_run_on_the_controller_plans_accounting_and_slurmctld() -> None:
    done = dry_run_subprocess(CONTROLLER)
    assert done.returncode == 0, done.stderr
    assert "role controller" in done.stdout and "systemctl restart slurmctld" in done.stdout
    assert re.search(r"slurm_accounting\s+MariaDB", done.stdout)


# -- steps on a fake node -----------------------------------------------------------------------


def test_worker_runs_every_step_then_a_second_run_changes_nothing(tmp_path: Path) -> None:
    node = FakeNode(tmp_path)
    code, out, err = run_lifecycle(node, WORKER)
    assert code == 0, err
    first = statuses(out)
    assert list(first) == [step.name for step in steps.all_steps()]
    assert first == {
        "slurm_config": "skipped",
        "mount_fsx": "changed",
        "mount_home": "changed",
        "add_users": "skipped",
        "slurm_accounting": "skipped",
        "install_docker": "changed",
        "install_enroot": "changed",
        "install_pyxis": "changed",
        "start_slurm": "changed",
        "exporters": "skipped",
    }
    dropin = node.path(steps.SLURMD_DROPIN).read_text()
    assert "--conf-server 10.1.0.10:6817" in dropin
    assert (
        "fs-0123456789abcdef0.fsx.us-west-2.amazonaws.com@tcp:/abcdefgh /fsx lustre"
        in node.path("/etc/fstab").read_text()
    )
    node.commands.clear()
    code, out, _ = run_lifecycle(node, WORKER)
    assert code == 0
    assert set(statuses(out).values()) <= {"unchanged", "skipped"}
    assert node.changes() == []
    assert node.path("/etc/fstab").read_text().count("/fsx lustre") == 1


def test_controller_writes_slurm_config_and_accounting_before_starting_slurmctld(tmp_path: Path) -> None:
    node = FakeNode(tmp_path)
    code, out, err = run_lifecycle(node, CONTROLLER)
    assert code == 0, err
    assert statuses(out)["slurm_accounting"] == "changed" and statuses(out)["start_slurm"] == "changed"
    conf = node.path("/opt/slurm/etc/slurm.conf").read_text().splitlines()
    assert "Include /opt/slurm/etc/nodes_partitions.conf" in conf
    assert "SlurmctldParameters=enable_configless" in conf
    assert "AccountingStorageType=accounting_storage/slurmdbd" in conf
    dbd = node.path("/opt/slurm/etc/slurmdbd.conf")
    assert dbd.stat().st_mode & 0o777 == 0o600
    restart = node.commands.index(["systemctl", "restart", "slurmctld"])
    assert node.commands.index(["systemctl", "enable", "--now", "slurmdbd"]) < restart
    assert not any(c[0] == "slurmd" or "slurmd" in c[-1:] for c in node.commands[:restart])
    password = dbd.read_text()
    node.commands.clear()
    code, out, _ = run_lifecycle(node, CONTROLLER)
    assert code == 0 and node.changes() == [] and dbd.read_text() == password


def test_a_changed_layout_restarts_slurmctld_on_the_next_run(tmp_path: Path) -> None:
    node = FakeNode(tmp_path)
    assert run_lifecycle(node, CONTROLLER)[0] == 0
    params = write_params(
        tmp_path, worker_groups=[{"instance_group_name": "worker-group-1", "partition_name": "all"}]
    )
    node.commands.clear()
    code, out, _ = run_lifecycle(node, CONTROLLER, params=params)
    assert (
        code == 0 and statuses(out)["slurm_config"] == "changed" and statuses(out)["start_slurm"] == "changed"
    )
    assert "PartitionName=all" in node.path("/opt/slurm/etc/nodes_partitions.conf").read_text()


def test_what_the_ami_already_has_is_not_installed_again(tmp_path: Path) -> None:
    node = FakeNode(tmp_path, programs=("docker", "enroot"))
    plugin = node.path("/opt/slurm/lib/slurm/spank_pyxis.so")
    plugin.parent.mkdir(parents=True)
    plugin.write_bytes(b"")
    code, out, _ = run_lifecycle(node, WORKER)
    assert code == 0
    assert statuses(out)["install_docker"] == "unchanged"
    programs = {command[0] for command in node.commands}
    assert not programs & {"apt-get", "curl", "git", "make"}
    assert "already on the AMI" in out


def test_users_file_adds_users_once_and_a_uid_conflict_is_one_line(tmp_path: Path) -> None:
    node = FakeNode(tmp_path)
    users = tmp_path / "users.txt"
    users.write_text("alice,2001\n# comment\nbob,2002,/home/bob\n")
    code, out, _ = run_lifecycle(node, WORKER, "--users-file", str(users))
    assert code == 0 and statuses(out)["add_users"] == "changed"
    assert [c[-1] for c in node.commands if c[0] == "useradd"] == ["alice", "bob"]
    users.write_text("alice,3001\n")
    code, out, err = run_lifecycle(node, WORKER, "--users-file", str(users))
    assert code == 1 and "uid 2001, users file says 3001" in err and err.count("\n") == 2  # banner + error


# -- retries ------------------------------------------------------------------------------------


def test_flaky_mount_succeeds_on_attempt_3_after_backoff(tmp_path: Path) -> None:
    node = FakeNode(tmp_path)
    dns_failure = CommandResult(
        32, "", "mount.lustre: Can't parse NID 'fs-0123.fsx...': Name or service not known"
    )
    node.fail[("mount", "-t", "lustre")] = [dns_failure, dns_failure]
    code, out, err = run_lifecycle(node, WORKER, "--backoff", "3")
    assert code == 0
    assert "LIFECYCLE step=mount_fsx status=changed attempts=3" in out
    assert node.sleeps[:2] == [3.0, 6.0]
    assert "mount_fsx attempt 1 failed" in err


def test_apt_lock_exhausts_retries_with_a_one_line_error_naming_the_step(tmp_path: Path) -> None:
    node = FakeNode(tmp_path)
    node.fail[("apt-get", "update")] = [APT_LOCK] * 10
    code, out, err = run_lifecycle(node, WORKER, "--attempts", "4", "--backoff", "1")
    assert code == 1
    assert statuses(out)["install_docker"] == "failed"
    assert "install_enroot" not in statuses(out)  # later steps do not run after a failure
    assert node.sleeps == [1.0, 2.0, 4.0]
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: step install_docker failed after 4 attempts:")
    assert "Could not get lock /var/lib/dpkg/lock-frontend" in last and "rerun on_create.sh" in last


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(attempts=10, base_delay_s=2, max_delay_s=20)
    assert [policy.delay(n) for n in range(1, 6)] == [2, 4, 8, 16, 20]


def test_a_step_that_claims_success_but_is_not_in_place_fails(tmp_path: Path) -> None:
    node = FakeNode(tmp_path)
    node.fail[("mount", "-t", "lustre")] = [CommandResult(0)] * 3  # exit 0, yet nothing mounted
    layout = load(RESOURCE_CONFIG, PARAMS)
    ctx = steps.Context(layout, layout.instance_by_ip(WORKER), node)
    mount_fsx = [s for s in steps.all_steps() if s.name == "mount_fsx"]
    with pytest.raises(LifecycleError, match="mount_fsx ran but its result is not in place"):
        run_steps(mount_fsx, ctx, node, RetryPolicy(3, 0), io.StringIO())


# -- shell, pins, copies ------------------------------------------------------------------------


def test_on_create_sh_hands_over_to_the_program(tmp_path: Path) -> None:
    folder = tmp_path / "base-config"
    shutil.copytree(BASE_CONFIG, folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PARAMS, folder / "provisioning_parameters.json")
    env = {
        "PATH": "/usr/bin:/bin",
        "RESOURCE_CONFIG": str(RESOURCE_CONFIG),
        "LIFECYCLE_LOG": str(tmp_path / "p.log"),
    }
    done = subprocess.run(
        ["bash", str(folder / "on_create.sh"), "--dry-run", "--ip", WORKER],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "role worker" in done.stdout and "role worker" in (tmp_path / "p.log").read_text()
    done = subprocess.run(
        ["bash", str(folder / "on_create.sh"), "--dry-run", "--ip", "10.9.9.9"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2  # pipefail keeps the program's status through tee


def test_pins_equal_versions_yaml() -> None:
    versions = yaml.safe_load((ROOT / "2.ami_and_containers" / "versions.yaml").read_text())
    assert versions["components"]["enroot"] == steps.ENROOT_VERSION
    assert versions["components"]["pyxis"] == steps.PYXIS_VERSION


def test_the_program_needs_only_the_standard_library() -> None:
    allowed = set(sys.stdlib_module_names) | {"hyperpod_lifecycle"}
    for path in [BASE_CONFIG / "lifecycle.py", *BASE_CONFIG.glob("hyperpod_lifecycle/*.py")]:
        for module in re.findall(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", path.read_text(), re.MULTILINE):
            assert module in allowed or module == "__future__", f"{path.name} imports {module}"


def test_readme_plan_walkthrough_runs_as_written(run_dir: Path) -> None:
    result = run_walkthrough(HERE.parent / "README.md", "hyperpod-plan", run_dir / "wt", timeout=120)
    assert result.returncode == 0, result.output
    assert "role worker" in result.output and "PartitionName=train Nodes=ip-10-1-0-12" in result.output
