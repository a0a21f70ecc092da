"""The repository README's `make run` and the test bed README's render-and-validate, run as written."""

from __future__ import annotations

import json

import pytest
import yaml

from testbed.walkthrough import REPO_ROOT, run_walkthrough


@pytest.mark.slow
def test_readme_make_run_trains_tiny_and_says_what_is_next(artifacts_root):
    result = run_walkthrough(REPO_ROOT / "README.md", "run", artifacts_root / "wt-root-run", timeout=600)
    assert result.returncode == 0, result.output[-4000:]
    run = result.workdir / "runs" / "fsdp-tiny"
    summary = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert (
        summary["event"] == "summary"
        and summary["step"] == json.loads((run / "result.json").read_text())["step"]
    )
    assert "Run folder:" in result.output and "Slurm:" in result.output


def test_testbed_readme_renders_and_validates_a_pytorchjob(artifacts_root):
    result = run_walkthrough(REPO_ROOT / "testbed" / "README.md", "kube", artifacts_root / "wt-testbed-kube")
    assert result.returncode == 0, result.output[-4000:]
    job = yaml.safe_load((result.workdir / "build" / "cpu-ddp.yaml").read_text())
    assert job["kind"] == "PyTorchJob" and job["metadata"]["name"] == "cpu-ddp"
    containers = job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"]
    assert containers[0]["image"] == "repo/cpu-ddp:1"
