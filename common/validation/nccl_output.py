"""Parse nccl-tests output (``all_reduce_perf`` and friends) as it lands in real logs, in every format.

The table is read by its column header, never by position. The formats, by tag of NVIDIA/nccl-tests
(``src/common.cu``, ``src/util.cu`` and each test's ``print_header``):

- v2.0.0 to v2.11.0: ``size count type [redop] [root] time algbw busbw error`` and the same four again
  in-place. ``redop``/``root`` only where the collective takes them (sendrecv, all_gather: neither;
  all_reduce: no root). ``error`` is the largest absolute difference from the expected result, printed
  ``%5.0le`` (``2e-07``): a float, never a count.
- v2.13.0 on: every collective prints ``redop`` and ``root`` (``none``/``-1`` where unused) and ``#wrong``,
  the count of wrong elements (``%g``); ``N/A`` where nothing was checked (``-c 0``, in-place sendrecv
  and alltoall). ``-C 1`` (v2.13.4 on) prints ``cputime`` for ``time``; ``-S 1`` (v2.17.6 on) adds a
  trailing ``timestamp`` (``%Y-%m-%d %H:%M:%S``); ``-I 1`` (v2.19.2 on) adds ``i_min i_max i_p99 i_cv%``
  after each ``#wrong``.
- ``-J FILE.json`` (v2.17.3 on) writes the same results as JSON: ``parse_json``, or ``parse`` on a text
  that starts with ``{``. ``with_json`` keeps a log's NCCL lines and takes the numbers from its JSON.

An old ``error`` is judged as nccl-tests < 2.13 judged it (``CheckData``): out of bounds above
``DeltaMaxValue(type) * (ranks - 1)``. The printed value keeps one digit; a value whose rounding
straddles the limit stays undecided (``wrong`` None) and nccl-tests' own footer decides.

Also handled: rank prefixes that launchers add (``srun -l``: ``0: ``; Open MPI ``--tag-output``:
``[1,0]<stdout>:``), NCCL INFO/WARN lines mixed into the table, the footer (``# Out of bounds values :
N OK``, ``# Avg bus bandwidth : X``) and its absence (a truncated run). Pure standard library. The GPU
health check and the NCCL benchmark tools each carry a copy, written from common/validation/ by
common/sync.py.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import PurePath

_PREFIX = re.compile(r"^(?:\[\d+,\d+\]<std(?:out|err)>:|\s*\d+:(?=[ #]|$) ?)")
_DEVICE = re.compile(
    r"^#\s*Rank\s+(?P<rank>\d+)\s+(?:Group\s+\d+\s+)?Pid\s+(?P<pid>\d+)\s+on\s+(?P<host>\S+)\s+device\s+"
    r"(?P<device>\S+)\s+\[(?P<bus>[^\]]*)\]\s+(?P<name>.*)$"
)
_VERSION = re.compile(r"^# nccl-tests version (?P<version>\S+)(?:.*nccl-library=(?P<library>\d+))?")
_STARTING = re.compile(r"^# Collective test starting: (?P<test>\S+)")
_OUT_OF_BOUNDS = re.compile(r"^# Out of bounds values\s*:\s*(?P<count>\d+)\s+(?P<verdict>OK|FAILED)")
_AVG_BUSBW = re.compile(r"^# Avg bus bandwidth\s*:\s*(?P<value>[-+]?(?:nan|inf)|[-+0-9.eE]+)")
_JSON_WRITTEN = re.compile(r"^# Writing JSON output to (?P<path>.+)$")
_NCCL_VERSION = re.compile(r"(?:^|NCCL INFO )NCCL version (?P<version>\d+\.\d+\.\d+)")
_NETWORK = re.compile(r"NCCL INFO Using network (?P<net>.+)$")  # Socket, IB, Libfabric, AWS Libfabric
_ERRORS = ("Test NCCL failure", "Test CUDA failure", "NCCL WARN", "Test failure")
_LAST_ERROR = "# error: "  # v2.17 on: ncclGetLastError() after the footer (the last NCCL WARN)
MAX_ERRORS = 10

# The leading columns, in the order nccl-tests prints them; redop and root are optional before v2.13.
HEAD_COLUMNS = ("size", "count", "type", "redop", "root")
# One group (out-of-place, then in-place): the names nccl-tests printed -> the field they fill.
GROUP_COLUMNS = {"time": "time", "cputime": "time", "algbw": "algbw", "busbw": "busbw"}
CHECK_COLUMNS = {"#wrong": "wrong", "error": "error"}
TIMESTAMP = "timestamp"  # -S 1: two words per row ("2025-06-01 10:00:00")
# nccl-tests < 2.13, DeltaMaxValue(type): the largest error per rank beyond the first; 1e-200 (exact)
# for the integer types of NCCL 2 (int8 ... uint64) and NCCL 1 (char, int).
DELTA_MAX = {"half": 1e-2, "bfloat16": 1e-2, "float": 1e-5, "double": 1e-12} | dict.fromkeys(
    ("int8", "uint8", "int32", "uint32", "int64", "uint64", "char", "int"), 1e-200
)
JSON_FILE_VERSION = 1  # src/util.cu JSON_FILE_VERSION at v2.17.9


class NcclOutputError(ValueError):
    """Output that this parser cannot read as one nccl-tests run; the message says why and what to pass."""


@dataclass(frozen=True)
class Measurement:
    """One column group (out-of-place or in-place) of a row; None where nccl-tests printed N/A.

    ``wrong`` is the wrong-element count (v2.13 on); for an old ``error`` it is 1 when out of bounds, 0
    when within, None when undecided. None with ``error`` None means not checked.
    """

    time_us: float | None
    algbw: float | None
    busbw: float | None
    wrong: int | None
    error: float | None = None


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
    timestamp: str | None = None

    @property
    def measurements(self) -> tuple[Measurement, ...]:
        return (self.out_of_place,) if self.in_place is None else (self.out_of_place, self.in_place)

    @property
    def busbw(self) -> float | None:
        """The better of the out-of-place and in-place bus bandwidths (GB/s)."""
        values = [m.busbw for m in self.measurements if m.busbw is not None]
        return max(values) if values else None

    @property
    def wrong(self) -> int:
        """Wrong elements in both groups (N/A and undecided count as 0: see ``checked``)."""
        return sum(m.wrong or 0 for m in self.measurements)

    @property
    def checked(self) -> bool:
        """True when at least one group was checked and compared."""
        return any(m.wrong is not None for m in self.measurements)


@dataclass(frozen=True)
class Device:
    """A ``#  Rank N ... on HOST device D [BUS] NAME`` header line."""

    rank: int
    host: str
    device: str
    bus_id: str
    name: str
    pid: int = 0


