"""Parse nccl-tests output (``all_reduce_perf`` and friends) as it lands in real logs.

Handles the rank prefixes that launchers add (``srun -l``: ``0: ``; Open MPI ``--tag-output``:
``[1,0]<stdout>:``), NCCL INFO/WARN lines mixed into the table, out-of-place and in-place groups,
``N/A`` cells (no validation, or no in-place variant), the footer (``# Out of bounds values : N OK``,
``# Avg bus bandwidth : X``) and its absence (a truncated run). Pure standard library.

The GPU health check and the NCCL benchmark tools each carry an identical copy of this module (a
repository test fails when the copies differ).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

_PREFIX = re.compile(r"^(?:\[\d+,\d+\]<std(?:out|err)>:|\s*\d+:(?=[ #]|$) ?)")
_DEVICE = re.compile(
    r"^#\s*Rank\s+(?P<rank>\d+)\s+(?:Group\s+\d+\s+)?Pid\s+(?P<pid>\d+)\s+on\s+(?P<host>\S+)\s+device\s+"
    r"(?P<device>\S+)\s+\[(?P<bus>[^\]]*)\]\s+(?P<name>.*)$"
)
_VERSION = re.compile(r"^# nccl-tests version (?P<version>\S+)(?:.*nccl-library=(?P<library>\d+))?")
_STARTING = re.compile(r"^# Collective test starting: (?P<test>\S+)")
_OUT_OF_BOUNDS = re.compile(r"^# Out of bounds values\s*:\s*(?P<count>\d+)\s+(?P<verdict>OK|FAILED)")
_AVG_BUSBW = re.compile(r"^# Avg bus bandwidth\s*:\s*(?P<value>[-+0-9.eE]+|nan|inf)")
_COLUMN_HEADER = re.compile(r"^#\s+size\s+count\s+type")
_NCCL_VERSION = re.compile(r"(?:^|NCCL INFO )NCCL version (?P<version>\d+\.\d+\.\d+)")
_NETWORK = re.compile(r"NCCL INFO Using network (?P<net>.+)$")  # Socket, IB, Libfabric, AWS Libfabric
_ERRORS = ("Test NCCL failure", "Test CUDA failure", "NCCL WARN", "Test failure")
MAX_ERRORS = 10


class NcclOutputError(ValueError):
    """Output that cannot be one nccl-tests run (e.g. several runs in one log)."""


@dataclass(frozen=True)
class Measurement:
    """One column group (out-of-place or in-place) of a row; None where nccl-tests printed N/A."""

    time_us: float | None
    algbw: float | None
    busbw: float | None
    wrong: int | None


@dataclass(frozen=True)
class Row:
    """One message size of the sweep."""

    size_bytes: int
    count: int
    dtype: str
    redop: str
    root: int
    out_of_place: Measurement
    in_place: Measurement | None

    @property
    def busbw(self) -> float | None:
        """The better of the out-of-place and in-place bus bandwidths (GB/s)."""
        values = [
            m.busbw for m in (self.out_of_place, self.in_place) if m is not None and m.busbw is not None
        ]
        return max(values) if values else None

    @property
    def wrong(self) -> int:
        """Wrong elements in both groups (N/A counts as 0: validation was off)."""
        return sum(m.wrong or 0 for m in (self.out_of_place, self.in_place) if m is not None)


@dataclass(frozen=True)
class Device:
    """A ``#  Rank N ... on HOST device D [BUS] NAME`` header line."""

    rank: int
    host: str
    device: str
    bus_id: str
    name: str
    pid: int = 0


