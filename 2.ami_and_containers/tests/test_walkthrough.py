"""The README's container walkthrough as written: the training base, an image FROM it, its squashfs.

docker and enroot are stand-ins (testbed/job_standins.py): each build's Dockerfile, context, COPY
sources and FROM are checked, the images and the import recorded."""

from __future__ import annotations

from pathlib import Path

import yaml

from testbed.standins import JOB_TOOLS, run_with_standins

CONTAINERS = Path(__file__).resolve().parents[1]
README = CONTAINERS / "README.md"
BASE = yaml.safe_load((CONTAINERS / "versions.yaml").read_text())["images"]["training-base"]


def test_readme_containers_walkthrough_builds_the_base_then_an_image_from_it(artifacts_root, tmp_path):
    run = run_with_standins(
        README, "containers", artifacts_root / "wt-containers", tmp_path / "bin", tools=JOB_TOOLS, timeout=120
    ).check()
    built = run.images["built"]
    assert Path(built[BASE]["dockerfile"]).name == "base.Dockerfile"
    assert built["fsdp:dev"]["from"] == [BASE]  # the test case's image builds FROM the base's tag
    assert run.images["imported"] == {"/fsx/images/training-base.sqsh": f"dockerd://{BASE}"}
    assert [line.split()[:2] for line in run.calls] == [["docker", "build"]] * 2 + [["enroot", "import"]]