@dataclass(frozen=True)
class Layout:
    """The table's columns, as the header line named them."""

    head: tuple[str, ...]
    groups: tuple[tuple[str, ...], ...]
    timestamp: bool = False

    @property
    def width(self) -> int:
        """Columns in a row (the timestamp counts as one)."""
        return len(self.head) + sum(len(group) for group in self.groups) + self.timestamp

    @property
    def error_column(self) -> bool:
        return any("error" in group for group in self.groups)


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
    columns: list[str] = field(default_factory=list)
    unread: int = 0
    first_unread: str | None = None
    json_path: str | None = None
    source: str = "text"

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
    def error_column(self) -> bool:
        """True for the tables of nccl-tests < 2.13 (``error`` instead of ``#wrong``)."""
        return "error" in self.columns

    def measurements(self) -> Iterator[Measurement]:
        for row in self.rows:
            yield from row.measurements

    @property
    def wrong(self) -> int:
        """Wrong elements (old tables: out-of-bounds results) over all rows and groups."""
        return sum(row.wrong for row in self.rows)

    @property
    def checked(self) -> int:
        """Groups that were checked and compared (not N/A, not undecided)."""
        return sum(m.wrong is not None for m in self.measurements())

    @property
    def undecided(self) -> int:
        """Old ``error`` values that could not be compared here (rank count unknown, or rounding)."""
        return sum(m.error is not None and m.wrong is None for m in self.measurements())

    def peak_busbw(self, min_bytes: int = 0) -> tuple[float, int] | None:
        """(best busbw, its message size) over rows of at least ``min_bytes``; None if there are none."""
        candidates = [(row.busbw, row.size_bytes) for row in self.rows if row.size_bytes >= min_bytes]
        candidates = [(busbw, size) for busbw, size in candidates if busbw is not None]
        return max(candidates) if candidates else None

    def to_dict(self) -> dict:
        """Plain data for JSON (rows, devices and the derived fields)."""
        data = asdict(self)
        data |= {
            "complete": self.complete,
            "ranks": self.ranks,
            "nodes": self.nodes,
            "wrong": self.wrong,
            "checked": self.checked,
            "undecided": self.undecided,
        }
        return data


