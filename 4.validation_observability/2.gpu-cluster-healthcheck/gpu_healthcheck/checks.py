"""The health checks, each with a stable ID, what it reads, and the action it asks for when it fails.

Severities (actions), least to most: ok, monitor (keep the node, watch it), reboot (drain; a reboot or
GPU reset usually fixes it), isolate (drain; replace or RMA the instance). A check that cannot apply
here (no GPU, no EFA, tool not installed) is SKIP with the reason, never a pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gpu_healthcheck import commands, parsers, xid
from gpu_healthcheck.instance_types import InstanceType
from gpu_healthcheck.nccl_output import NcclOutputError, NcclTestsOutput
from gpu_healthcheck.nccl_output import parse as parse_nccl

SEVERITIES = ("ok", "monitor", "reboot", "isolate")
DCGM_TIMEOUT_S = {1: 180.0, 2: 900.0, 3: 2400.0, 4: 7200.0}
NCCL_TIMEOUT_S = 900.0
QUERY_FIELDS = "index,name,pci.bus_id,serial,driver_version,pcie.link.width.current,pcie.link.width.max"
HARDWARE_CATEGORIES = ("hardware", "stress", "performance")


@dataclass
class Options:
    """How the checks run on this node."""

    instance: InstanceType | None = None
    root: Path = Path("/")
    dcgm_level: int = 1
    nccl_tests_dir: str | None = None
    min_busbw: float | None = None
    kernel_log: Path | None = None


@dataclass
class Context:
    """Options, the command runner (replaceable in tests) and what earlier checks learned."""

    options: Options
    run: Callable[..., commands.CommandResult] = commands.run
    run_pair: Callable[..., tuple[commands.CommandResult, commands.CommandResult]] = commands.run_pair
    learned: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome: PASS, WARN (monitor), FAIL (reboot/isolate) or SKIP."""

    id: str
    title: str
    status: str
    severity: str
    detail: str

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "severity": self.severity,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Check:
    """A registered check."""

    id: str
    title: str
    fast: bool
    on_failure: str
    reads: str
    function: Callable[[Context, Check], CheckResult]


def passed(check: Check, detail: str) -> CheckResult:
    return CheckResult(check.id, check.title, "PASS", "ok", detail)


def skipped(check: Check, reason: str) -> CheckResult:
    return CheckResult(check.id, check.title, "SKIP", "-", reason)


def finding(check: Check, severity: str, detail: str) -> CheckResult:
    """WARN for monitor, FAIL for reboot and isolate."""
    return CheckResult(check.id, check.title, "WARN" if severity == "monitor" else "FAIL", severity, detail)


def worst(severities: list[str]) -> str:
    """The most severe of ``severities`` ('ok' when empty)."""
    return max(severities, key=SEVERITIES.index, default="ok")


def _short_bus(bus: str) -> str:
    """00000000:86:00.0 -> 0000:86:00 (the form Xid lines and nccl-tests print)."""
    match = re.search(r"([0-9A-Fa-f]{2}:[0-9A-Fa-f]{2})(?:\.\d)?$", bus)
    return f"0000:{match.group(1).lower()}" if match else bus


# -- GPU presence ----------------------------------------------------------------------------------


def _expected_gpus(ctx: Context) -> int:
    return ctx.options.instance.gpus if ctx.options.instance else 0


def gpu_rows(ctx: Context) -> list[dict] | commands.CommandResult:
    """nvidia-smi's GPU list, or the failed command (asked once per run)."""
    if "gpus" not in ctx.learned:
        result = ctx.run(["nvidia-smi", f"--query-gpu={QUERY_FIELDS}", "--format=csv"])
        ctx.learned["gpus"] = parsers.parse_query_csv(result.stdout) if result.ok else result
    return ctx.learned["gpus"]


def no_gpu_reason(ctx: Context) -> str | None:
    """Why GPU checks do not apply here, or None on a GPU node (one expected or nvidia-smi present)."""
    probe = gpu_rows(ctx)
    if not (isinstance(probe, commands.CommandResult) and not probe.found):
        return None
    if _expected_gpus(ctx):
        return "nvidia-smi not found (see GPU001)"
    return "no NVIDIA GPU here: nvidia-smi not found and the instance type has none (or is unknown)"


