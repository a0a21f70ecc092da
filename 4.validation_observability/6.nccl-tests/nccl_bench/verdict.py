"""A verdict on one collective run: complete, correct, on the expected transport, fast enough."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from nccl_bench import inputs
from nccl_bench.instance_types import DEFAULT_JUDGE_MIN_BYTES, Band
from nccl_bench.nccl_output import NcclTestsOutput

# A peak this far above the band's top is more likely a wrong formula or size than a fast machine.
SUSPICIOUS_ABOVE = 1.05
MIN_BUSBW_ENV = "MIN_BUSBW"


def resolve_min_busbw(value: float | None, error: type[Exception]) -> float | None:
    """--min-busbw, else $MIN_BUSBW, else None; a value that is not a finite positive number raises ``error``
    (a verdict must never pass on a threshold it cannot compare with)."""
    try:
        if value is not None:
            return inputs.number(value, "--min-busbw", above=0)
        if os.environ.get(MIN_BUSBW_ENV):
            return inputs.number(os.environ[MIN_BUSBW_ENV], MIN_BUSBW_ENV, above=0)
    except inputs.InputError as exc:
        raise error(f"{exc} (GB/s)") from None
    return None


@dataclass(frozen=True)
class Thresholds:
    """What a run is judged against; an explicit ``min_busbw`` wins over the instance band."""

    min_busbw: float | None = None
    band: Band | None = None
    band_source: str = ""
    judge_min_bytes: int = DEFAULT_JUDGE_MIN_BYTES
    expect_efa: bool = False
    note: str = ""

    @property
    def threshold(self) -> tuple[float, str] | None:
        """(lowest acceptable peak busbw, where it comes from), or None when nothing is set."""
        if self.min_busbw is not None:
            return self.min_busbw, "--min-busbw"
        if self.band is not None:
            return self.band.low, f"band {self.band} of {self.band_source}"
        return None


@dataclass
class Verdict:
    """OK or not, the reasons, and the peak it was judged on."""

    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    peak_busbw: float | None = None
    peak_size_bytes: int | None = None

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "failures": self.failures,
            "notes": self.notes,
            "peak_busbw_gbytes_per_s": self.peak_busbw,
            "peak_size_bytes": self.peak_size_bytes,
        }


def _integrity(run: NcclTestsOutput, verdict: Verdict) -> None:
    """Complete, fully read, no NCCL/CUDA failure lines."""
    if not run.rows:
        verdict.failures.append("no result rows: the run printed no table (see the errors in the log)")
    elif not run.complete:
        last = run.rows[-1].size_bytes
        verdict.failures.append(
            f"truncated: no '# Avg bus bandwidth' footer after {len(run.rows)} rows (last size {last} B); "
            "the run died or the log was cut"
        )
    if run.unread:
        verdict.failures.append(
            f"{run.unread} table line(s) do not fit the column header, first: {run.first_unread!r}; "
            "the log is mixed or cut, so its results cannot be judged"
        )
    if run.errors:
        verdict.failures.append(f"{len(run.errors)} error line(s) in the log, first: {run.errors[0]}")


def _correctness(run: NcclTestsOutput, verdict: Verdict) -> None:
    """Wrong elements (or old ``error`` values out of bounds); never OK on a value not compared."""
    wrong = max(run.wrong, run.out_of_bounds or 0)
    if wrong and run.error_column:
        verdict.failures.append(
            f"{wrong} result(s) with an error above nccl-tests' tolerance: results are corrupt "
            "(GPU, NVLink or network fault)"
        )
    elif wrong:
        verdict.failures.append(f"{wrong} wrong elements: results are corrupt (GPU, NVLink or network fault)")
    if run.undecided and run.out_of_bounds is None:
        verdict.failures.append(
            f"{run.undecided} error value(s) could not be compared with nccl-tests' tolerance (rank count "
            "unknown or too close to call) and there is no 'Out of bounds values' footer"
        )
    elif run.undecided:
        verdict.notes.append(
            f"{run.undecided} error value(s) too close to call from the printed digit: "
            "nccl-tests' own 'Out of bounds values' footer decided"
        )
    if run.rows and not run.checked and not run.undecided:
        verdict.notes.append("results not checked (#wrong N/A: nccl-tests -c 0): correctness unknown")


def _transport(run: NcclTestsOutput, thresholds: Thresholds, verdict: Verdict) -> None:
    """Sockets where EFA is expected is the most common silent failure (FACTS: NET/Socket)."""
    if not thresholds.expect_efa or run.nodes == 1:
        return
    if run.network == "Socket":
        verdict.failures.append(
            "NCCL used TCP sockets (NET/Socket), not EFA: pass /dev/infiniband into the container, "
            "install aws-ofi-nccl, check FI_PROVIDER=efa"
        )
    elif run.network is None:
        verdict.notes.append("transport unknown: run with NCCL_DEBUG=INFO to confirm NCCL used EFA (NET/OFI)")


def judge(run: NcclTestsOutput, thresholds: Thresholds) -> Verdict:
    """Judge a parsed run (nccl-tests or collective_bench) against ``thresholds``."""
    verdict = Verdict(notes=[thresholds.note] if thresholds.note else [])
    _integrity(run, verdict)
    _correctness(run, verdict)
    _transport(run, thresholds, verdict)
    peak = run.peak_busbw(thresholds.judge_min_bytes)
    shown = peak or run.peak_busbw(0)
    if shown is not None:
        verdict.peak_busbw, verdict.peak_size_bytes = shown
    if peak is None and shown is not None:
        verdict.notes.append(
            f"largest message {run.rows[-1].size_bytes} B is below {thresholds.judge_min_bytes} B: "
            "the peak shown is not the hardware's (sweep to 4G)"
        )
    threshold = thresholds.threshold
    if threshold is None:
        verdict.notes.append(
            "no bandwidth threshold: pass --instance-type or --min-busbw for a bandwidth verdict"
        )
        return verdict
    minimum, source = threshold
    if not run.complete:
        return verdict  # a truncated run is judged on that alone
    if peak is None:
        verdict.failures.append(
            f"no message of at least {thresholds.judge_min_bytes} B: sweep further (-e 4G) or lower "
            "--judge-min-bytes to judge peak busbw"
        )
    elif peak[0] < minimum:
        verdict.failures.append(
            f"peak busbw {peak[0]:.2f} GB/s at {peak[1]} B is below {minimum:g} GB/s ({source})"
        )
    elif thresholds.band is not None and peak[0] > thresholds.band.high * SUSPICIOUS_ABOVE:
        verdict.notes.append(
            f"peak busbw {peak[0]:.2f} GB/s is above the band {thresholds.band}: check sizes and formula"
        )
    return verdict


def band_applies(test: str | None) -> bool:
    """instance-types.yaml bands are all_reduce busbw; other collectives need --min-busbw."""
    return test is None or test.startswith("all_reduce")


def band_note(test: str | None, instance: str) -> str:
    return f"the {instance} band is for all_reduce; pass --min-busbw to judge {test}"