def strip_prefix(line: str) -> str:
    """The line without an ``srun -l`` (``0: ``) or Open MPI (``[1,0]<stdout>:``) rank prefix."""
    return _PREFIX.sub("", line, count=1)


# -- the column header -----------------------------------------------------------------------------


def is_column_header(line: str) -> bool:
    """``#  size  count  type ...`` (or nccl-tests 1.x's ``#  bytes  N  type ...``)."""
    words = line.lstrip("#").split()[:2]
    return words in (["size", "count"], ["bytes", "N"])


def _shown(line: str) -> str:
    """A header line for a message: its words, one space apart."""
    return " ".join(line.split())


def _split_groups(names: list[str], line: str) -> list[tuple[str, ...]]:
    """Cut the names after the head into groups that each start with time/cputime."""
    groups: list[list[str]] = []
    for name in names:
        if name in ("time", "cputime"):
            groups.append([])
        elif not groups:
            raise NcclOutputError(f"column {name!r} before 'time' in the table header {_shown(line)!r}")
        groups[-1].append(name)
    return [tuple(group) for group in groups]


def _check_group(group: tuple[str, ...], line: str) -> None:
    """A group is time, algbw, busbw, then #wrong or error; extra columns (-I 1) may follow."""
    if len(group) < 4 or group[1:3] != ("algbw", "busbw") or group[3] not in CHECK_COLUMNS:
        raise NcclOutputError(
            f"table header {_shown(line)!r} is not time/algbw/busbw/#wrong (or error) per group; "
            "pass the output of nccl-tests 2.0 or later"
        )


def parse_layout(line: str) -> Layout:
    """The columns of a ``#  size  count  type ...`` line; NcclOutputError for a header not understood."""
    names = line.lstrip("#").split()
    timestamp = bool(names) and names[-1] == TIMESTAMP
    names = names[:-1] if timestamp else names
    head = list(itertools.takewhile(HEAD_COLUMNS.__contains__, names))
    if head[:3] != ["size", "count", "type"]:
        raise NcclOutputError(
            f"table header {_shown(line)!r} does not start 'size count type' (nccl-tests 1.x printed "
            "'bytes N type' and time in ms); pass the output of nccl-tests 2.0 or later"
        )
    if head != [name for name in HEAD_COLUMNS if name in head]:
        raise NcclOutputError(f"table header {_shown(line)!r} repeats or swaps redop/root; pass it unedited")
    groups = _split_groups(names[len(head) :], line)
    if len(groups) not in (1, 2):
        raise NcclOutputError(f"table header {_shown(line)!r} has {len(groups)} time groups, not 1 or 2")
    for group in groups:
        _check_group(group, line)
    return Layout(tuple(head), tuple(groups), timestamp)


# -- rows ------------------------------------------------------------------------------------------


def _value(cell: str) -> float | None:
    """A number cell; N/A (and nan/inf, which no measurement is) are None."""
    value = None if cell == "N/A" else float(cell)
    return value if value is not None and math.isfinite(value) else None


def _check_value(cell: str) -> float | None:
    """A #wrong or error cell: N/A is None (not checked); otherwise a finite number >= 0."""
    if cell == "N/A":
        return None
    value = float(cell)
    if not math.isfinite(value) or value < 0:
        raise ValueError(cell)
    return value