def check_gpus_visible(ctx: Context, check: Check) -> CheckResult:
    """GPU001: the driver answers and every GPU of the instance type is visible, of the right model."""
    rows = gpu_rows(ctx)
    expected = _expected_gpus(ctx)
    instance = ctx.options.instance
    if isinstance(rows, commands.CommandResult):
        if not rows.found:
            if expected:
                return finding(
                    check, "isolate", f"nvidia-smi not found on {instance.name} ({expected} GPUs expected)"
                )
            return skipped(check, no_gpu_reason(ctx) or rows.why())
        return finding(check, "reboot", f"nvidia-smi failed: {rows.why()}")
    names = sorted({row["name"] or "?" for row in rows})
    driver = rows[0].get("driver_version") if rows else None
    if expected and len(rows) < expected:
        seen = ", ".join(_short_bus(row["pci.bus_id"] or "?") for row in rows)
        return finding(
            check, "isolate", f"{len(rows)} of {expected} GPUs visible on {instance.name} (seen: {seen})"
        )
    if (
        instance
        and instance.accelerator_kind == "gpu"
        and not any(instance.accelerator_model in n for n in names)
    ):
        return finding(
            check, "monitor", f"GPUs are {', '.join(names)}, {instance.name} has {instance.accelerator_model}"
        )
    return passed(check, f"{len(rows)}x {', '.join(names)}, driver {driver}")


# -- memory errors ---------------------------------------------------------------------------------


def _gpu_memory_findings(values: dict[str, str | None]) -> list[tuple[str, str]]:
    """(severity, text) for one GPU's ECC / row remapping / page retirement state."""
    found = []
    if values.get("Remapped Rows/Remapping Failure Occurred") == "Yes":
        found.append(("isolate", "row remapping failure"))
    if values.get("ECC Errors/Aggregate/SRAM Threshold Exceeded") == "Yes":
        found.append(("isolate", "SRAM error threshold exceeded"))
    uncorrectable = sum(
        parsers.count(value)
        for key, value in values.items()
        if key.startswith("ECC Errors/Volatile/") and ("Uncorrectable" in key or "Double Bit" in key)
    )
    if uncorrectable:
        found.append(("reboot", f"{uncorrectable} uncorrectable ECC errors since boot"))
    if values.get("Remapped Rows/Pending") == "Yes":
        found.append(("reboot", "row remap pending (applied at the next GPU reset)"))
    if "Yes" in (
        values.get("Retired Pages/Pending Page Blacklist"),
        values.get("Retired Pages/Pending Page Retirement"),
    ):
        found.append(("reboot", "page retirement pending"))
    return found


def check_memory_errors(ctx: Context, check: Check) -> CheckResult:
    """GPU002: uncorrectable ECC, row remapping pending/failed, page retirement pending."""
    if reason := no_gpu_reason(ctx):
        return skipped(check, reason)
    result = ctx.run(["nvidia-smi", "-q", "-d", "ECC,PAGE_RETIREMENT,ROW_REMAPPER"])
    if not result.ok:
        return finding(check, "reboot", f"cannot read ECC state: {result.why()}")
    gpus = parsers.parse_smi_query(result.stdout)
    problems: list[tuple[str, str]] = []
    for bus, values in gpus.items():
        problems += [
            (severity, f"GPU {_short_bus(bus)}: {text}") for severity, text in _gpu_memory_findings(values)
        ]
    if not problems:
        return passed(check, f"{len(gpus)} GPUs: no uncorrectable ECC, no pending or failed row remapping")
    return finding(check, worst([s for s, _ in problems]), "; ".join(text for _, text in problems))


# -- kernel log ------------------------------------------------------------------------------------


def _kernel_log(ctx: Context) -> str | commands.CommandResult:
    if ctx.options.kernel_log is not None:
        return ctx.options.kernel_log.read_text(errors="replace")
    result = ctx.run(["dmesg"])
    return result.stdout if result.ok else result


