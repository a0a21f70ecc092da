"""Every README block that runs `enroot import` is shell that shellcheck passes (users paste these)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from testbed.walkthrough import REPO_ROOT, repository_files

BLOCK = re.compile(r"```(?:bash|sh)\n(.*?)```", re.DOTALL)


def enroot_blocks() -> list[tuple[str, str]]:
    return [
        (str(path), body)
        for path in repository_files("*.md", "**/*.md")
        for body in BLOCK.findall((REPO_ROOT / path).read_text())
        if re.search(r"^[^#\n]*enroot import", body, re.MULTILINE)
    ]


def test_enroot_import_blocks_pass_shellcheck(tmp_path: Path):
    blocks = enroot_blocks()
    assert any(path.startswith("2.ami_and_containers/") for path, _ in blocks), blocks
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    for index, (path, body) in enumerate(blocks):
        script = tmp_path / f"block{index}.sh"
        script.write_text("#!/bin/bash\n" + body)
        result = subprocess.run([shellcheck, str(script)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"{path}: enroot block fails shellcheck:\n{result.stdout}"
    broken = tmp_path / "broken.sh"
    broken.write_text("#!/bin/bash\nenroot import -o $SQSH dockerd://image:tag\n")  # unquoted: SC2086
    assert subprocess.run([shellcheck, str(broken)], capture_output=True, check=False).returncode != 0