def _measurement(names: tuple[str, ...], cells: list[str]) -> Measurement:
    values = dict(zip(names, cells, strict=True))
    time_us = _value(values.get("time", values.get("cputime", "N/A")))
    check = _check_value(values.get("#wrong", values.get("error", "N/A")))
    if "error" in values:
        return Measurement(time_us, _value(values["algbw"]), _value(values["busbw"]), None, check)
    wrong = None if check is None else round(check)  # %g prints 1.04858e+06 from a million
    return Measurement(time_us, _value(values["algbw"]), _value(values["busbw"]), wrong)


def _cells(tokens: list[str], layout: Layout) -> list[str] | None:
    """The row's cells in header order (the timestamp's two words joined), or None if they do not fit."""
    if layout.timestamp:
        if len(tokens) < layout.width:
            return None
        return [*tokens[: layout.width - 1], " ".join(tokens[layout.width - 1 :])]
    return tokens if len(tokens) == layout.width else None


def parse_row(line: str, layout: Layout) -> Row | None:
    """A data row of a table with ``layout``, or None when the line is something else."""
    cells = _cells(line.split(), layout)
    if cells is None or not (cells[0].isdigit() and cells[1].isdigit()):
        return None
    head = dict(zip(layout.head, cells, strict=False))
    position = len(layout.head)
    try:
        groups = []
        for names in layout.groups:
            groups.append(_measurement(names, cells[position : position + len(names)]))
            position += len(names)
        root = int(head.get("root", "-1"))
    except ValueError:
        return None
    timestamp = cells[-1] if layout.timestamp else None
    in_place = groups[1] if len(groups) > 1 else None
    return Row(
        int(cells[0]), int(cells[1]), cells[2], head.get("redop", ""), root, groups[0], in_place, timestamp
    )


def looks_like_row(line: str) -> bool:
    """Two leading integers and more cells: a table row, whether or not it fits the header."""
    tokens = line.split()
    return len(tokens) >= 5 and tokens[0].isdigit() and tokens[1].isdigit()


# -- the old error column --------------------------------------------------------------------------


def error_out_of_bounds(error: float, dtype: str, ranks: int) -> bool | None:
    """nccl-tests < 2.13's verdict on a printed ``error``; None when it cannot be decided from the text.

    nccl-tests counted a result out of bounds when its largest error exceeded ``DeltaMaxValue(type) *
    (ranks - 1)``. It printed one significant digit, so ``1e-05`` stands for 0.5e-05 to 1.5e-05: a
    limit inside that range is undecided. An unknown type or rank count is undecided too.
    """
    delta = DELTA_MAX.get(dtype)
    if delta is None or ranks < 1:
        return None if error else False
    limit = delta * (ranks - 1)
    if error == 0:
        return False
    half_digit = 0.5 * 10 ** math.floor(math.log10(error))
    if error + half_digit <= limit:
        return False
    return True if error - half_digit > limit else None


def _judge_errors(row: Row, ranks: int) -> Row:
    """Fill ``wrong`` of each old ``error`` group: 1 out of bounds, 0 within, None undecided."""

    def judged(m: Measurement | None) -> Measurement | None:
        if m is None or m.error is None:
            return m
        verdict = error_out_of_bounds(m.error, row.dtype, ranks)
        return replace(m, wrong=None if verdict is None else int(verdict))

    return replace(row, out_of_place=judged(row.out_of_place), in_place=judged(row.in_place))


# -- header, footer and log lines ------------------------------------------------------------------


def _library_version(code: object) -> str | None:
    """nccl-tests' ``nccl-library=22903`` -> ``2.29.3``."""
    if code is None or not str(code).isdigit():
        return None
    number = int(str(code))
    return f"{number // 10000}.{number % 10000 // 100}.{number % 100}"


def _device(match: re.Match[str]) -> Device:
    return Device(
        int(match["rank"]),
        match["host"],
        match["device"],
        match["bus"],
        match["name"].strip(),
        int(match["pid"]),
    )


