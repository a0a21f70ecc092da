"""The README's section 1 runs as written: `make local` (2 processes x 2 CPU devices), then a second
`make local` that resumes from the Orbax checkpoint. `make local` uses VENV, here this session's JAX venv
(the `jax` nox session runs this test)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from testbed.standins import applied, calls, write_standins
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
    log = write_standins(tmp_path / "bin")
    result = run_walkthrough(
        README, "k8s", artifacts_root / "wt-jax-k8s", timeout=120, standins=tmp_path / "bin"
    )
    assert result.returncode == 0, result.output[-4000:]
    text = (result.workdir / "3.test_cases" / "jax" / "build/jax-job.yaml").read_text()
    assert "image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/jax:dev" in text and "${" not in text
    assert calls(log) == ["kubectl apply -f build/jax-job.yaml"]
    assert [(o["kind"], o["name"]) for o in applied(log)] == [("service", "jax"), ("job", "jax")]
    assert "job.batch/jax created" in result.output


@pytest.mark.framework
def test_readme_dry_run_prints_the_srun_command(artifacts_root):
    result = run_walkthrough(README, "dry-run", artifacts_root / "wt-jax-dry", timeout=120)
    assert result.returncode == 0, result.output[-4000:]
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("srun --nodes=") and "--container-image=/fsx/images/jax.sqsh" in line
