"""What the docs build generates (docs/site_build.py) and how the browser check serves the site
(docs/check_site.py); the build itself and the browser run in the `docs` nox session."""

from __future__ import annotations

import importlib.util
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from testbed.system import require_programs

ROOT = Path(__file__).resolve().parents[1]
DIAGRAM_FOLDERS = [
    "1.architectures/1.vpc_network",
    "1.architectures/2.aws-parallelcluster",
    "1.architectures/3.aws-batch",
    "1.architectures/4.amazon-eks",
    "1.architectures/5.sagemaker-hyperpod",
    "testbed",
]


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


site_build = load("site_build")
check_site = load("check_site")


@pytest.mark.parametrize("folder", DIAGRAM_FOLDERS)
def test_each_architecture_diagram_renders_beside_its_readme(folder):
    require_programs("Graphviz", "dot")
    source = ROOT / folder / site_build.DIAGRAM_SOURCE
    assert (ROOT / folder / "README.md").is_file()
    svg = site_build.render_dot(source)
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and svg.count('class="node"') >= 4


def test_a_diagram_that_does_not_render_fails_naming_the_file(tmp_path):
    require_programs("Graphviz", "dot")
    broken = tmp_path / "architecture.dot"
    broken.write_text("digraph x { a -> ; }\n")
    with pytest.raises(site_build.SiteBuildError, match=r"architecture\.dot: Graphviz did not render it"):
        site_build.render_dot(broken)
    warned = tmp_path / "warned.dot"
    warned.write_text("digraph x { a [shape=nosuchshape]; }\n")
    with pytest.raises(site_build.SiteBuildError, match="nosuchshape"):
        site_build.render_dot(warned)


def test_the_diagram_goes_under_the_title():
    page = "# VPC\n\nText.\n"
    out = site_build.insert_after_title(page, "![d](architecture.svg)")
    assert out == "# VPC\n\n![d](architecture.svg)\n\n\nText.\n"
    with pytest.raises(site_build.SiteBuildError, match="no `# ` title"):
        site_build.insert_after_title("no title\n", "x")


MACHINE = {"cpu": "Test CPU", "cores": 2, "memory_gib": 23.5, "torch": "2.13.0+cpu", "commit": "abc1234"}


def write_results(folder: Path) -> None:
    stat = {
        "runs": 3,
        "min": 90.0,
        "median": 100.0,
        "max": 110.0,
        "spread": 0.2,
        "values": [90.0, 100.0, 110.0],
    }
    folder.mkdir()
    (folder / "ddp-1.json").write_text(
        json.dumps({"benchmark": "cpu-ddp/wide", "time": "2026-01-01T00:00:00Z", "machine": MACHINE,
                    "steps": 150, "formula": "6*N + 12*L per token", "two_ranks_samples_per_s": stat,
                    "valid": True, "problems": []})
    )  # fmt: skip
    rows = [
        {"size_bytes": 2**i, "time_us": 10.0 * i, "algbw": 0.1 * i, "busbw": 0.1 * i} for i in range(3, 9)
    ]
    (folder / "gloo-2.json").write_text(
        json.dumps({"benchmark": "gloo/all_reduce", "time": "2026-01-02T00:00:00Z", "machine": MACHINE,
                    "units": {"busbw": "GB/s, algbw x 2(n-1)/n"}, "rows": rows})
    )  # fmt: skip


def test_benchmark_page_has_machine_figures_and_plots_newest_first(tmp_path):
    write_results(tmp_path / "bench-results")
    results = site_build.load_results(tmp_path / "bench-results")
    assert [r["_file"] for r in results] == ["gloo-2.json", "ddp-1.json"]
    captions, svgs = site_build.benchmark_plots(results)
    assert set(svgs) == {"gloo-2-busbw.svg", "ddp-1-stats.svg"}
    assert all("<svg" in svg for svg in svgs.values())
    page = site_build.benchmark_markdown(results, captions)
    assert page.index("## gloo/all_reduce") < page.index("## cpu-ddp/wide")
    assert "| cpu | Test CPU |" in page and "| commit | abc1234 |" in page
    assert "| two\\_ranks\\_samples\\_per\\_s | 100 (90 to 110), 3 runs |" in page
    assert "| steps | 150 |" in page and "| problems | none |" in page
    assert "![gloo/all_reduce: bus bandwidth by message size](bench-plots/gloo-2-busbw.svg)" in page
    assert "| size\\_bytes | time\\_us | algbw | busbw |" in page
    assert "| formula | 6\\*N + 12\\*L per token |" in page  # Markdown's characters are escaped


def test_benchmark_page_without_results_says_how_to_make_them(tmp_path):
    assert site_build.load_results(tmp_path) == []
    assert "run `make bench`" in site_build.benchmark_markdown([], {})


def test_a_result_that_is_not_one_fails_the_build_naming_it(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(site_build.SiteBuildError, match=r"bad\.json: not a readable JSON result"):
        site_build.load_results(tmp_path)
    (tmp_path / "bad.json").write_text('{"rows": []}')
    with pytest.raises(site_build.SiteBuildError, match=r"bad\.json: not a benchmark result"):
        site_build.load_results(tmp_path)


def test_links_to_source_files_open_their_text_view():
    sources = {"a/b/slurm/x.sbatch", "a/b/Makefile", "a/c/tool.py"}
    page = (
        '<a href="slurm/x.sbatch">s</a> <a href="Makefile#L3">m</a> <a href="../c/tool.py">t</a> '
        '<a href="../c/">folder</a> <a href="https://example.com/x.py">ext</a> <a href="other.py">no</a>'
    )
    out, linked = site_build.rewrite_source_links(page, "a/b/index.html", sources)
    assert 'href="slurm/x.sbatch.html"' in out and 'href="Makefile.html#L3"' in out
    assert 'href="../c/tool.py.html"' in out and 'href="../c/"' in out
    assert 'href="https://example.com/x.py"' in out and 'href="other.py"' in out
    assert linked == sources
    assert site_build.is_source_file("x/Makefile") and site_build.is_source_file("x/gpu.Dockerfile")
    assert not site_build.is_source_file("x/diagram.png")
    view = site_build.source_view_html("a/c/tool.py", "print('<b>')\n", "Site")
    assert "&lt;b&gt;" in view and 'href="../../"' in view and 'href="tool.py"' in view


def test_the_browser_check_serves_the_site_under_site_url_with_a_404_page(tmp_path):
    site = tmp_path / "site"
    (site / "docs" / "a").mkdir(parents=True)
    (site / "assets").mkdir()
    (site / "index.html").write_text("home")
    (site / "docs" / "a" / "index.html").write_text("page")
    (site / "assets" / "index.html").write_text("not a page")
    (site / "404.html").write_text("missing")
    assert check_site.site_pages(site) == ["", "docs/a/"]
    prefix = check_site.site_prefix(ROOT / "mkdocs.yml")
    site_url = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["site_url"]
    assert site_url.startswith("https://") and site_url.endswith(prefix)
    server, base = check_site.serve(site, "/docs-site/")
    try:
        with urllib.request.urlopen(base + "docs/a/") as response:  # noqa: S310 - loopback
            assert response.read() == b"page"
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(base + "nope/")  # noqa: S310 - loopback
        with missing.value as error:
            assert error.code == 404 and error.read() == b"missing"
        assert check_site.status_of(base.replace("/docs-site/", "/index.html")) == 404
    finally:
        server.shutdown()
        server.server_close()
    assert check_site.main(["--site", str(tmp_path / "nothing")]) == 2
