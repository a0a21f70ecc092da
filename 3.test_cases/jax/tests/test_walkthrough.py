"""The README's section 1 runs as written: `make local` (2 processes x 2 CPU devices), then a second
`make local` that resumes from the Orbax checkpoint. `make local` uses VENV, here this session's JAX venv
(the `jax` nox session runs this test)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from testbed.standins import run_on_cluster, run_with_standins
from testbed.walkthrough import run_walkthrough

README = Path(__file__).resolve().parents[1] / "README.md"
CASE = Path("3.test_cases/jax")


@pytest.mark.framework
@pytest.mark.slow
def test_readme_local_walkthrough_trains_and_resumes(artifacts_root, monkeypatch, jax_env):
    monkeypatch.setenv("VENV", str(Path(sys.executable).parent.parent))
    for name, value in jax_env.items():
        monkeypatch.setenv(name, value)
    result = run_walkthrough(README, "local", artifacts_root / "jax-wt-local", timeout=600)
    assert result.returncode == 0, result.output[-4000:]
    run = result.workdir / CASE / "runs" / "local"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r.get("event") == "resume"] == [20]
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 31))
    golden = json.loads((README.parent / "tests" / "golden" / "tiny_losses.json").read_text())["losses"]
    first_run = [r["loss"] for r in records if "loss" in r][:20]  # 2 processes; the golden run is 1
    assert first_run == pytest.approx(golden, rel=1e-4)
    assert json.loads((run / "result.json").read_text())["step"] == 30
    assert "summary: step 20" in result.output and "summary: step 30" in result.output
    assert '"event": "summary"' in result.output  # tail of metrics.jsonl
    ranks = [json.loads((run / "ranks" / f"rank{p}.json").read_text()) for p in (0, 1)]
    assert ranks[0]["params_digest"] == ranks[1]["params_digest"]


# Not marked framework: make k8s needs envsubst only, and the kubectl stand-in the project venv.
def test_readme_k8s_walkthrough_renders_the_manifest(artifacts_root, tmp_path):
    run = run_with_standins(
        README, "k8s", artifacts_root / "wt-jax-k8s", tmp_path / "bin", timeout=120
    ).check()
    text = (run.workdir / CASE / "build/jax-job.yaml").read_text()
    assert "image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/jax:dev" in text and "${" not in text
    assert run.calls == ["kubectl apply -f build/jax-job.yaml"]
    assert [(o["kind"], o["name"]) for o in run.applied] == [("service", "jax"), ("job", "jax")]
    assert "job.batch/jax created" in run.output


@pytest.mark.slurm
def test_readme_gpu_cluster_walkthrough_submits_on_a_p5_shaped_slurm(gpu_slurm, artifacts_root, tmp_path):
    """Section 3 as written: the image is built and imported, then the container and MaxText batch
    scripts run on a real Slurm of 8 nodes x 8 GPUs; only srun, docker and enroot are stood in for."""
    run = run_on_cluster(README, "gpu-cluster", artifacts_root / "jax-wt-gpu", tmp_path / "bin", gpu_slurm)
    jobs = run.jobs
    assert [job.state for job in jobs] == ["COMPLETED"] * 3
    assert [len(job.nodes) for job in jobs] == [1, 2, 4]
    (trainer,), (maxtext,), (maxtext_4,) = (run.launches_of(job) for job in jobs)
    for launch in (trainer, maxtext, maxtext_4):
        assert launch["options"]["--container-image"] == "/fsx/images/jax.sqsh"
        assert launch["command"][0] == "python3"
        assert launch["env"]["FI_PROVIDER"] == "efa" and launch["env"]["FI_EFA_USE_DEVICE_RDMA"] == "1"
    assert trainer["num_nodes"] == 1 and trainer["options"]["--ntasks-per-node"] == "1"
    assert trainer["command"][1:4] == ["/workspace/jax/src/train.py", "--preset", "llama3_2_1b"]
    log = (run.workdir / CASE / f"jax_{jobs[0].id}.out").read_text()
    assert f"coordinator {gpu_slurm.node_addr(jobs[0].nodes[0])}:23456" in log  # the first node's NodeAddr
    for launch, nodes in ((maxtext, 2), (maxtext_4, 4)):
        assert launch["num_nodes"] == nodes and launch["options"]["--ntasks-per-node"] == "8"
        assert launch["command"][1:4] == [
            "-m",
            "maxtext.trainers.pre_train.train",
            "/workspace/jax/maxtext/llama3_1_8b_p5.yml",
        ]
        assert f"run_name=maxtext-{launch['job']}" in launch["command"]
        assert "--xla_gpu_enable_latency_hiding_scheduler=true" in launch["env"]["XLA_FLAGS"]
    assert maxtext_4["command"][-2:] == ["steps=2000", "per_device_batch_size=4"]
    versions = yaml.safe_load((run.workdir / "2.ami_and_containers" / "versions.yaml").read_text())
    assert run.images["built"]["jax:dev"]["from"] == [versions["images"]["cuda-devel-ubuntu24"]]
    assert run.images["imported"] == {"/fsx/images/jax.sqsh": "dockerd://jax:dev"}


@pytest.mark.framework
def test_readme_dry_run_prints_the_srun_command(artifacts_root):
    result = run_walkthrough(README, "dry-run", artifacts_root / "wt-jax-dry", timeout=120)
    assert result.returncode == 0, result.output[-4000:]
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("srun --nodes=") and "--container-image=/fsx/images/jax.sqsh" in line