def check_xid(ctx: Context, check: Check) -> CheckResult:
    """GPU003: Xid errors in the kernel log since boot, each classified (app error, reset, replace)."""
    if reason := no_gpu_reason(ctx):
        return skipped(check, reason)
    log = _kernel_log(ctx)
    if isinstance(log, commands.CommandResult):
        return skipped(check, f"cannot read the kernel log ({log.why()}); run as root or pass --kernel-log")
    events = parsers.parse_xid_lines(log)
    if not events:
        return passed(check, "no Xid in the kernel log since boot")
    counts: dict[tuple[int, str], int] = {}
    for event in events:
        counts[(event.xid, event.pci)] = counts.get((event.xid, event.pci), 0) + 1
    parts, severities = [], []
    for (code, pci), times in sorted(
        counts.items(), key=lambda item: -SEVERITIES.index(xid.classify(item[0][0])[0])
    ):
        severity, meaning = xid.classify(code)
        severities.append(severity)
        parts.append(f"Xid {code} on {pci.lower()} x{times} ({meaning})")
    return finding(check, worst(severities), "; ".join(parts))


# -- DCGM ------------------------------------------------------------------------------------------


def check_dcgm(ctx: Context, check: Check) -> CheckResult:
    """GPU004: DCGM diagnostics at --dcgm-level (1 quick .. 4 long)."""
    if reason := no_gpu_reason(ctx):
        return skipped(check, reason)
    level = ctx.options.dcgm_level
    result = ctx.run(["dcgmi", "diag", "-r", str(level), "-j"], timeout=DCGM_TIMEOUT_S.get(level, 7200.0))
    if not result.found:
        return skipped(check, "dcgmi not found; install DCGM (datacenter-gpu-manager) to run diagnostics")
    try:
        results = parsers.parse_dcgm_diag(result.stdout)
    except parsers.ParseError as exc:
        return finding(
            check, "monitor", f"DCGM did not run ({exc}; {result.why()}): is nv-hostengine running?"
        )
    problems, severities = [], []
    for item in results:
        if item.status not in ("Fail", "Warn"):
            continue
        hardware = item.category.lower() in HARDWARE_CATEGORIES
        severity = "monitor" if item.status == "Warn" else ("isolate" if hardware else "reboot")
        severities.append(severity)
        warning = f": {item.warnings[0]}" if item.warnings else ""
        problems.append(f"{item.test} {item.status.lower()} on GPU {item.gpus}{warning}")
    if not problems:
        return passed(check, f"level {level}: {len(results)} results, none failed")
    return finding(check, worst(severities), f"level {level}: " + "; ".join(problems))


# -- topology --------------------------------------------------------------------------------------


def check_topology(ctx: Context, check: Check) -> CheckResult:
    """GPU005: every GPU pair on NVLink where the instance has it; PCIe links at full width."""
    if reason := no_gpu_reason(ctx):
        return skipped(check, reason)
    result = ctx.run(["nvidia-smi", "topo", "-m"])
    if not result.ok:
        return finding(check, "reboot", f"cannot read the topology: {result.why()}")
    matrix = parsers.parse_topology(result.stdout)
    links = {(a, b): link for a, row in matrix.items() for b, link in row.items() if a < b}
    problems: list[tuple[str, str]] = []
    instance = ctx.options.instance
    if instance and instance.nvlink_gbytes_per_s_per_gpu:
        down = sorted(f"{a}-{b} {link}" for (a, b), link in links.items() if not link.startswith("NV"))
        if down:
            problems.append(("reboot", f"{len(down)} GPU pairs without NVLink ({', '.join(down[:4])}...)"))
    rows = gpu_rows(ctx)
    for row in rows if isinstance(rows, list) else []:
        current, maximum = row.get("pcie.link.width.current"), row.get("pcie.link.width.max")
        if current and maximum and int(current) < int(maximum):
            problems.append(
                ("monitor", f"GPU {_short_bus(row['pci.bus_id'] or '?')} PCIe x{current} of x{maximum}")
            )
    if problems:
        return finding(check, worst([s for s, _ in problems]), "; ".join(text for _, text in problems))
    kinds = sorted(set(links.values()))
    return passed(check, f"{len(matrix)} GPUs, links {', '.join(kinds) or 'none'}")


# -- NCCL ------------------------------------------------------------------------------------------


def _nccl_threshold(ctx: Context) -> tuple[float, str] | None:
    """(minimum peak busbw, where it comes from): --min-busbw, else the single-node band, else None."""
    if ctx.options.min_busbw is not None:
        return ctx.options.min_busbw, "--min-busbw"
    instance = ctx.options.instance
    band = instance.busbw_band(1) if instance else None
    return (band.low, f"{instance.name} band {band}") if band else None


