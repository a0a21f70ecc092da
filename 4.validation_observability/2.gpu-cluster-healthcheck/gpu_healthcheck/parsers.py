"""Parsers for what the health checks read: nvidia-smi, DCGM, kernel log Xid lines, fi_info, fi_pingpong.

Each takes the text a tool printed (recorded outputs in tests/fixtures are the reference) and returns
plain data. Unreadable input raises ParseError naming what was expected, never a silent empty result.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass

_NOT_AVAILABLE = {"N/A", "[N/A]", "[Not Supported]", "Not Supported", "[Unknown Error]", ""}
_GPU_SECTION = re.compile(r"^GPU (?P<bus>[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f])\s*$")
_XID = re.compile(r"NVRM: Xid \(PCI:(?P<pci>[0-9A-Fa-f:.]+)\): (?P<xid>\d+),\s*(?P<message>.*)$")
_KERNEL_TIME = re.compile(r"^\[\s*(?P<time>[^\]]+)\]\s*")
_TOPO_LINK = re.compile(r"^(X|NV\d+|SYS|NODE|PHB|PXB|PIX|SOC|PHB)$")


class ParseError(ValueError):
    """Output that is not what the command prints; the message names the command."""


def value_or_none(text: str) -> str | None:
    """nvidia-smi's 'N/A', '[N/A]', '[Not Supported]' as None, anything else stripped."""
    text = text.strip()
    return None if text in _NOT_AVAILABLE else text


# -- nvidia-smi --query-gpu=... --format=csv ------------------------------------------------------


def parse_query_csv(text: str) -> list[dict[str, str | None]]:
    """Rows of ``nvidia-smi --query-gpu=... --format=csv`` keyed by field name (units stripped)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ParseError("nvidia-smi --query-gpu printed nothing; run it with --format=csv")
    reader = csv.reader(io.StringIO("\n".join(lines)), skipinitialspace=True)
    header = [re.sub(r"\s*\[.*\]$", "", name.strip()) for name in next(reader)]
    rows = []
    for fields in reader:
        if len(fields) != len(header):
            raise ParseError(
                f"nvidia-smi --query-gpu row {fields!r} has {len(fields)} fields, header {len(header)}"
            )
        rows.append({name: value_or_none(value) for name, value in zip(header, fields, strict=True)})
    return rows


# -- nvidia-smi -q ---------------------------------------------------------------------------------


def parse_smi_query(text: str) -> dict[str, dict[str, str | None]]:
    """``nvidia-smi -q [-d ...]`` as {bus id: {"Section/Sub/Key": value}}, nesting from indentation."""
    gpus: dict[str, dict[str, str | None]] = {}
    current: dict[str, str | None] | None = None
    stack: list[tuple[int, str]] = []
    for raw in text.splitlines():
        if match := _GPU_SECTION.match(raw):
            current, stack = gpus.setdefault(match["bus"].upper(), {}), []
            continue
        if current is None or not raw.strip():
            continue
        indent = len(raw) - len(raw.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key, sep, value = raw.strip().partition(":")
        key = key.strip()
        path = "/".join([*(name for _, name in stack), key])
        if sep and value.strip():
            current[path] = value_or_none(value)
        else:
            stack.append((indent, key))
    if not gpus:
        raise ParseError("nvidia-smi -q output has no 'GPU 00000000:..' section")
    return gpus


def count(value: str | None) -> int:
    """An nvidia-smi counter ('0', '12', 'N/A') as an int (N/A -> 0)."""
    if value is None:
        return 0
    match = re.match(r"\d+", value)
    return int(match.group()) if match else 0


# -- nvidia-smi topo -m ----------------------------------------------------------------------------


def parse_topology(text: str) -> dict[str, dict[str, str]]:
    """The GPU-to-GPU part of ``nvidia-smi topo -m``: {GPU0: {GPU1: 'NV18', ...}, ...}."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # nvidia-smi underlines the header on a terminal
    lines = [line for line in text.splitlines() if line.strip()]
    header = next((line.split() for line in lines if line.split()[:1] == ["GPU0"]), None)
    if header is None:
        raise ParseError("nvidia-smi topo -m output has no 'GPU0 GPU1 ...' header line")
    gpus = [name for name in header if re.fullmatch(r"GPU\d+", name)]
    matrix: dict[str, dict[str, str]] = {}
    for line in lines:
        tokens = line.split()
        if tokens and tokens[0] in gpus and len(tokens) > len(gpus):
            links = tokens[1 : 1 + len(gpus)]
            if all(_TOPO_LINK.match(link) for link in links):
                matrix[tokens[0]] = dict(zip(gpus, links, strict=True))
    if set(matrix) != set(gpus):
        raise ParseError(f"nvidia-smi topo -m lists {len(gpus)} GPUs but {len(matrix)} matrix rows")
    return matrix


