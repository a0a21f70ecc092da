"""The README's walkthrough ("configs"), run as written in a copy of the repository. That every other
command block is marked illustrative, with the reason, is part of the test-case contract."""

from __future__ import annotations

import json
from pathlib import Path

from testbed.kube import validate_manifest
from testbed.standins import applied, calls, write_standins
from testbed.walkthrough import run_walkthrough

README = Path(__file__).resolve().parents[1] / "README.md"
CASE = "3.test_cases/pytorch/picotron"


def test_readme_configs_walkthrough(artifacts_root):
    result = run_walkthrough(README, "configs", artifacts_root / "wt-picotron", timeout=120)
    assert result.returncode == 0, result.output[-4000:]
    assert "llama3_1_70b-16nodes   16 x 8 GPUs  tp 8 pp 4 cp 1 dp  4" in result.output  # --list
    mine = json.loads((result.workdir / CASE / "runs" / "my-layout.json").read_text())
    assert mine["distributed"]["dp_size"] == 4 and mine["training"]["gradient_accumulation_steps"] == 64
    assert "error: bad: tp(8) * pp(1) * cp(1) * dp(3) = 24 != world size 32" in result.output
    assert "refused, exit 2" in result.output and not (result.workdir / CASE / "runs" / "bad.json").exists()
    assert "srun --nodes=8 --ntasks-per-node=1" in result.output  # the DRY_RUN line
    manifest = result.workdir / CASE / "build" / "picotron.yaml"
    assert "/workspace/picotron/configs/llama3_1_8b-2nodes.json" in manifest.read_text()


def test_readme_k8s_walkthrough_renders_a_valid_pytorchjob(artifacts_root, tmp_path):
    pod_log = tmp_path / "pod.log"
    pod_log.write_text("picotron-worker-0 started\n")
    log = write_standins(tmp_path / "bin", logs={"picotron-worker-0": pod_log})
    result = run_walkthrough(
        README, "k8s", artifacts_root / "wt-picotron-k8s", timeout=120, standins=tmp_path / "bin"
    )
    assert result.returncode == 0, result.output[-4000:]
    text = (result.workdir / "3.test_cases/pytorch/picotron/build/picotron.yaml").read_text()
    assert "image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/picotron:59714b1" in text and "${" not in text
    assert validate_manifest(text) == []
    assert calls(log) == [
        "kubectl create secret generic hf-token --from-literal=token=hf_...",
        "kubectl apply -f build/picotron.yaml",
        "kubectl logs -f picotron-worker-0",
    ]
    assert [(o["kind"], o["name"]) for o in applied(log)] == [
        ("secret", "hf-token"),
        ("pytorchjob", "picotron"),
    ]
    assert "secret/hf-token created" in result.output
    assert "picotron-worker-0 started\n" in result.output  # what kubectl logs printed
