"""Every relative link in every Markdown file points at something that exists (anchors aside)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

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


def external_links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)
    return [link for link in LINK.findall(text) if re.match(r"^[a-z]+:", link)]


def test_external_links_are_well_formed_https():
    """No network: the form only (https, a host name, no placeholder host)."""
    bad = []
    for path in markdown_files():
        for link in external_links(path):
            url = urlparse(link)
            if url.scheme != "https" or "." not in url.netloc or url.netloc.endswith("example.com"):
                bad.append(f"{path.relative_to(ROOT)}: {link}")
    assert not bad, bad


# Where a user needs the AWS documentation and the public workshops: the site's further reading page.
AWS_DOCS = {
    "ParallelCluster install": "docs.aws.amazon.com/parallelcluster/latest/ug/install-v3-parallelcluster",
    "HyperPod": "docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-hyperpod",
    "EKS": "docs.aws.amazon.com/eks/",
    "EFA": "docs.aws.amazon.com/AWSEC2/latest/UserGuide/efa",
    "FSx for Lustre": "docs.aws.amazon.com/fsx/latest/LustreGuide/",
    "quotas": "docs.aws.amazon.com/servicequotas/",
    "ECR": "docs.aws.amazon.com/AmazonECR/",
    "HyperPod workshop": "catalog.workshops.aws/sagemaker-hyperpod/",
    "HyperPod EKS workshop": "catalog.workshops.aws/sagemaker-hyperpod-eks/",
    "ParallelCluster workshop": "catalog.workshops.aws/ml-on-aws-parallelcluster/",
}


def test_further_reading_links_the_aws_docs_and_workshops_users_need():
    links = external_links(ROOT / "docs" / "further-reading.md")
    missing = [
        name for name, part in AWS_DOCS.items() if not any(f"https://{part}" in link for link in links)
    ]
    assert not missing, f"docs/further-reading.md links none of: {missing}"