def _unreadable(run: NcclTestsOutput) -> str | None:
    """Why a finished run's output cannot be judged (never a fact about the node), or None."""
    if not run.rows:
        return "no result rows"
    if run.unread:
        return f"{run.unread} table line(s) do not fit the column header, first: {run.first_unread!r}"
    if not run.complete:
        return "no '# Avg bus bandwidth' footer after the table"
    if run.undecided and run.out_of_bounds is None:
        return f"{run.undecided} error value(s) not comparable with nccl-tests' tolerance and no footer"
    if not run.checked and not run.undecided:
        return "#wrong is N/A in every row: the results were not checked"
    return None


def _judge_nccl(
    check: Check, result: commands.CommandResult, threshold: tuple[float, str] | None
) -> CheckResult:
    """Verdict on one all_reduce_perf run: wrong results, an unfinished run, a slow peak.

    Output it cannot read (a header it does not know, no rows, nothing checked) is WARN ``could not
    evaluate``: never a PASS, and never a drain on a guess.
    """
    command = f"`{' '.join(result.argv)}`"
    try:
        run = parse_nccl(result.stdout + result.stderr)
    except NcclOutputError as exc:
        return finding(check, "monitor", f"could not evaluate the output of {command}: {exc}")
    wrong = max(run.wrong, run.out_of_bounds or 0)
    if wrong:
        unit = "result(s) above nccl-tests' error tolerance" if run.error_column else "wrong elements"
        return finding(check, "isolate", f"{wrong} {unit} in all_reduce results")
    if not result.ok:
        first = run.errors[0] if run.errors else result.why()
        return finding(check, "reboot", f"all_reduce_perf did not finish: {first}")
    if problem := _unreadable(run):
        return finding(
            check,
            "monitor",
            f"could not evaluate the output of {command}: {problem}; run it by hand and read its table",
        )
    return _judge_busbw(check, run, threshold)


def _judge_busbw(check: Check, run: NcclTestsOutput, threshold: tuple[float, str] | None) -> CheckResult:
    """The peak bus bandwidth of a run already read in full, against ``threshold``."""
    peak = run.peak_busbw()
    measured = f"peak busbw {peak[0]:.1f} GB/s at {peak[1]} B" if peak else "no busbw measured"
    if threshold is None:
        return passed(check, f"{measured} (no expected band: pass --instance-type or --min-busbw)")
    minimum, source = threshold
    if peak is None or peak[0] < minimum:
        return finding(check, "reboot", f"{measured} below {minimum:g} GB/s ({source})")
    return passed(check, f"{measured} >= {minimum:g} GB/s")


def check_nccl_single_node(ctx: Context, check: Check) -> CheckResult:
    """GPU006: all_reduce_perf over all GPUs of the node, peak busbw against the instance's band."""
    if reason := no_gpu_reason(ctx):
        return skipped(check, reason)
    rows = gpu_rows(ctx)
    gpus = len(rows) if isinstance(rows, list) else _expected_gpus(ctx)
    extra = [ctx.options.nccl_tests_dir] if ctx.options.nccl_tests_dir else []
    argv = ["all_reduce_perf", "-b", "1G", "-e", "4G", "-f", "2", "-g", str(gpus), "-c", "1", "-n", "20"]
    result = ctx.run(argv, timeout=NCCL_TIMEOUT_S, extra=extra)
    if not result.found:
        return skipped(
            check, "all_reduce_perf not found; pass --nccl-tests-dir (the nccl-tests build folder)"
        )
    return _judge_nccl(check, result, _nccl_threshold(ctx))


# -- EFA -------------------------------------------------------------------------------------------


def _efa_devices(ctx: Context) -> list[str] | commands.CommandResult:
    result = ctx.run(["fi_info", "-p", "efa", "-t", "FI_EP_RDM"])
    if result.ok:
        return parsers.parse_fi_info_domains(result.stdout)
    if result.found and "No data available" in result.stdout + result.stderr:
        return []  # fi_info's answer when the provider finds no device
    return result


