"""The README as written. Sections 1 and 2 are one journey pasted into one shell: the repository's venv
activated, `make local`, a resume, one process; then a 2-node local Slurm up, `sbatch slurm/tiny.sbatch`,
the job's log, the cluster down, and a GPU preset's DRY_RUN preview. Section 4: `make k8s`. The data
block: a corpus staged on /fsx (a folder of the test's at that path)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from testbed.kube import validate_manifest
from testbed.slurm import REQUIRED_PROGRAMS, cluster_processes
from testbed.standins import applied, calls, run_on_cluster, run_on_fsx, write_standins
from testbed.system import require_programs
from testbed.walkthrough import run_walkthrough

README = Path(__file__).resolve().parents[1] / "README.md"
CASE = Path("3.test_cases/pytorch/FSDP")


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slurm
@pytest.mark.slow
def test_readme_journey_laptop_to_slurm(artifacts_root):
    require_programs("local Slurm", *REQUIRED_PROGRAMS)
    result = run_walkthrough(README, "journey", artifacts_root / "fsdp-wt-journey", timeout=600)
    assert result.returncode == 0, result.output[-4000:]
    folder = result.workdir / CASE

    # Section 1: 60 steps, a resume from step 60 to 80, then one process.
    local = records(folder / "runs" / "local" / "metrics.jsonl")
    assert [r["step"] for r in local if r.get("event") == "resume"] == [60]
    assert [r["step"] for r in local if "loss" in r] == list(range(1, 81))
    assert json.loads((folder / "runs" / "local" / "result.json").read_text())["step"] == 80
    assert "summary: step 10" in result.output  # the one-process run
    assert '"event": "summary"' in result.output  # tail of metrics.jsonl

    # Section 2: the cluster came up, the job trained on both nodes with the activated venv, and the
    # cluster is gone.
    assert "LocalSlurm up: n1, n2" in result.output and "stopped and removed" in result.output
    assert "fsdp tiny: job" in result.output
    conf = result.workdir / ".testbed" / "slurm" / "slurm.conf"
    assert not conf.exists() and cluster_processes(conf) == []
    runs = list((folder / "runs").glob("tiny-*"))
    assert len(runs) == 1
    job_id = runs[0].name.removeprefix("tiny-")
    log = (folder / f"fsdp-tiny_{job_id}.out").read_text()
    assert "summary: step 10" in log
    ranks = [json.loads(p.read_text()) for p in sorted((runs[0] / "ranks").glob("rank*.json"))]
    assert {r["node"] for r in ranks} == {"n1", "n2"} and len(ranks) == 4  # 2 nodes x 2 ranks
    assert all(r["run_id"] == job_id for r in ranks)
    assert (runs[0] / "checkpoints" / "step-00000010" / "COMPLETE").is_file()
    summary = records(runs[0] / "metrics.jsonl")[-1]
    assert summary["event"] == "summary" and summary["step"] == 10

    # The DRY_RUN preview of a GPU preset: 2 nodes of 8 ranks, nothing submitted.
    preview = [line for line in result.output.splitlines() if line.startswith("srun ")][-1]
    assert preview.startswith("srun --nodes=2") and "--nproc-per-node=8" in preview
    assert "--preset llama3_1_8b" in preview


def test_readme_data_walkthrough_stages_a_corpus_on_fsx(artifacts_root, tmp_path, fsx):
    """The local staging block as written, on shared storage: /fsx/corpus (text and JSONL files) becomes
    byte-token shards with their index and the STAGED marker under /fsx/data/corpus-bytes."""
    corpus = fsx / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    documents = ["first document\n", "второй документ", "third, in JSONL"]
    (corpus / "a.txt").write_text(documents[0], encoding="utf-8")
    (corpus / "b.txt").write_text(documents[1], encoding="utf-8")
    (corpus / "c.jsonl").write_text(json.dumps({"text": documents[2]}) + "\n", encoding="utf-8")
    run = run_on_fsx(README, "data", artifacts_root / "fsdp-wt-data", tmp_path / "bin", fsx)
    assert "tokens/s" in run.output
    staged = fsx / "data" / "corpus-bytes"
    index = json.loads((staged / "index.json").read_text())
    assert (staged / "STAGED").is_file() and index["documents"] == 3 and index["eod_id"] == 256
    assert index["tokens"] == sum(len(text.encode()) + 1 for text in documents)  # bytes + end-of-document
    assert sorted(path.name for path in staged.glob("tokens-*.bin")) == [s["file"] for s in index["shards"]]


def test_readme_k8s_walkthrough_renders_a_valid_pytorchjob(artifacts_root, tmp_path):
    require_programs("make k8s", "make", "envsubst")
    log = write_standins(tmp_path / "bin")
    result = run_walkthrough(
        README, "k8s", artifacts_root / "fsdp-wt-k8s", timeout=120, standins=tmp_path / "bin"
    )
    assert result.returncode == 0, result.output[-4000:]
    text = (result.workdir / CASE / "build" / "llama3_1_8b.yaml").read_text()
    assert validate_manifest(text) == []
    job = yaml.safe_load(text)
    image = job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["image"]
    assert image == "123456789012.dkr.ecr.us-east-1.amazonaws.com/fsdp:dev"
    assert "kubectl apply -f build/llama3_1_8b.yaml" in result.output
    assert calls(log) == ["kubectl apply -f build/llama3_1_8b.yaml"]
    assert [(o["kind"], o["name"]) for o in applied(log)] == [("pytorchjob", "fsdp-llama3-1-8b")]
    assert "pytorchjob.kubeflow.org/fsdp-llama3-1-8b created" in result.output


@pytest.mark.slurm
def test_readme_gpu_cluster_walkthrough_submits_on_a_p5_shaped_slurm(gpu_slurm, artifacts_root, tmp_path):
    """Sections 2 (GPU cluster) and 3 as written: the batch scripts run on a real Slurm of 8 nodes x 8
    GPUs; only srun (the GPU ranks), docker and enroot are stood in for."""
    run = run_on_cluster(README, "gpu-cluster", artifacts_root / "fsdp-wt-gpu", tmp_path / "bin", gpu_slurm)
    assert [len(job.nodes) for job in run.jobs] == [2, 4, 2]
    _, (venv,), (container,) = (run.launches_of(job) for job in run.jobs)
    assert venv["num_nodes"] == 4 and venv["options"]["--ntasks-per-node"] == "1"
    assert venv["command"][0] == str(Path(run.workdir, ".venv", "bin", "torchrun").resolve())
    assert "--nproc-per-node=8" in venv["command"] and venv["command"][-2:] == ["--max-steps", "2000"]
    assert venv["env"]["FI_PROVIDER"] == "efa" and venv["env"]["FI_EFA_USE_DEVICE_RDMA"] == "1"
    assert container["options"]["--container-image"] == "/fsx/images/fsdp.sqsh"
    assert container["command"][0] == "torchrun" and "/workspace/fsdp/src/train.py" in container["command"]
    versions = yaml.safe_load((run.workdir / "2.ami_and_containers" / "versions.yaml").read_text())
    base = versions["images"]["training-base"]
    assert run.images["built"]["fsdp:dev"]["from"] == [base] and base in run.images["built"]
    assert run.images["imported"] == {"/fsx/images/fsdp.sqsh": "dockerd://fsdp:dev"}
