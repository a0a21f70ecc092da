"""The README's commands as written: the overrides tool, the launch script's and bootstrap's dry runs, and
`make k8s` (project venv; the launcher itself needs GPUs and the NeMo container)."""

from __future__ import annotations

from pathlib import Path

from testbed.kube import validate_manifest
from testbed.standins import applied, calls, write_standins
from testbed.walkthrough import run_walkthrough

README = Path(__file__).resolve().parents[1] / "README.md"
CASE = Path("3.test_cases/pytorch/nemo-launcher")


def test_readme_dry_run_walkthrough(artifacts_root):
    result = run_walkthrough(README, "dry-run", artifacts_root / "nemo-launcher-wt-dry", timeout=120)
    assert result.returncode == 0, result.output[-3000:]
    assert "training=llama/llama3_8b\ntraining.trainer.num_nodes=2" in result.output
    assert "python3 /fsx/nemo-launcher/launcher_scripts/main.py cluster_type=bcm" in result.output
    assert "training=gpt3/20b training.trainer.num_nodes=8" in result.output
    assert "training.trainer.max_steps=100" in result.output
    assert "srun --nodes=1 --ntasks=1 --container-image=nvcr.io/nvidia/nemo:24.09" in result.output


def test_readme_k8s_walkthrough(artifacts_root, tmp_path):
    pod_log = tmp_path / "pod.log"
    pod_log.write_text("nemo-launcher-worker-0 started\n")
    log = write_standins(tmp_path / "bin", logs={"nemo-launcher-worker-0": pod_log})
    result = run_walkthrough(
        README, "k8s", artifacts_root / "nemo-launcher-wt-k8s", timeout=120, standins=tmp_path / "bin"
    )
    assert result.returncode == 0, result.output[-3000:]
    text = (result.workdir / CASE / "kubernetes" / "nemo-launcher.yaml").read_text()
    assert validate_manifest(text) == [] and "nemo-megatron-gpt3_5b_hydra.yaml" in text
    assert calls(log) == [
        "kubectl apply -f kubernetes/nemo-launcher.yaml",
        "kubectl logs -f nemo-launcher-worker-0",
    ]
    assert [(o["kind"], o["name"]) for o in applied(log)] == [("pytorchjob", "nemo-launcher")]
    assert "pytorchjob.kubeflow.org/nemo-launcher created" in result.output
    assert "nemo-launcher-worker-0 started\n" in result.output  # what kubectl logs printed