# -- dcgmi diag -j ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DcgmResult:
    """One test result on one GPU (or on all, for the deployment tests)."""

    category: str
    test: str
    gpus: str
    status: str  # Pass, Fail, Warn, Skip (DCGM's capitalisation varies; normalised)
    warnings: tuple[str, ...]


def _warning_text(item: object) -> str:
    if isinstance(item, dict):  # DCGM 3.x: {"warning": "...", "error_id": N, ...}
        return str(item.get("warning") or item.get("message") or item)
    return str(item)


def parse_dcgm_diag(text: str) -> list[DcgmResult]:
    """Every result of ``dcgmi diag -r N -j`` (DCGM 2.x-4.x layouts; text before the JSON ignored)."""
    start = text.find("{")
    try:
        document = json.loads(text[start:]) if start >= 0 else None
    except json.JSONDecodeError as exc:
        raise ParseError(f"dcgmi diag -j output is not JSON ({exc.msg} at char {exc.pos})") from None
    if not isinstance(document, dict):
        raise ParseError("dcgmi diag -j printed no JSON object")
    body = document.get("DCGM GPU Diagnostic") or document.get("DCGM Diagnostic") or {}
    categories = body.get("test_categories")
    if not isinstance(categories, list):
        raise ParseError("dcgmi diag -j output has no test_categories: the diagnostic did not run")
    results = []
    for category in categories:
        for test in (category or {}).get("tests") or []:
            for result in (test or {}).get("results") or []:
                status = str(result.get("status", "")).strip().capitalize()
                warnings = tuple(_warning_text(item) for item in result.get("warnings") or [])
                gpus = str(result.get("gpu_ids", result.get("gpu_id", "all")))
                results.append(
                    DcgmResult(category.get("category", "?"), test.get("name", "?"), gpus, status, warnings)
                )
    return results


# -- kernel log ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class XidEvent:
    """One ``NVRM: Xid (PCI:0000:53:00): 79, pid=..., ...`` line."""

    pci: str
    xid: int
    message: str
    time: str


def parse_xid_lines(text: str) -> list[XidEvent]:
    """Xid events of a kernel log (``dmesg``, ``journalctl -k``, /var/log/kern.log)."""
    events = []
    for line in text.splitlines():
        match = _XID.search(line)
        if match:
            time = _KERNEL_TIME.match(line)
            events.append(
                XidEvent(
                    match["pci"], int(match["xid"]), match["message"].strip(), time["time"] if time else ""
                )
            )
    return events


# -- libfabric -------------------------------------------------------------------------------------


def parse_fi_info_domains(text: str) -> list[str]:
    """Distinct EFA devices in ``fi_info -p efa [-t FI_EP_RDM]``: the ``<nic>-rdm`` domains, sorted.

    Recent libfabric lists each device twice (fabrics ``efa`` and ``efa-direct``) and adds ``-dgrm``
    domains; a device counts once.
    """
    domains = set()
    provider = None
    for line in text.splitlines():
        key, _, value = line.strip().partition(":")
        if key == "provider":
            provider = value.strip()
        elif key == "domain" and provider == "efa":
            domains.add(re.sub(r"-(rdm|dgrm)$", "", value.strip()))
    return sorted(domains)


_PINGPONG_SIZE = re.compile(r"^(?P<number>\d+)(?P<unit>[kmg]?)$")
_PINGPONG_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_pingpong(text: str) -> list[dict[str, float]]:
    """The result rows of ``fi_pingpong`` (bytes, MB/sec, usec/xfer); sizes like ``64k`` expanded."""
    rows = []
    for line in text.splitlines():
        tokens = line.split()
        size = _PINGPONG_SIZE.match(tokens[0]) if tokens else None
        if size is None or len(tokens) < 8 or not tokens[2].startswith("="):
            continue
        try:
            mb_per_s, usec = float(tokens[5]), float(tokens[6])
        except ValueError:
            continue
        nbytes = int(size["number"]) * _PINGPONG_UNITS[size["unit"]]
        rows.append({"bytes": float(nbytes), "mb_per_s": mb_per_s, "usec_per_xfer": usec})
    return rows
