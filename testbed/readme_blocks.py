"""The census of README shell blocks: each one is run by a test or says why it cannot be.

A fenced ``bash``, ``sh``, ``console`` or ``shell`` block is **executed** when the line above it is
``<!-- walkthrough: NAME -->`` and some test file calls ``run_walkthrough(<that README>, "NAME", ...)``
(found by reading the tests' source: the README argument is evaluated from the module's simple path
assignments, ``Path(__file__).resolve().parents[1] / "README.md"`` and the like). A block whose step
needs the cloud says what stands in for it, ``<!-- walkthrough: NAME; stand-in: kubectl validates each
manifest against the pinned CRDs -->``: it counts as executed, and the census line gives how many of the
executed blocks ran with stand-ins (``testbed.standins``). A block is
**illustrative** when the line above it is ``<!-- illustrative: reason -->`` with a reason. Anything
else is an offender, named by ``file:line``. ``python -m testbed.readme_blocks`` prints the census.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from testbed.walkthrough import MARKER_COMMENT, REPO_ROOT, repository_files

SHELL_LANGUAGES = ("bash", "sh", "console", "shell")
RUNNABLE_LANGUAGES = ("bash", "sh", "console")  # what testbed.walkthrough extracts
WALKTHROUGH_MARKER = re.compile(MARKER_COMMENT)  # group 1 the name, group 2 the stand-in note or None
ILLUSTRATIVE_MARKER = re.compile(r"<!--\s*illustrative:\s*\S.*?-->")
# The functions that run a README's walkthrough (the last two with stand-ins, testbed/standins.py).
RUNNERS = ("run_walkthrough", "run_with_standins", "run_on_cluster", "run_on_fsx")
EXCLUDED = (".nox/", ".venv/", "site/", "node_modules/")
# Tests of the runner itself, on READMEs they write at run time: no repository README is run there.
RUNNER_TESTS = ("testbed/tests/test_walkthrough_serve.py",)
_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")


@dataclass(frozen=True)
class ShellBlock:
    readme: str  # relative to the repository root
    line: int  # 1-based line of the opening fence
    language: str
    marker: str  # the HTML comment on the line above (blank lines skipped), or ""

    @property
    def where(self) -> str:
        return f"{self.readme}:{self.line}"


def shell_blocks(text: str, readme: str = "README.md") -> list[ShellBlock]:
    """The fenced shell blocks of a Markdown text, outside any other fence, with their markers."""
    blocks = []
    lines = text.splitlines()
    fence = None  # the opening fence's characters while inside a block
    for number, line in enumerate(lines, start=1):
        match = _FENCE.match(line)
        if fence is not None:
            if match and match[2][0] == fence[0] and len(match[2]) >= len(fence) and not match[3]:
                fence = None
            continue
        if not match:
            continue
        fence = match[2]
        if match[3] in SHELL_LANGUAGES:
            above = [previous.strip() for previous in lines[: number - 1] if previous.strip()]
            marker = above[-1] if above and above[-1].startswith("<!--") else ""
            blocks.append(ShellBlock(readme, number, match[3], marker))
    return blocks


def readmes() -> list[str]:
    """Every README.md git tracks or would track (not ignored), outside build and venv folders."""
    found = repository_files("README.md", "**/README.md")
    return sorted(str(p) for p in found if not str(p).startswith(EXCLUDED))


def _module_file(module: str, near: Path) -> Path | None:
    """The file of a module a test imports by a bare name (a sibling, or a module of a folder above)."""
    for folder in [near.parent, *near.parent.parents]:
        for candidate in (folder / f"{module}.py", folder / module / "__init__.py"):
            if candidate.is_file():
                return candidate
        if folder == REPO_ROOT:
            break
    return None


@dataclass
class _Module:
    """A test module's simple assignments and imports, to evaluate path expressions in."""

    path: Path
    names: dict[str, ast.AST]
    imported: dict[str, tuple[str, str | None]]  # local name -> (module, attribute or None)

    @classmethod
    def read(cls, path: Path, tree: ast.AST | None = None) -> _Module:
        tree = tree or ast.parse(path.read_text(encoding="utf-8"))
        names: dict[str, ast.AST] = {}
        imported: dict[str, tuple[str, str | None]] = {}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                names[node.targets[0].id] = node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
                names[node.target.id] = node.value
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    imported[alias.asname or alias.name] = (node.module, alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    imported[alias.asname or alias.name] = (alias.name, None)
        return cls(path, names, imported)

    def evaluate(self, node: ast.AST, depth: int = 0) -> Path | None:  # noqa: PLR0911, PLR0912 (one case per node kind)
        """A path expression (``Path(__file__).resolve().parents[1] / "README.md"``), or None."""
        if depth > 20:
            return None
        again = lambda n: self.evaluate(n, depth + 1)  # noqa: E731
        if isinstance(node, ast.Name):
            if node.id == "__file__":
                return self.path
            if node.id in self.names:
                return again(self.names[node.id])
            if node.id in self.imported:
                module, attribute = self.imported[node.id]
                if module == "testbed.walkthrough" and attribute == "REPO_ROOT":
                    return REPO_ROOT
                found = _module_file(module, self.path)
                if found and attribute:
                    other = _Module.read(found)
                    return other.evaluate(ast.Name(attribute), depth + 1)
            return None
        if isinstance(node, ast.Attribute) and node.attr == "__file__" and isinstance(node.value, ast.Name):
            module = self.imported.get(node.value.id, (node.value.id, None))
            return _module_file(module[0] if module[1] is None else module[1], self.path)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return Path(node.value)
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "Path" and len(node.args) == 1:
                return again(node.args[0])
            if isinstance(func, ast.Attribute) and func.attr in ("resolve", "absolute") and not node.args:
                return again(func.value)
            return None
        if isinstance(node, ast.Attribute) and node.attr == "parent":
            base = again(node.value)
            return base.parent if base else None
        parents = isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute)
        if parents and node.value.attr == "parents" and isinstance(node.slice, ast.Constant):
            base = again(node.value.value)
            return base.parents[node.slice.value] if base else None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            left, right = again(node.left), again(node.right)
            if left is None or right is None:
                return None
            return (left if left.is_absolute() else REPO_ROOT / left) / right
        return None


