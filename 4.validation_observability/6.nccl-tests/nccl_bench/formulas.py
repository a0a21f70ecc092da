"""nccl-tests' definitions: message sizes, the size sweep, algorithm and bus bandwidth.

algbw = bytes / time. busbw = algbw x a factor that makes the number comparable to the hardware's
link bandwidth whatever the rank count n (nccl-tests doc/PERFORMANCE.md): 2(n-1)/n for all_reduce,
(n-1)/n for all_gather, reduce_scatter and alltoall, 1 for broadcast, reduce and sendrecv.
"""

from __future__ import annotations

import re

OPS = ("all_reduce", "all_gather", "reduce_scatter", "alltoall", "broadcast")
_SIZE = re.compile(r"^(?P<number>\d+)(?P<unit>[KMGT]?)(?:i?B)?$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def bus_factor(op: str, ranks: int) -> float:
    """The busbw / algbw ratio of ``op`` on ``ranks`` ranks."""
    if ranks < 1:
        raise ValueError(f"ranks={ranks} must be at least 1")
    if op == "all_reduce":
        return 2 * (ranks - 1) / ranks
    if op in ("all_gather", "reduce_scatter", "alltoall"):
        return (ranks - 1) / ranks
    if op in ("broadcast", "reduce", "sendrecv"):
        return 1.0
    raise ValueError(f"unknown collective {op!r}; choose one of: {', '.join(OPS)}")


def algbw_gbytes_per_s(size_bytes: int, time_us: float) -> float:
    """Algorithm bandwidth in GB/s (1e9 bytes) of moving ``size_bytes`` in ``time_us`` microseconds."""
    return size_bytes / (time_us * 1e-6) / 1e9 if time_us > 0 else 0.0


def busbw_from_algbw(op: str, algbw: float, ranks: int) -> float:
    """Bus bandwidth from algorithm bandwidth by nccl-tests' factor."""
    return algbw * bus_factor(op, ranks)


def parse_size(text: str) -> int:
    """``8``, ``64K``, ``16M``, ``4G`` (powers of 1024, as nccl-tests' -b/-e) -> bytes."""
    match = _SIZE.match(text.strip())
    if not match:
        raise ValueError(f"size {text!r} is not a number with an optional K, M, G or T suffix (e.g. 16M)")
    return int(match["number"]) * _UNITS[match["unit"].upper()]


def sweep(min_bytes: int, max_bytes: int, factor: int) -> list[int]:
    """min, min*f, ... up to max (inclusive), like nccl-tests' -b/-e/-f."""
    if min_bytes < 1 or max_bytes < min_bytes:
        raise ValueError(f"sizes -b {min_bytes} -e {max_bytes}: need 1 <= -b <= -e")
    if factor < 2:
        raise ValueError(f"-f {factor}: the step factor must be at least 2")
    sizes, size = [], min_bytes
    while size <= max_bytes:
        sizes.append(size)
        size *= factor
    return sizes


def element_count(op: str, size_bytes: int, element_bytes: int, ranks: int) -> int:
    """Elements of the op's larger buffer for ``size_bytes``, rounded down to a multiple of ``ranks``

    where the op splits its buffer per rank (0 when the size is too small for one element per rank).
    """
    count = size_bytes // element_bytes
    if op in ("all_gather", "reduce_scatter", "alltoall"):
        count -= count % ranks
    return count
