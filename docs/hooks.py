"""mkdocs hooks (``hooks:`` in mkdocs.yml): diagrams, the benchmark page and source views, made at build
time by ``site_build.py``. Any failure there fails the build with one line naming the input."""

from __future__ import annotations

from pathlib import Path

import site_build
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

BENCH_PAGE = "docs/benchmarks.md"
_diagrams: dict[str, str] = {}  # README src_uri -> SVG file name beside it
_bench = {"markdown": ""}  # the benchmark page's generated body
_sources: dict[str, str] = {}  # site path of a linked-to source file -> its path on disk
_linked: set[str] = set()


def on_files(files: Files, config: MkDocsConfig) -> Files:
    _diagrams.clear()
    _linked.clear()
    try:
        for file in list(files):
            if file.src_uri.endswith("/" + site_build.DIAGRAM_SOURCE):
                svg = site_build.render_dot(Path(file.abs_src_path))
                folder = file.src_uri.rsplit("/", 1)[0]
                svg_name = site_build.DIAGRAM_SOURCE.replace(".dot", ".svg")
                files.append(File.generated(config, f"{folder}/{svg_name}", content=svg))
                _diagrams[f"{folder}/README.md"] = svg_name
        results = site_build.load_results(Path(config.docs_dir) / "bench-results")
        captions, svgs = site_build.benchmark_plots(results)
    except site_build.SiteBuildError as exc:
        raise PluginError(str(exc)) from exc
    for name, svg in svgs.items():
        files.append(File.generated(config, f"{site_build.PLOT_FOLDER}/{name}", content=svg))
    _bench["markdown"] = site_build.benchmark_markdown(results, captions)
    _sources.clear()
    _sources.update(
        {
            file.dest_uri: file.abs_src_path
            for file in files
            if not file.is_documentation_page()
            and file.abs_src_path
            and site_build.is_source_file(file.src_uri)
        }
    )
    missing = sorted(readme for readme in _diagrams if files.get_file_from_path(readme) is None)
    if missing:
        raise PluginError(f"{site_build.DIAGRAM_SOURCE} without a README.md beside it: {missing}")
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    svg_name = _diagrams.get(page.file.src_uri)
    if svg_name:
        try:
            title = page.title or page.file.src_uri
            markdown = site_build.insert_after_title(markdown, site_build.diagram_line(title, svg_name))
        except site_build.SiteBuildError as exc:
            raise PluginError(f"{page.file.src_uri}: {exc}") from exc
    if page.file.src_uri == BENCH_PAGE:
        if site_build.BENCH_MARK not in markdown:
            raise PluginError(f"{BENCH_PAGE}: no {site_build.BENCH_MARK} line to put the results under")
        markdown = markdown.replace(site_build.BENCH_MARK, _bench["markdown"])
    return markdown


def on_page_content(html: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    html, linked = site_build.rewrite_source_links(html, page.file.dest_uri, set(_sources))
    _linked.update(linked)
    return html


def on_post_build(config: MkDocsConfig) -> None:
    site = Path(config.site_dir)
    for site_path in sorted(_linked):
        text = Path(_sources[site_path]).read_text(errors="replace")
        view = site_build.source_view_html(site_path, text, config.site_name)
        (site / f"{site_path}.html").write_text(view)
