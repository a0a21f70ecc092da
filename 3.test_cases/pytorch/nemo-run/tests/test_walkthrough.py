"""The README's commands as written: `make k8s` and the sbatch DRY_RUN (project venv); `make local`
(nemo-run's LocalExecutor, 2 torchrun ranks) and `make dryrun` of a real recipe (the nemo-run session)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from testbed.standins import applied, calls, write_standins
from testbed.walkthrough import run_walkthrough

README = Path(__file__).resolve().parents[1] / "README.md"
CASE = Path("3.test_cases/pytorch/nemo-run")


def test_readme_k8s_walkthrough(artifacts_root, tmp_path):
    pod_log = tmp_path / "pod.log"
    pod_log.write_text("nemo-run-worker-0 started\n")
    log = write_standins(tmp_path / "bin", logs={"nemo-run-worker-0": pod_log})
    result = run_walkthrough(
        README, "k8s", artifacts_root / "nemo-run-wt-k8s", timeout=120, standins=tmp_path / "bin"
    )
    assert result.returncode == 0, result.output[-3000:]
    assert "wrote kubernetes/nemo-run.yaml" in result.output
    assert "srun --nodes=2 --ntasks-per-node=1 --kill-on-bad-exit=1" in result.output
    assert calls(log) == ["kubectl apply -f kubernetes/nemo-run.yaml", "kubectl logs -f nemo-run-worker-0"]
    assert [(o["kind"], o["name"]) for o in applied(log)] == [("pytorchjob", "nemo-run")]
    assert "pytorchjob.kubeflow.org/nemo-run created" in result.output
    assert "nemo-run-worker-0 started\n" in result.output  # what kubectl logs printed


@pytest.mark.framework
# Pipes nemo-run's in-process runs (test_launch.py) leave to the garbage collector may be reported here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_readme_local_and_dryrun_walkthroughs(artifacts_root, monkeypatch):
    # The venv of this session stands in for `make venv`'s (the Makefile prefers the case's nox venv).
    monkeypatch.setenv("VENV", str(Path(sys.executable).parent.parent))
    monkeypatch.setenv("NEMORUN_HOME", str(artifacts_root / "nemo-run-wt-home"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    local = run_walkthrough(README, "local", artifacts_root / "nemo-run-wt-local", timeout=300)
    assert local.returncode == 0, local.output[-3000:]
    assert "tiny: 2 ranks, 20 steps" in local.output
    ranks = [
        json.loads((local.workdir / CASE / "runs" / "tiny" / f"rank{r}.json").read_text()) for r in (0, 1)
    ]
    assert [r["world_size"] for r in ranks] == [2, 2] and ranks[0]["weight"] == ranks[1]["weight"]
    assert ranks[0]["last_loss"] < ranks[0]["first_loss"] / 2
    monkeypatch.delenv("NEMORUN_HOME")  # as a user runs it: the dry run writes to a scratch home it removes
    dry = run_walkthrough(README, "dryrun", artifacts_root / "nemo-run-wt-dryrun", timeout=300)
    assert dry.returncode == 0, dry.output[-3000:]
    assert "#SBATCH --nodes=2" in dry.output and "--container-image nvcr.io/nvidia/nemo:25.11" in dry.output
    assert "source " in dry.output and "/slurm/efa-env.sh" in dry.output
    assert not os.path.exists("/fsx/nemo-run")  # a dry run writes nothing on the cluster's job folder
