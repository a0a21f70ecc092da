"""The image builds from jax.Dockerfile with versions.yaml's pins, trains tiny, and MaxText's own config
loader accepts this folder's MaxText config (needs a Docker daemon)."""

from __future__ import annotations

from pathlib import Path

import pytest

TEST_CASE_DIR = Path(__file__).resolve().parents[1]


@pytest.mark.docker
@pytest.mark.slow
def test_image_trains_tiny_and_loads_the_maxtext_config(docker_build, docker_run):
    image = docker_build(TEST_CASE_DIR, "jax.Dockerfile", "jax:test")
    command = ["python3", "src/train.py", "--preset", "tiny", "--max-steps", "5", "--run-dir", "/tmp/run"]
    code, logs = docker_run(image, command)
    assert code == 0, logs[-3000:]
    assert "summary: step 5" in logs
    code, logs = docker_run(image, ["python3", "src/train.py", "--preset", "nope"])
    assert code == 2 and "error: unknown preset 'nope'" in logs
    load = (
        "from maxtext.configs import pyconfig; "
        "c = pyconfig.initialize(['train', 'maxtext/llama3_1_8b_p5.yml', 'run_name=t', "
        "'base_output_directory=/tmp/out', 'hardware=cpu', 'skip_jax_distributed_system=true']); "
        "print('maxtext config', c.model_name, c.ici_fsdp_parallelism, c.base_num_decoder_layers)"
    )
    code, logs = docker_run(image, ["python3", "-c", load])
    assert code == 0, logs[-3000:]
    assert "maxtext config llama3.1-8b 8 32" in logs
