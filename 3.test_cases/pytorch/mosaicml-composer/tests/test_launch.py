"""The Makefile's launch targets as a user types them: `make slurm` passes PRESET, IMAGE and overrides to the
sbatch; `make local` and `make venv` refuse what cannot work before touching Docker or a venv."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

from testbed.system import require_programs

FOLDER = Path(__file__).resolve().parents[1]
ROOT = FOLDER.parents[2]


def make(*args: str, **env: str) -> subprocess.CompletedProcess:
    require_programs("make", "make")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "MAKE"))}
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=FOLDER,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_make_slurm_passes_preset_image_and_overrides(tmp_path):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    sbatch = fake_bin / "sbatch"
    sbatch.write_text('#!/bin/bash\nINSTANCE_TYPE=cpu EFA_SYSFS=/nonexistent DRY_RUN=1 exec bash "$@"\n')
    sbatch.chmod(0o755)
    result = make(
        "slurm",
        "PRESET=mpt-7b",
        "IMAGE=/fsx/images/composer.sqsh",
        "ARGS=max_duration=100ba",
        PATH=f"{fake_bin}:{os.environ['PATH']}",
    )
    assert result.returncode == 0, result.stderr
    assert "--container-image=/fsx/images/composer.sqsh" in result.stdout
    assert "train /workspace/composer/yamls/mpt-7b.yaml run_name=composer-mpt-7b-0" in result.stdout
    assert result.stdout.rstrip().endswith("max_duration=100ba")


def test_make_local_refuses_without_data_or_preset(tmp_path):
    no_data = make("local", f"DATA_DIR={tmp_path / 'none'}")
    assert no_data.returncode != 0 and "error: no data in" in no_data.stderr and "make data" in no_data.stderr
    assert "docker run" not in no_data.stdout
    bad = make("local", "PRESET=gpt2", f"DATA_DIR={tmp_path}")
    assert (
        bad.returncode != 0
        and "error: no yamls/gpt2.yaml; PRESET is one of: mpt-125m mpt-1b mpt-7b" in bad.stderr
    )


def test_make_venv_never_installs_composer_into_the_repository_venv():
    result = make("venv", f"VENV={ROOT / '.venv'}")
    assert result.returncode != 0
    assert (
        "error: VENV is the repository's venv (torch 2.13); Composer 0.32.1 needs torch < 2.7.1"
        in result.stderr
    )
    assert "pip install" not in result.stdout


def test_make_data_runs_llm_foundrys_data_step_with_its_own_options(tmp_path):
    """`make data` (in the image, so previewed with -n here) uses only the options llm-foundry 0.22.0's
    `llmfoundry data_prep convert_dataset_hf` has, and writes the splits the YAMLs read."""
    upstream = json.loads((FOLDER / "tests" / "upstream" / "llm-foundry-0.22.0.json").read_text())
    result = make("-n", "data", f"DATA_DIR={tmp_path / 'c4'}")
    assert result.returncode == 0, result.stderr
    words = shlex.split(result.stdout.replace("\\\n", " ").splitlines()[-1])
    step = words[words.index("convert_dataset_hf") + 1 :]
    options = [w for w in step if w.startswith("--")]
    assert set(options) <= set(upstream["data_prep_convert_dataset_hf"]["options"]), options
    assert step[step.index("--splits") + 1] == "train_small,val_small"
    assert step[step.index("--concat-tokens") + 1] == "2048"
    for path in sorted((FOLDER / "yamls").glob("*.yaml")):
        text = path.read_text()
        assert "split: train_small" in text and "split: val_small" in text