def _header_line(line: str, result: NcclTestsOutput) -> bool:
    """Fill ``result`` from a ``#`` header/footer line; True when the line was one we know."""
    if match := _DEVICE.match(line):
        result.devices.append(_device(match))
    elif match := _VERSION.match(line):
        result.tests_version = match["version"]
        result.nccl_version = result.nccl_version or _library_version(match["library"])
    elif match := _STARTING.match(line):
        result.test = match["test"]
    elif match := _OUT_OF_BOUNDS.match(line):
        result.out_of_bounds = int(match["count"])
    elif match := _AVG_BUSBW.match(line):
        try:
            result.avg_busbw = float(match["value"])
        except ValueError:
            raise NcclOutputError(
                f"the Avg bus bandwidth footer holds {match['value']!r}, not a number"
            ) from None
    elif match := _JSON_WRITTEN.match(line):
        result.json_path = match["path"].strip()
    elif line.startswith(_LAST_ERROR) and len(result.errors) < MAX_ERRORS:
        result.errors.append(line.strip())
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


def _unread(line: str, result: NcclTestsOutput) -> None:
    result.unread += 1
    result.first_unread = result.first_unread or line.strip()


def _table_line(line: str, layout: Layout | None, result: NcclTestsOutput) -> None:
    """A line that is not a ``#`` line: a row of the table, a row that does not fit, or a log line."""
    row = parse_row(line, layout) if layout is not None else None
    if row is not None:
        result.rows.append(_judge_errors(row, result.ranks) if layout.error_column else row)
        return
    if looks_like_row(line):
        _unread(line, result)
    _log_line(line, result)


def parse(text: str) -> NcclTestsOutput:
    """Parse one run's output (text, or the JSON of ``-J``); NcclOutputError for what cannot be one run."""
    if text.lstrip().startswith("{"):
        return parse_json(text)
    result = NcclTestsOutput()
    layout: Layout | None = None
    tables = 0
    for raw in text.splitlines():
        line = strip_prefix(raw).rstrip()
        if is_column_header(line):
            tables += 1
            layout = parse_layout(line)
            result.columns = [*layout.head, *(name for group in layout.groups for name in group)]
        elif line.startswith("#"):
            _header_line(line, result)
        else:
            _table_line(line, layout, result)
    if tables > 1:
        raise NcclOutputError(
            f"{tables} result tables in one log; keep one run per file (one table per rank means "
            "nccl-tests was built without MPI=1 and every rank ran alone)"
        )
    if result.unread and not tables:
        raise NcclOutputError(
            f"{result.unread} table rows but no column header line ('#  size  count  type ...'); "
            "pass the whole nccl-tests output"
        )
    return result


# -- JSON (-J FILE.json, nccl-tests 2.17.3 and later) ----------------------------------------------


def _get(data: object, key: str, kinds: type | tuple[type, ...], where: str, optional: bool = False):
    """``data[key]`` of one of ``kinds`` (bools are not numbers); NcclOutputError naming the field."""
    value = data.get(key) if isinstance(data, dict) else None
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise NcclOutputError(
            f"{where}{key} is {value!r}, not {_kind_name(kinds)}: not a file nccl-tests -J wrote"
        )
    return value


def _kind_name(kinds: type | tuple[type, ...]) -> str:
    names = {
        "int": "an integer",
        "float": "a number",
        "str": "a string",
        "list": "a list",
        "dict": "an object",
    }
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    return " or ".join(dict.fromkeys(names[kind.__name__] for kind in kinds))


def _json_number(data: dict, key: str, where: str) -> float | None:
    """A jsonDouble: a number, null, or the string "nan" (nccl-tests' NaN) -> None."""
    value = data.get(key)
    if value is None or value == "nan":
        return None
    return float(_get(data, key, (int, float), where))


def _json_measurement(data: object, where: str) -> Measurement | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise NcclOutputError(f"{where} is {data!r}, not an object: not a file nccl-tests -J wrote")
    time_key = "cpu_time" if "cpu_time" in data else "time"
    wrong = _json_number(data, "nwrong", f"{where}.")
    if wrong is not None and wrong < 0:
        raise NcclOutputError(f"{where}.nwrong is {wrong}, not a count: not a file nccl-tests -J wrote")
    return Measurement(
        _json_number(data, time_key, f"{where}."),
        _json_number(data, "alg_bw", f"{where}."),
        _json_number(data, "bus_bw", f"{where}."),
        None if wrong is None else round(wrong),
    )


