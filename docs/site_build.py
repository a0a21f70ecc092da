"""What the docs build generates beside the READMEs; called by the mkdocs hooks in ``hooks.py``.

- Architecture diagrams: every ``architecture.dot`` is rendered with Graphviz (``dot -Tsvg``, from the OS
  packages) and shown under the title of the README beside it. A diagram that does not render, or that
  Graphviz warns about, fails the build.
- The benchmark page: ``bench-results/*.json`` (written by ``make bench``, with the machine each ran on)
  as tables, and SVG plots drawn with matplotlib.
- Source views: a link from a page to a source file (``.py``, ``.sbatch``, ``Makefile``, ...) opens a
  page showing the file as text instead of downloading it.

No function here imports mkdocs, so the tests run them in the project venv.
"""

from __future__ import annotations

import html
import io
import json
import math
import posixpath
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_for_filename
from pygments.util import ClassNotFound

matplotlib.rcParams["svg.hashsalt"] = "bench"  # stable element ids: the same results give the same SVG
DIAGRAM_SOURCE = "architecture.dot"
BENCH_MARK = "<!-- bench-results -->"
PLOT_FOLDER = "docs/bench-plots"


class SiteBuildError(Exception):
    """A generated part of the site cannot be made; the message names the input and the fix."""


# --- Diagrams ----------------------------------------------------------------------------------------


def render_dot(source: Path) -> str:
    """The SVG of a Graphviz file; any error or warning from ``dot`` is a SiteBuildError."""
    dot = shutil.which("dot")
    if dot is None:
        raise SiteBuildError(
            f"{source}: Graphviz `dot` not found; install the graphviz package (sudo make system-deps)"
        )
    proc = subprocess.run([dot, "-Tsvg", str(source)], capture_output=True, text=True, check=False)
    problem = proc.stderr.strip()
    if proc.returncode != 0 or problem or "<svg" not in proc.stdout:
        first = problem.splitlines()[0] if problem else f"exit status {proc.returncode}, no SVG"
        raise SiteBuildError(f"{source}: Graphviz did not render it cleanly: {first}")
    return proc.stdout


def diagram_line(title: str, svg_name: str) -> str:
    return f"![Architecture: {title}]({svg_name}){{ .architecture-diagram }}"


def insert_after_title(markdown: str, line: str) -> str:
    """``markdown`` with ``line`` as its own paragraph right after the first ``# `` heading."""
    lines = markdown.splitlines(keepends=True)
    for index, text in enumerate(lines):
        if text.startswith("# "):
            return "".join([*lines[: index + 1], "\n", line, "\n\n", *lines[index + 1 :]])
    raise SiteBuildError("the page has no `# ` title to put the diagram under")


# --- Benchmarks --------------------------------------------------------------------------------------


def load_results(folder: Path) -> list[dict[str, Any]]:
    """Every result JSON of ``folder``, newest first; each gets ``_file`` (its name)."""
    results = []
    for path in sorted(folder.glob("*.json")):
        try:
            result = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SiteBuildError(f"{path}: not a readable JSON result ({exc}); rerun make bench") from exc
        if not isinstance(result, dict) or "benchmark" not in result or "machine" not in result:
            raise SiteBuildError(f"{path}: not a benchmark result (no benchmark or machine key)")
        result["_file"] = path.name
        results.append(result)
    return sorted(results, key=lambda r: (str(r.get("time", "")), r["_file"]), reverse=True)


def is_stat(value: Any) -> bool:
    """A repeated measurement: a dict with at least a median."""
    return isinstance(value, dict) and "median" in value and isinstance(value["median"], int | float)


def format_number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if value == 0 or math.isnan(value):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 1e6 or magnitude < 1e-3:
        return f"{value:.3g}"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.4g}" if magnitude < 1000 else f"{value:,.0f}"


def format_stat(stat: dict[str, Any]) -> str:
    text = format_number(stat["median"])
    if "min" in stat and "max" in stat:
        text += f" ({format_number(stat['min'])} to {format_number(stat['max'])})"
    if "runs" in stat:
        text += f", {stat['runs']} runs"
    return text


def flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Leaves of a result as (dotted path, value): stats and scalars; lists of rows are left out."""
    if is_stat(value):
        return [(prefix, value)]
    if isinstance(value, dict):
        leaves = []
        for key, item in value.items():
            if not str(key).startswith("_"):
                leaves += flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return leaves
    if isinstance(value, list):
        if value and all(isinstance(item, dict) for item in value):
            return []
        return [(prefix, ", ".join(map(str, value)) or "none")]
    return [(prefix, value)]


def row_lists(result: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The result's top-level lists of rows (``rows``, ``runs``)."""
    return {
        key: value
        for key, value in result.items()
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value)
    }


MARKDOWN_SPECIAL = str.maketrans({char: "\\" + char for char in "\\`*_[]<>|#"})


def cell(value: Any) -> str:
    """A table cell: numbers formatted, Markdown's own characters escaped (a formula stays a formula)."""
    text = format_stat(value) if is_stat(value) else format_number(value)
    return text.translate(MARKDOWN_SPECIAL)


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(cell(name) for name in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def rows_table(rows: list[dict[str, Any]]) -> str:
    flat = [dict(flatten(row)) for row in rows]
    columns = list(dict.fromkeys(key for row in flat for key in row))
    return markdown_table(columns, [[row.get(column, "") for column in columns] for row in flat])


SKIPPED_KEYS = {"benchmark", "time", "machine"}


def result_section(result: dict[str, Any], plots: dict[str, str]) -> str:
    """One result as Markdown: title, machine, figures, row tables and its plots."""
    parts = [f"## {result['benchmark']}", "", f"`{result['_file']}`, measured {result.get('time', '?')}", ""]
    machine = result["machine"] if isinstance(result["machine"], dict) else {"machine": result["machine"]}
    parts += [markdown_table(["machine", ""], [[key, value] for key, value in machine.items()]), ""]
    figures = [(k, v) for k, v in flatten(result) if k.split(".")[0] not in SKIPPED_KEYS]
    if figures:
        parts += [markdown_table(["figure", "value"], [[key, value] for key, value in figures]), ""]
    for key, rows in row_lists(result).items():
        parts += [f"`{key}`:", "", rows_table(rows), ""]
    for name, caption in plots.items():
        parts += [f"![{caption}](bench-plots/{name})", ""]
    return "\n".join(parts)


def benchmark_markdown(results: list[dict[str, Any]], plots: dict[str, dict[str, str]]) -> str:
    """The page body: one section per result, newest first, with the plots made for it."""
    if not results:
        return (
            "No results in `bench-results/` when this site was built: run `make bench` (and `make gpu-check` "
            "on a GPU machine), then `make docs`."
        )
    return "\n".join(result_section(result, plots.get(result["_file"], {})) for result in results)


def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    return buffer.getvalue()


def stats_plot(result: dict[str, Any]) -> str | None:
    """Median, range and every run of each repeated measurement, one small panel per measurement."""
    stats = [(key, value) for key, value in flatten(result) if is_stat(value)]
    for key, rows in row_lists(result).items():
        for index, row in enumerate(rows):
            label = row.get("mode") or row.get("corpus") or str(index)
            stats += [(f"{key}[{label}].{name}", value) for name, value in flatten(row) if is_stat(value)]
    if not stats:
        return None
    columns = min(3, len(stats))
    rows_count = math.ceil(len(stats) / columns)
    figure = Figure(figsize=(3.2 * columns, 1.5 * rows_count))
    axes = figure.subplots(rows_count, columns, squeeze=False)
    for axis, (name, stat) in zip(axes.flat, stats, strict=False):
        low, high = stat.get("min", stat["median"]), stat.get("max", stat["median"])
        axis.barh([0], [stat["median"]], color="#4a6fa5", height=0.5)
        axis.errorbar(
            [stat["median"]], [0], xerr=[[stat["median"] - low], [high - stat["median"]]], color="k"
        )
        values = stat.get("values") or []
        axis.plot(values, [0] * len(values), "o", color="#c58a1a", markersize=3)
        axis.set_yticks([])
        axis.set_title(name, fontsize=8)
        axis.tick_params(labelsize=7)
    for axis in list(axes.flat)[len(stats) :]:
        axis.set_visible(False)
    figure.tight_layout()
    return _svg(figure)


def bandwidth_plot(result: dict[str, Any]) -> str | None:
    """Bus bandwidth against message size, for results with rows of ``size_bytes`` and ``busbw``."""
    rows = [
        row for row in result.get("rows", []) if isinstance(row, dict) and {"size_bytes", "busbw"} <= set(row)
    ]
    if not rows:
        return None
    figure = Figure(figsize=(6, 3))
    axis = figure.subplots()
    axis.plot([r["size_bytes"] for r in rows], [r["busbw"] for r in rows], "o-", color="#4a6fa5")
    axis.set_xscale("log", base=2)
    axis.set_xlabel("message size (bytes)")
    unit = result.get("units", {}).get("busbw", "GB/s")
    axis.set_ylabel(f"bus bandwidth ({unit.split(',')[0]})")
    axis.grid(True, alpha=0.3)
    return _svg(figure)


def benchmark_plots(results: list[dict[str, Any]]) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """(per result file: plot file name -> caption) and (plot file name -> SVG text)."""
    captions: dict[str, dict[str, str]] = {}
    svgs: dict[str, str] = {}
    for result in results:
        stem = Path(result["_file"]).stem
        made = {}
        for kind, maker, caption in (
            ("busbw", bandwidth_plot, f"{result['benchmark']}: bus bandwidth by message size"),
            ("stats", stats_plot, f"{result['benchmark']}: median, range and runs of each measurement"),
        ):
            svg = maker(result)
            if svg is not None:
                svgs[f"{stem}-{kind}.svg"] = svg
                made[f"{stem}-{kind}.svg"] = caption
        captions[result["_file"]] = made
    return captions, svgs


# --- Source views ------------------------------------------------------------------------------------

SOURCE_SUFFIXES = {
    ".py", ".sh", ".sbatch", ".yaml", ".yml", ".json", ".toml", ".txt", ".cfg", ".conf", ".env", ".dot",
    ".j2", ".hcl", ".jsonl", ".csv", ".ini", ".template", ".yaml-template", ".eksctl-template", ".tpl",
}  # fmt: skip
SOURCE_NAMES = {"Makefile", "Dockerfile", "Containerfile"}


def is_source_file(src_uri: str) -> bool:
    """A text file a page may link to, shown as text on the site."""
    name = posixpath.basename(src_uri)
    suffix = posixpath.splitext(name)[1]
    return name in SOURCE_NAMES or name.endswith("Dockerfile") or suffix in SOURCE_SUFFIXES


HREF = re.compile(r'href="([^"#?:]+)((?:#[^"]*)?)"')


def rewrite_source_links(page_html: str, page_dest: str, sources: set[str]) -> tuple[str, set[str]]:
    """``page_html`` with links to files in ``sources`` (site paths) pointing at their ``.html`` views;
    also the site paths it linked."""
    base = posixpath.dirname(page_dest)
    linked: set[str] = set()

    def replace(match: re.Match) -> str:
        href, anchor = match.groups()
        target = posixpath.normpath(posixpath.join(base, href))
        if target not in sources:
            return match.group(0)
        linked.add(target)
        return f'href="{href}.html{anchor}"'

    return HREF.sub(replace, page_html), linked


def source_view_html(site_path: str, text: str, site_name: str) -> str:
    """A standalone page showing one source file, highlighted, with a link to the raw file."""
    name = posixpath.basename(site_path)
    try:
        lexer = get_lexer_for_filename("Makefile" if name == "Makefile" else name, text)
    except ClassNotFound:
        lexer = TextLexer()
    body = highlight(text, lexer, HtmlFormatter(noclasses=True, nowrap=False, style="default"))
    depth = site_path.count("/")
    home = "../" * depth or "./"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(site_path)} - {html.escape(site_name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 0; }}
header {{ padding: .6rem 1rem; background: #4051b5; color: #fff; }}
header a {{ color: #fff; }}
main {{ padding: 0 1rem 1rem; }}
.highlight pre {{ overflow-x: auto; padding: .8rem; background: #f8f8f8; font-size: .85rem; }}
</style></head>
<body><header><a href="{home}">{html.escape(site_name)}</a> / <code>{html.escape(site_path)}</code>
(<a href="{html.escape(name)}">raw</a>)</header>
<main>{body}</main></body></html>
"""