def walkthrough_calls(source: str, test_file: Path) -> tuple[set[tuple[str, str]], list[str]]:
    """The (README, walkthrough name) pairs a test module runs, and the calls it could not read."""
    tree = ast.parse(source)
    module = _Module.read(test_file, tree)
    runs, unread = set(), []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = (
            func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        )
        if called not in RUNNERS:
            continue
        args = list(node.args) + [k.value for k in node.keywords if k.arg in ("readme", "name")]
        readme = module.evaluate(args[0]) if args else None
        name = args[1] if len(args) > 1 else None
        where = f"{test_file.relative_to(REPO_ROOT)}:{node.lineno}"
        if readme is None or not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
            unread.append(where)
            continue
        path = readme if readme.is_absolute() else REPO_ROOT / readme
        try:
            relative = str(path.resolve().relative_to(REPO_ROOT))
        except ValueError:
            unread.append(where)
            continue
        runs.add((relative, name.value))
    return runs, unread


@cache
def walkthroughs_run() -> tuple[frozenset[tuple[str, str]], tuple[str, ...]]:
    """Every (README, walkthrough) some test runs, over every test module of the repository."""
    runs: set[tuple[str, str]] = set()
    unread: list[str] = []
    for relative in repository_files("test_*.py", "**/test_*.py"):
        if str(relative).startswith(EXCLUDED) or str(relative) in RUNNER_TESTS:
            continue
        path = REPO_ROOT / relative
        source = path.read_text(encoding="utf-8")
        if not any(runner in source for runner in RUNNERS):
            continue
        found, missed = walkthrough_calls(source, path)
        runs |= found
        unread += missed
    return frozenset(runs), tuple(unread)


@dataclass
class Census:
    executed: list[ShellBlock]
    illustrative: list[ShellBlock]
    offenders: list[str]  # "file:line: what is wrong"

    @property
    def total(self) -> int:
        return len(self.executed) + len(self.illustrative) + len(self.offenders)

    @property
    def executed_pct(self) -> float:
        return 100 * len(self.executed) / self.total if self.total else 100.0

    @property
    def with_standins(self) -> list[ShellBlock]:
        """The executed blocks whose marker names a stand-in for the cloud."""
        return [block for block in self.executed if WALKTHROUGH_MARKER.fullmatch(block.marker)[2]]

    def line(self) -> str:
        return (
            f"README shell blocks: {self.total}, executed {len(self.executed)} "
            f"({len(self.with_standins)} with stand-ins), illustrative {len(self.illustrative)}"
        )


def classify(blocks: list[ShellBlock], runs: frozenset[tuple[str, str]] | set) -> Census:
    census = Census([], [], [])
    for block in blocks:
        walkthrough = WALKTHROUGH_MARKER.fullmatch(block.marker)
        if walkthrough:
            if block.language not in RUNNABLE_LANGUAGES:
                census.offenders.append(
                    f"{block.where}: walkthrough '{walkthrough[1]}' is a ```{block.language} block, which "
                    f"the walkthrough runner does not read; write ```bash"
                )
            elif (block.readme, walkthrough[1]) in runs:
                census.executed.append(block)
            else:
                census.offenders.append(
                    f"{block.where}: walkthrough '{walkthrough[1]}' is run by no test; call "
                    f'run_walkthrough(<{block.readme}>, "{walkthrough[1]}", ...) (or run_with_standins) in a '
                    "test, or mark the block <!-- illustrative: why it cannot run here -->"
                )
        elif ILLUSTRATIVE_MARKER.fullmatch(block.marker):
            census.illustrative.append(block)
        else:
            census.offenders.append(
                f"{block.where}: unmarked ```{block.language} block; put <!-- walkthrough: NAME --> (and run "
                "it in a test) or <!-- illustrative: why it cannot run here --> on the line above"
            )
    return census


def census() -> Census:
    """Every README shell block of the repository, classified."""
    blocks = [
        block
        for readme in readmes()
        for block in shell_blocks((REPO_ROOT / readme).read_text(encoding="utf-8"), readme)
    ]
    runs, _ = walkthroughs_run()
    return classify(blocks, runs)


def main() -> int:
    result = census()
    per_readme = Counter(block.readme for block in result.executed)
    totals = Counter(block.readme for block in result.executed + result.illustrative)
    totals.update(offender.split(":", 1)[0] for offender in result.offenders)
    for readme in sorted(totals):
        print(f"  {readme}: {per_readme[readme]} of {totals[readme]} executed")
    for offender in result.offenders:
        print(offender)
    print(f"{result.line()} ({result.executed_pct:.0f}% executed)")
    return 1 if result.offenders else 0


if __name__ == "__main__":
    sys.exit(main())
