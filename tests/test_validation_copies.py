"""The validation tools share small modules by identical copies (each folder stays copyable on its own).

A copy that drifts from its siblings fails here; fix one, then copy it to the others.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VALIDATION = ROOT / "4.validation_observability"
COPIES = {
    "instance_types.py": [
        "1.pytorch-env-validation/env_validation",
        "2.gpu-cluster-healthcheck/gpu_healthcheck",
        "6.nccl-tests/nccl_bench",
    ],
    "output_contract.py": [
        "1.pytorch-env-validation/env_validation",
        "2.gpu-cluster-healthcheck/gpu_healthcheck",
        "6.nccl-tests/nccl_bench",
    ],
    "nccl_output.py": ["2.gpu-cluster-healthcheck/gpu_healthcheck", "6.nccl-tests/nccl_bench"],
}


@pytest.mark.parametrize("module", sorted(COPIES))
def test_copies_are_identical(module):
    texts = {folder: (VALIDATION / folder / module).read_text() for folder in COPIES[module]}
    first = next(iter(texts.values()))
    drifted = [folder for folder, text in texts.items() if text != first]
    assert not drifted, f"{module} differs in {drifted} from {COPIES[module][0]}; copy one version to all"


def test_requirements_pin_what_pyproject_pins():
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]
    pinned = dict(item.split("==") for group in groups.values() for item in group if isinstance(item, str))
    requirement_files = sorted(VALIDATION.glob("*/requirements.txt"))
    assert requirement_files
    for path in requirement_files:
        lines = path.read_text().splitlines()
        requirements = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        assert requirements, f"{path.relative_to(ROOT)} pins nothing"
        for line in requirements:
            name, version = line.split("==")
            assert pinned.get(name) == version, (
                f"{path.relative_to(ROOT)}: {line} but pyproject pins {pinned.get(name)}"
            )