def check_efa_devices(ctx: Context, check: Check) -> CheckResult:
    """EFA001: libfabric sees as many EFA devices as the instance type has."""
    instance = ctx.options.instance
    if instance is None:
        return skipped(check, "instance type unknown: pass --instance-type (or set INSTANCE_TYPE) to compare")
    if instance.efa_devices == 0:
        return skipped(check, f"{instance.name} has no EFA")
    devices = _efa_devices(ctx)
    if isinstance(devices, commands.CommandResult):
        return finding(check, "isolate", f"cannot list EFA devices: {devices.why()} (EFA installer missing?)")
    ctx.learned["efa_devices"] = devices
    if len(devices) < instance.efa_devices:
        return finding(
            check,
            "isolate",
            f"{len(devices)} of {instance.efa_devices} EFA devices visible on {instance.name}",
        )
    return passed(check, f"{len(devices)} EFA devices ({devices[0]}...)")


def check_efa_loopback(ctx: Context, check: Check) -> CheckResult:
    """EFA002: fi_pingpong over EFA to this node itself (server and client, RDM endpoint)."""
    devices = ctx.learned.get("efa_devices")
    if devices is None:
        if ctx.options.instance is None or ctx.options.instance.efa_devices == 0:
            return skipped(check, "no EFA expected here (instance type unknown or without EFA)")
        found = _efa_devices(ctx)
        devices = found if isinstance(found, list) else []
    if not devices:
        return skipped(check, "no EFA device to test (see EFA001)")
    base = ["fi_pingpong", "-p", "efa", "-e", "rdm", "-I", "100"]
    server, client = ctx.run_pair(base, [*base, "127.0.0.1"])
    if not client.found:
        return skipped(check, "fi_pingpong not found (libfabric-aws-bin from the EFA installer)")
    rows = parsers.parse_pingpong(client.stdout)
    if not (client.ok and server.ok and rows):
        failed = client if not client.ok else server
        return finding(check, "reboot", f"EFA loopback failed: {failed.why()}")
    best = max(row["mb_per_s"] for row in rows)
    return passed(check, f"loopback over {devices[0]}: {len(rows)} sizes, up to {best:.0f} MB/s")


CHECKS: tuple[Check, ...] = (
    Check("GPU001", "GPUs visible", True, "isolate", "nvidia-smi --query-gpu", check_gpus_visible),
    Check(
        "GPU002", "ECC and row remapping", True, "isolate", "nvidia-smi -q -d ECC,...", check_memory_errors
    ),
    Check("GPU003", "Xid errors", True, "isolate", "dmesg (or --kernel-log)", check_xid),
    Check("GPU004", "DCGM diagnostics", False, "isolate", "dcgmi diag -r LEVEL -j", check_dcgm),
    Check("GPU005", "NVLink and PCIe topology", True, "reboot", "nvidia-smi topo -m", check_topology),
    Check(
        "GPU006",
        "NCCL all-reduce in one node",
        False,
        "reboot",
        "all_reduce_perf -b 1G -e 4G",
        check_nccl_single_node,
    ),
    Check("EFA001", "EFA devices", True, "isolate", "fi_info -p efa -t FI_EP_RDM", check_efa_devices),
    Check("EFA002", "EFA loopback", False, "reboot", "fi_pingpong -p efa -e rdm", check_efa_loopback),
)
BY_ID = {check.id: check for check in CHECKS}


def select(spec: str, skip: list[str]) -> list[Check]:
    """``fast``, ``all`` or a comma list of IDs, minus ``skip``; ValueError naming an unknown ID."""
    if spec == "fast":
        chosen = [check for check in CHECKS if check.fast]
    elif spec == "all":
        chosen = list(CHECKS)
    else:
        ids = [item.strip().upper() for item in spec.split(",") if item.strip()]
        unknown = [item for item in ids + [s.upper() for s in skip] if item not in BY_ID]
        if unknown:
            raise ValueError(f"unknown check {', '.join(unknown)}; known: {', '.join(BY_ID)} (or fast, all)")
        chosen = [BY_ID[item] for item in ids]
    return [check for check in chosen if check.id not in {s.upper() for s in skip}]


def run_checks(ctx: Context, chosen: list[Check]) -> list[CheckResult]:
    """Run ``chosen`` in order; a check that crashes on unexpected output fails with the reason."""
    results = []
    for check in chosen:
        try:
            results.append(check.function(ctx, check))
        except (parsers.ParseError, OSError, ValueError) as exc:
            results.append(finding(check, "monitor", f"could not evaluate: {exc}"))
    return results
