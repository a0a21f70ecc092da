"""healthcheck.py as users run it: on this CPU machine, on a node of recorded tools, aggregate, list."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from healthcheck_fakes import P5_GOOD, install_fake_tools

TOOL_DIR = Path(__file__).resolve().parents[1]
README = TOOL_DIR / "README.md"
BAD = {"nvidia-smi --query-gpu": "nvidia-smi-query-p5-missing-gpu.csv", "dmesg": "dmesg-xid79.txt"}


def healthcheck(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM", "INSTANCE_TYPE", "MIN_BUSBW"))}
    return subprocess.run(
        [sys.executable, "healthcheck.py", *args],
        cwd=TOOL_DIR,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def fake_node(tmp_path: Path) -> dict[str, str]:
    """PATH with recorded p5 tools; node n2 has a fault file (a GPU fell off the bus)."""
    faults = tmp_path / "faults"
    bin_dir = install_fake_tools(tmp_path / "tools", P5_GOOD, BAD, faults)
    (faults / "n2").touch()
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "INSTANCE_TYPE": "p5.48xlarge"}


def test_this_cpu_machine_reports_skips_never_passes_and_exits_0():
    table = healthcheck("run", "--checks", "all")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0] == "# gpu-healthcheck 0.1.0"
    assert "# Action : ok" in table.stdout and table.stdout.rstrip().endswith(": OK")
    doc = json.loads(healthcheck("run", "--checks", "all", "--json").stdout)
    assert [c["id"] for c in doc["checks"]] == [
        "GPU001",
        "GPU002",
        "GPU003",
        "GPU004",
        "GPU005",
        "GPU006",
        "EFA001",
        "EFA002",
    ]
    assert {c["status"] for c in doc["checks"]} == {"SKIP"} and all(c["detail"] for c in doc["checks"])


def test_healthy_and_faulty_nodes(fake_node, tmp_path):
    good = healthcheck("run", "--node", "n1", "--json-dir", str(tmp_path / "results"), env=fake_node)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "#  GPUs          : 8x NVIDIA H100 80GB HBM3" in good.stdout
    assert good.stdout.rstrip().endswith("# Node n1 : OK")
    bad = healthcheck(
        "run", "--json", "--json-dir", str(tmp_path / "results"), env={**fake_node, "SLURMD_NODENAME": "n2"}
    )
    assert bad.returncode == 1
    doc = json.loads(bad.stdout)
    assert doc["node"] == "n2" and doc["ok"] is False and doc["action"] == "isolate"
    assert doc["failed"] == ["GPU001", "GPU003"]
    by_id = {check["id"]: check for check in doc["checks"]}
    assert by_id["GPU003"]["detail"].startswith("Xid 79 on 0000:86:00 x1 (GPU has fallen off the bus)")
    assert by_id["GPU005"]["status"] == "WARN"  # GPU 2 at x8: monitor, not a failure
    assert json.loads((tmp_path / "results" / "n2.json").read_text()) == doc


def test_aggregate_names_failed_and_missing_nodes(fake_node, tmp_path):
    results = tmp_path / "results"
    for node in ("n1", "n2"):
        healthcheck(
            "run", "--node", node, "--json-dir", str(results), env={**fake_node, "SLURMD_NODENAME": node}
        )
    out = healthcheck(
        "aggregate", str(results / "n1.json"), str(results / "n2.json"), "--expect-nodes", "n1,n2,n3"
    )
    assert out.returncode == 1
    rows = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines() if line.startswith("  ")}
    assert rows["n1"][:2] == ["OK", "ok"] and rows["n2"][:3] == ["FAILED", "isolate", "GPU001,"]
    assert rows["n3"][0] == "MISSING"
    assert "#  - n2: isolate (GPU001, GPU003)" in out.stdout and "#  - n3: no result" in out.stdout
    only_good = healthcheck("aggregate", str(results / "n1.json"))
    assert only_good.returncode == 0 and only_good.stdout.rstrip().endswith("# Cluster : OK")


def test_epilog_mode_checks_only_after_a_failed_job(fake_node):
    skipped = healthcheck("run", "--after-job-exit", "0:0", env={**fake_node, "SLURMD_NODENAME": "n2"})
    assert skipped.returncode == 0 and "checks run only after a failed job" in skipped.stdout
    checked = healthcheck("run", "--after-job-exit", "0:9", env={**fake_node, "SLURMD_NODENAME": "n2"})
    assert checked.returncode == 1 and "GPU003 isolate" in checked.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--checks", "GPU009"], "error: unknown check GPU009; known: GPU001"),
        (["run", "--instance-type", "p9.huge"], "error: unknown instance type 'p9.huge'; known: "),
        (["run", "--after-job-exit", "oops"], "error: --after-job-exit 'oops' must be EXIT[:SIGNAL]"),
        (["aggregate", "README.md"], "error: result README.md is not JSON"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, message):
    result = healthcheck(*args)
    assert result.returncode == 2, result.stdout
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1


def test_drain_names_the_worst_check(fake_node, tmp_path):
    calls = tmp_path / "scontrol.calls"
    scontrol = Path(fake_node["PATH"].split(os.pathsep)[0]) / "scontrol"
    scontrol.write_text(f'#!/bin/bash\nprintf "%s\\n" "$@" >> {calls}\n')
    scontrol.chmod(0o755)
    result = healthcheck("run", "--drain", env={**fake_node, "SLURMD_NODENAME": "n2"})
    assert result.returncode == 1
    args = calls.read_text().splitlines()
    assert args[:3] == ["update", "NodeName=n2", "State=DRAIN"]
    assert args[3].startswith(
        "Reason=healthcheck GPU001 isolate (+1 more): 7 of 8 GPUs visible on p5.48xlarge"
    )
    assert f"# Drained : n2 ({args[3][len('Reason=') :]})" in result.stdout
    healthy = healthcheck("run", "--drain", env={**fake_node, "SLURMD_NODENAME": "n1"})
    assert healthy.returncode == 0 and len(calls.read_text().splitlines()) == 4  # no second drain


def test_readme_documents_every_check_id():
    table = healthcheck("list", "--markdown").stdout.strip()
    assert table in README.read_text(), (
        "README's check table drifted: paste `python3 healthcheck.py list --markdown`"
    )


def test_unreadable_nccl_output_never_drains(tmp_path):
    """GPU006 WARNs on an all_reduce_perf that checked nothing (#wrong N/A): exit 0, no scontrol call."""
    good = P5_GOOD | {"all_reduce_perf": "all_reduce_perf-1node-p5-v2.11-error-column.txt"}
    bad = {"all_reduce_perf": "all_reduce_perf-1node-p5-unchecked.txt"}
    bin_dir = install_fake_tools(tmp_path / "tools", good, bad, tmp_path / "faults")
    (tmp_path / "faults" / "n2").touch()
    calls = tmp_path / "scontrol.calls"
    (bin_dir / "scontrol").write_text(f'#!/bin/bash\nprintf "%s\\n" "$@" >> {calls}\n')
    (bin_dir / "scontrol").chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "INSTANCE_TYPE": "p5.48xlarge"}
    old = healthcheck("run", "--checks", "GPU006", "--drain", env={**env, "SLURMD_NODENAME": "n1"})
    assert old.returncode == 0 and "GPU006  NCCL all-reduce in one node  PASS" in old.stdout, old.stdout
    unread = healthcheck("run", "--checks", "GPU006", "--drain", env={**env, "SLURMD_NODENAME": "n2"})
    assert unread.returncode == 0, unread.stdout + unread.stderr
    assert "WARN    monitor  could not evaluate the output of `all_reduce_perf" in unread.stdout
    assert "#wrong is N/A in every row" in unread.stdout and not calls.exists()
