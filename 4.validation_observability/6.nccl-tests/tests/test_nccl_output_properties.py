"""Property tests of the nccl-tests parser over generated tables and damaged logs.

Hypothesis is not a dependency of this repository, so the cases come from a seeded ``random.Random``:
the same few hundred tables on every run, each in a layout some nccl-tests version printed (old
``error`` with or without redop/root, ``#wrong``, ``cputime``, timestamps, per-iteration columns), under
the launchers' rank prefixes and with NCCL log lines in between.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pytest
from nccl_bench.nccl_output import NcclOutputError, NcclTestsOutput, parse
from nccl_bench.verdict import Thresholds, judge

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PREFIXES = ("", "0: ", "[1,0]<stdout>:")
NOISE = (
    "ip-10-1-0-12:41000:41090 [0] NCCL INFO Channel 03/0 : 0[0] -> 1[1] via P2P/CUMEM",
    "ip-10-1-0-75:41009:41102 [1] NCCL INFO NET/OFI Selected provider is efa",
    "",
)


@dataclass(frozen=True)
class Style:
    """One version's table: which head columns, error or #wrong, time or cputime, extras."""

    redop: bool
    root: bool
    error: bool
    cputime: bool = False
    timestamp: bool = False
    per_iter: bool = False

    def header(self) -> str:
        head = ["size", "count", "type"] + ["redop"] * self.redop + ["root"] * self.root
        group = ["cputime" if self.cputime else "time", "algbw", "busbw", "error" if self.error else "#wrong"]
        group += ["i_min", "i_max", "i_p99", "i_cv%"] * self.per_iter
        return "#  " + "  ".join(head + group + group + ["timestamp"] * self.timestamp)


STYLES = (
    Style(redop=True, root=False, error=True),  # v2.0-v2.11 all_reduce, reduce_scatter
    Style(redop=False, root=False, error=True),  # v2.0-v2.11 sendrecv, all_gather
    Style(redop=True, root=True, error=True),  # v2.0-v2.11 reduce
    Style(redop=False, root=True, error=True),  # v2.0-v2.11 broadcast
    Style(redop=True, root=True, error=False),  # v2.13 on
    Style(redop=True, root=True, error=False, cputime=True, timestamp=True),  # -C 1 -S 1
    Style(redop=True, root=True, error=False, per_iter=True),  # v2.19.2 -I 1
)


def _group(rng: random.Random, style: Style) -> tuple[list[str], str, str | None]:
    """Printed cells of one group, and the busbw and check cells as printed."""
    busbw = rng.choice(["N/A", f"{rng.uniform(0, 999):6.2f}", f"{rng.uniform(1000, 99999):6.0f}"])
    if style.error:
        check = rng.choice(["N/A", "0e+00", f"{rng.choice([1, 2, 5])}e-0{rng.randint(5, 8)}"])
    else:
        check = rng.choice(["N/A", "0", str(rng.randint(1, 9999)), "1.04858e+06"])
    cells = [f"{rng.uniform(1, 99999):7.1f}", f"{rng.uniform(0, 999):6.2f}", busbw, check]
    cells += [f"{rng.uniform(1, 999):7.2f}" for _ in range(4 * style.per_iter)]
    return cells, busbw, check


def _table(rng: random.Random, style: Style) -> tuple[str, list[tuple]]:
    """A log in ``style`` and, per row, (size, count, type, redop, root, busbws, checks) as printed."""
    prefix = rng.choice(PREFIXES)
    ranks = rng.randint(1, 16)
    lines = [f"#  Rank {r:2d} Pid {r:6d} on host{r // 8} device {r % 8:2d} [0x53] GPU" for r in range(ranks)]
    lines.append(style.header())
    expected = []
    for size in (1 << s for s in range(3, rng.randint(4, 30))):
        dtype = rng.choice(["float", "half", "bfloat16", "double", "int32", "uint8"])
        redop, root = rng.choice(["sum", "none", "max"]), rng.choice([-1, 0, 3])
        head = [str(size), str(size // 4), dtype] + [redop] * style.redop + [str(root)] * style.root
        oop, ip = _group(rng, style), _group(rng, style)
        stamp = ["2025-06-02", f"14:03:{rng.randint(10, 59)}"] if style.timestamp else []
        lines.append("   ".join(head + oop[0] + ip[0] + stamp))
        lines += [rng.choice(NOISE) for _ in range(rng.randint(0, 2))]
        expected.append(
            (size, size // 4, dtype, redop if style.redop else "", root if style.root else -1, oop, ip)
        )
    lines += ["# Out of bounds values : 0 OK", "# Avg bus bandwidth    : 1.5 "]
    return "\n".join(prefix + line for line in lines) + "\n", expected


def _number(cell: str) -> float | None:
    return None if cell == "N/A" else float(cell)


@pytest.mark.parametrize("seed", range(40))
def test_every_generated_table_reads_back(seed):
    rng = random.Random(seed)
    for _ in range(8):
        style = rng.choice(STYLES)
        text, expected = _table(rng, style)
        run = parse(text)
        assert run.unread == 0 and len(run.rows) == len(expected), style
        for row, (size, count, dtype, redop, root, oop, ip) in zip(run.rows, expected, strict=True):
            assert (row.size_bytes, row.count, row.dtype, row.redop, row.root) == (
                size,
                count,
                dtype,
                redop,
                root,
            )
            for measured, (_, busbw, check) in ((row.out_of_place, oop), (row.in_place, ip)):
                assert measured.busbw == _number(busbw)
                if style.error:
                    assert measured.error == _number(check)
                    assert measured.wrong in ((None, 0, 1) if check != "N/A" else (None,))
                else:
                    assert measured.wrong == (None if check == "N/A" else round(float(check)))


def _damage(rng: random.Random, text: str) -> str:
    lines = text.splitlines()
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(lines))
        action = rng.choice(["cut", "drop", "double", "splice", "garble"])
        if action == "cut":
            return "\n".join([*lines[:at], lines[at][: rng.randrange(len(lines[at]) + 1)]])
        if action == "drop":
            del lines[at]
        elif action == "double":
            lines.insert(at, lines[at])
        elif action == "splice":
            lines[at] = lines[at][: len(lines[at]) // 2] + rng.choice(lines)[len(lines[at]) // 2 :]
        else:
            chars = list(lines[at] or " ")
            chars[rng.randrange(len(chars))] = rng.choice("0 #-.eN/A\t:x9")
            lines[at] = "".join(chars)
    return "\n".join(lines)


def _damaged_runs(seed: int):
    rng = random.Random(seed)
    names = sorted(p.name for p in FIXTURES.glob("*.log"))
    for _ in range(25):
        try:
            yield parse(_damage(rng, (FIXTURES / rng.choice(names)).read_text()))
        except NcclOutputError:
            continue  # refused with a reason: the one other acceptable outcome


@pytest.mark.parametrize("seed", range(12))
def test_damaged_logs_never_crash_and_never_pass_unread(seed):
    """Any damage gives a parse or NcclOutputError; a verdict is never OK on what it could not read."""
    for run in _damaged_runs(seed):
        assert isinstance(run, NcclTestsOutput)
        verdict = judge(run, Thresholds(min_busbw=1.0))
        if not run.rows or run.unread or not run.complete:
            assert not verdict.ok, (run.unread, len(run.rows), run.complete)
        if run.undecided and run.out_of_bounds is None:
            assert not verdict.ok