def _json_row(index: int, item: object) -> Row:
    where = f"results[{index}]."
    root = str(_get(item, "root", (str, int), where)).strip()
    if not re.fullmatch(r"-?\d+", root):
        raise NcclOutputError(f"{where}root is {root!r}, not an integer: not a file nccl-tests -J wrote")
    out_of_place = _json_measurement(item.get("out_of_place"), f"{where}out_of_place")
    return Row(
        _get(item, "size", int, where),
        _get(item, "count", int, where),
        _get(item, "type", str, where),
        _get(item, "redop", str, where),
        int(root),
        out_of_place or Measurement(None, None, None, None),
        _json_measurement(item.get("in_place"), f"{where}in_place"),
    )


def _json_device(index: int, item: object) -> Device:
    where = f"config.devices[{index}]."
    return Device(
        _get(item, "rank", int, where),
        _get(item, "hostname", str, where),
        str(_get(item, "device", int, where)),
        _get(item, "device_hex", str, where),
        _get(item, "device_info", str, where),
        _get(item, "pid", int, where),
    )


def _json_footer(data: dict, result: NcclTestsOutput) -> None:
    bounds = _get(data, "out_of_bounds", dict, "", optional=True)
    average = _get(data, "average_bus_bandwidth", dict, "", optional=True)
    result.out_of_bounds = None if bounds is None else _get(bounds, "count", int, "out_of_bounds.")
    if average is not None:  # "nan" as the text footer prints it: the footer is there, its value unknown
        value = _json_number(average, "bandwidth", "average_bus_bandwidth.")
        result.avg_busbw = math.nan if value is None else value
    errors = _get(data, "errors", list, "", optional=True) or []
    result.errors = [str(error).strip() for error in errors if str(error).strip()][:MAX_ERRORS]


def _load_json(text: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NcclOutputError(
            f"not valid JSON ({exc.msg}, line {exc.lineno}); a file cut short means the run died: "
            "judge its text log instead"
        ) from None
    if not isinstance(data, dict) or "results" not in data:
        raise NcclOutputError("JSON without 'results': pass a file written by nccl-tests -J FILE.json")
    if data.get("version") != JSON_FILE_VERSION:
        raise NcclOutputError(
            f"JSON version {data.get('version')!r}; this parser reads version {JSON_FILE_VERSION} "
            "(nccl-tests 2.17.3 and later)"
        )
    return data


def parse_json(text: str) -> NcclTestsOutput:
    """The results file of ``all_reduce_perf -J FILE.json`` (schema: src/util.cu at v2.17.9)."""
    data = _load_json(text)
    args = _get(data, "args", list, "", optional=True) or []
    config = _get(data, "config", dict, "", optional=True) or {}
    devices = _get(config, "devices", list, "config.", optional=True) or []
    result = NcclTestsOutput(
        test=PurePath(str(args[0])).name if args else None,
        nccl_version=_library_version(data.get("nccl_version")),
        devices=[_json_device(i, item) for i, item in enumerate(devices)],
        rows=[_json_row(i, item) for i, item in enumerate(_get(data, "results", list, ""))],
        columns=["size", "count", "type", "redop", "root", "time", "algbw", "busbw", "#wrong"],
        source="json",
    )
    _json_footer(data, result)
    return result


def with_json(text_run: NcclTestsOutput, json_run: NcclTestsOutput, json_name: str) -> NcclTestsOutput:
    """The log's NCCL lines (network, versions, errors) with the JSON's unrounded rows and footer."""
    return replace(
        text_run,
        test=json_run.test or text_run.test,
        nccl_version=text_run.nccl_version or json_run.nccl_version,
        devices=json_run.devices or text_run.devices,
        rows=json_run.rows,
        out_of_bounds=json_run.out_of_bounds,
        avg_busbw=json_run.avg_busbw,
        errors=(text_run.errors + [e for e in json_run.errors if e not in text_run.errors])[:MAX_ERRORS],
        columns=json_run.columns,
        unread=0,
        first_unread=None,
        source=f"JSON {json_name} (with the log's NCCL lines)",
    )
