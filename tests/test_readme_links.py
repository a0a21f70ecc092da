"""Every relative link in every Markdown file points at something that exists (anchors aside)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from testbed.walkthrough import repository_files

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def markdown_files() -> list[Path]:
    return [ROOT / path for path in repository_files("*.md")]


def relative_links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)
    return [link for link in LINK.findall(text) if not re.match(r"^[a-z]+:|^#|^/", link)]


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    broken = [link for link in relative_links(path) if not (path.parent / link.split("#")[0]).exists()]
    assert not broken, f"{path.relative_to(ROOT)}: broken links {broken}"


def test_the_checker_sees_links():
    readme = ROOT / "3.test_cases" / "pytorch" / "cpu-ddp" / "README.md"
    assert "slurm/cpu-ddp.sbatch" in relative_links(readme)