@dataclass
class NcclTestsOutput:
    """Everything one run printed that a verdict needs."""

    test: str | None = None
    tests_version: str | None = None
    nccl_version: str | None = None
    network: str | None = None
    devices: list[Device] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    out_of_bounds: int | None = None
    avg_busbw: float | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when the footer was printed (the run reached its end)."""
        return self.avg_busbw is not None

    @property
    def ranks(self) -> int:
        return len(self.devices)

    @property
    def nodes(self) -> int:
        """Distinct hosts in the device list (0 when the header was lost)."""
        return len({device.host for device in self.devices})

    @property
    def wrong(self) -> int:
        """Wrong elements over all rows and groups."""
        return sum(row.wrong for row in self.rows)

    def peak_busbw(self, min_bytes: int = 0) -> tuple[float, int] | None:
        """(best busbw, its message size) over rows of at least ``min_bytes``; None if there are none."""
        candidates = [(row.busbw, row.size_bytes) for row in self.rows if row.size_bytes >= min_bytes]
        candidates = [(busbw, size) for busbw, size in candidates if busbw is not None]
        return max(candidates) if candidates else None

    def to_dict(self) -> dict:
        """Plain data for JSON (rows, devices and the derived fields)."""
        data = asdict(self)
        data |= {"complete": self.complete, "ranks": self.ranks, "nodes": self.nodes, "wrong": self.wrong}
        return data


def strip_prefix(line: str) -> str:
    """The line without an ``srun -l`` (``0: ``) or Open MPI (``[1,0]<stdout>:``) rank prefix."""
    return _PREFIX.sub("", line, count=1)


def _number(cell: str) -> float | None:
    return None if cell == "N/A" else float(cell)


def _wrong(cell: str) -> int | None:
    if cell == "N/A":
        return None
    value = float(cell)  # very old nccl-tests printed a float error here
    return int(value) if value.is_integer() and value >= 1 else (0 if value == 0 else 1)


def _measurement(tokens: list[str]) -> Measurement:
    time_us, algbw, busbw, wrong = tokens
    return Measurement(_number(time_us), _number(algbw), _number(busbw), _wrong(wrong))


def parse_row(line: str) -> Row | None:
    """A data row of the table, or None when the line is something else."""
    tokens = line.split()
    if len(tokens) < 8 or not (tokens[0].isdigit() and tokens[1].isdigit()):
        return None
    try:
        if re.fullmatch(r"-?\d+", tokens[3]):  # no redop column (tests without a reduction)
            redop, root, rest = "", int(tokens[3]), tokens[4:]
        else:
            redop, root, rest = tokens[3], int(tokens[4]), tokens[5:]
        if len(rest) not in (4, 8):
            return None
        out_of_place = _measurement(rest[:4])
        in_place = _measurement(rest[4:]) if len(rest) == 8 else None
    except ValueError:
        return None
    return Row(int(tokens[0]), int(tokens[1]), tokens[2], redop, root, out_of_place, in_place)


def _library_version(code: str | None) -> str | None:
    """nccl-tests' ``nccl-library=22903`` -> ``2.29.3``."""
    if not code:
        return None
    number = int(code)
    return f"{number // 10000}.{number % 10000 // 100}.{number % 100}"


def _header_line(line: str, result: NcclTestsOutput) -> bool:
    """Fill ``result`` from a ``#`` header/footer line; True when the line was one we know."""
    if match := _DEVICE.match(line):
        result.devices.append(
            Device(
                int(match["rank"]),
                match["host"],
                match["device"],
                match["bus"],
                match["name"].strip(),
                int(match["pid"]),
            )
        )
    elif match := _VERSION.match(line):
        result.tests_version = match["version"]
        result.nccl_version = result.nccl_version or _library_version(match["library"])
    elif match := _STARTING.match(line):
        result.test = match["test"]
    elif match := _OUT_OF_BOUNDS.match(line):
        result.out_of_bounds = int(match["count"])
    elif match := _AVG_BUSBW.match(line):
        result.avg_busbw = float(match["value"])
    else:
        return False
    return True


def _log_line(line: str, result: NcclTestsOutput) -> None:
    """NCCL INFO/WARN and test failure lines that matter for a verdict."""
    if match := _NCCL_VERSION.search(line):
        result.nccl_version = match["version"]
    if match := _NETWORK.search(line):
        result.network = match["net"].strip()
    if any(marker in line for marker in _ERRORS) and len(result.errors) < MAX_ERRORS:
        result.errors.append(line.strip())


def parse(text: str) -> NcclTestsOutput:
    """Parse one run's output; NcclOutputError when the log holds several result tables."""
    result = NcclTestsOutput()
    tables = 0
    for raw in text.splitlines():
        line = strip_prefix(raw).rstrip()
        if _COLUMN_HEADER.match(line):
            tables += 1
            continue
        if line.startswith("#"):
            _header_line(line, result)
            continue
        row = parse_row(line)
        if row is not None:
            result.rows.append(row)
        else:
            _log_line(line, result)
    if tables > 1:
        raise NcclOutputError(
            f"{tables} result tables in one log; keep one run per file (one table per rank means "
            "nccl-tests was built without MPI=1 and every rank ran alone)"
        )
    return result
