"""Repeated measurements on a noisy machine: min / median / max, the spread, and when not to trust them."""

from __future__ import annotations

import statistics

MAX_SPREAD = 0.25  # (max - min) / median above this: the machine was busy, the figure is invalid


def summarize(values: list[float]) -> dict:
    """min, median, max and the relative spread of repeated measurements."""
    median = statistics.median(values)
    spread = (max(values) - min(values)) / median if median else float("inf")
    return {
        "runs": len(values),
        "min": round(min(values), 3),
        "median": round(median, 3),
        "max": round(max(values), 3),
        "spread": round(spread, 3),
        "values": [round(v, 3) for v in values],
    }


def problems(name: str, summary: dict) -> list[str]:
    """Why a summary cannot be trusted (empty: it can)."""
    found = []
    if summary["runs"] < 3:
        found.append(f"{name}: {summary['runs']} runs; at least 3 are needed for a spread")
    if summary["spread"] > MAX_SPREAD:
        found.append(
            f"{name}: spread {summary['spread']:.0%} > {MAX_SPREAD:.0%} (min {summary['min']}, max "
            f"{summary['max']}): something else used the machine; rerun on a quiet one"
        )
    return found
