"""Nsight Systems exports built for the tests (there is no GPU here to record real ones).

``write_sqlite`` writes the tables and columns of ``nsys export --type sqlite --include-json true``
that the analysis reads, with the column names of that schema: ``StringIds(id, value)``,
``CUPTI_ACTIVITY_KIND_KERNEL(start, end, deviceId, ..., shortName, demangledName)`` with names as
StringIds ids, and ``NVTX_EVENTS(start, end, eventType, text, textId, ..., jsonText)``. Kernel names
are NCCL's (2.19+ ``ncclDevKernel_*``) and typical cuBLAS/PyTorch ones; NCCL's NVTX ranges carry the
``Message size [bytes]`` payload entry NCCL defines. ``write_csv`` writes ``nsys stats --report
cuda_gpu_kern_sum --format csv`` output.
"""

from __future__ import annotations

import csv
import sqlite3
import statistics
import sys
from pathlib import Path

GEMM = (
    "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1"
    "_execute_segment_k_off_kernel__5x_cublas"
)
ELEMENTWISE = "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<c10::BFloat16>>"
ALL_REDUCE = "ncclDevKernel_AllReduce_Sum_bf16_RING_LL"
ALL_GATHER = "ncclDevKernel_AllGather_RING_LL"
REDUCE_SCATTER = "ncclDevKernel_ReduceScatter_Sum_bf16_RING_SIMPLE"
NVTX_PUSH_POP_RANGE = 59

# One training step of rank 0 as (kernel, duration in ns); rank 1 has one slower all-reduce.
RANK0_KERNELS = [
    (GEMM, 1_000_000), (ALL_GATHER, 50_000), (GEMM, 1_000_000), (ALL_GATHER, 70_000),
    (ELEMENTWISE, 200_000), (REDUCE_SCATTER, 90_000),
    (ALL_REDUCE, 120_000), (ALL_REDUCE, 80_000), (ALL_REDUCE, 100_000),
]  # fmt: skip
RANK1_KERNELS = [(name, 400_000 if (name, ns) == (ALL_REDUCE, 120_000) else ns) for name, ns in RANK0_KERNELS]
# NCCL's NVTX ranges with their payloads (the name either inline or as a registered string).
NVTX_RANGES = [
    ("ncclAllGather", '{"Message size [bytes]": 33554432}'),
    ("ncclAllGather", '{"Message size [bytes]": 33554432}'),
    ("ncclReduceScatter", '{"Message size [bytes]": 67108864, "Reduction operation": "ncclSum"}'),
    ("ncclAllReduce", '{"Message size [bytes]": 268435456, "Reduction operation": "ncclSum"}'),
    ("ncclAllReduce", '{"Message size [bytes]": 200000000, "Reduction operation": "ncclSum"}'),
    ("ncclAllReduce", '{"Message size [bytes]": 4096, "Reduction operation": "ncclSum"}'),
    ("ncclCommInitRank", None),
    ("forward", None),
]


def write_sqlite(path: Path, kernels: list[tuple[str, int]], nvtx: list[tuple[str, str | None]]) -> Path:
    """An nsys-style SQLite export holding these kernels (back to back) and NVTX ranges."""
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE StringIds (id INTEGER NOT NULL PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE CUPTI_ACTIVITY_KIND_KERNEL (
            start INTEGER NOT NULL, end INTEGER NOT NULL, deviceId INTEGER NOT NULL,
            contextId INTEGER NOT NULL, streamId INTEGER NOT NULL, correlationId INTEGER,
            globalPid INTEGER, demangledName INTEGER NOT NULL, shortName INTEGER NOT NULL,
            mangledName INTEGER, gridX INTEGER, blockX INTEGER);
        CREATE TABLE NVTX_EVENTS (
            start INTEGER NOT NULL, end INTEGER, eventType INTEGER NOT NULL, rangeId INTEGER,
            category INTEGER, color INTEGER, text TEXT, globalTid INTEGER, endGlobalTid INTEGER,
            textId INTEGER, domainId INTEGER, jsonTextId INTEGER, jsonText TEXT, binaryData BLOB);
        """
    )
    strings: dict[str, int] = {}

    def string_id(value: str) -> int:
        if value not in strings:
            strings[value] = len(strings) + 1
            db.execute("INSERT INTO StringIds VALUES (?, ?)", (strings[value], value))
        return strings[value]

    clock = 1_000_000_000
    for index, (name, duration) in enumerate(kernels):
        name_id = string_id(name)
        db.execute(
            "INSERT INTO CUPTI_ACTIVITY_KIND_KERNEL (start, end, deviceId, contextId, streamId,"
            " correlationId, globalPid, demangledName, shortName) VALUES (?, ?, 0, 1, 7, ?, 4242, ?, ?)",
            (clock, clock + duration, index, name_id, name_id),
        )
        clock += duration + 1_000
    for index, (name, payload) in enumerate(nvtx):
        inline = index % 2 == 0  # half the names inline, half registered in StringIds
        db.execute(
            "INSERT INTO NVTX_EVENTS (start, end, eventType, text, textId, jsonText)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (1_000 * index, 1_000 * index + 500, NVTX_PUSH_POP_RANGE, name if inline else None,
             None if inline else string_id(name), payload),
        )  # fmt: skip
    db.commit()
    db.close()
    return path


def write_csv(path: Path, kernels: list[tuple[str, int]]) -> Path:
    """``nsys stats --report cuda_gpu_kern_sum --format csv`` for these kernels."""
    by_name: dict[str, list[int]] = {}
    for name, duration in kernels:
        by_name.setdefault(name, []).append(duration)
    total = sum(duration for _, duration in kernels)
    columns = [
        "Time (%)",
        "Total Time (ns)",
        "Instances",
        "Avg (ns)",
        "Med (ns)",
        "Min (ns)",
        "Max (ns)",
        "StdDev (ns)",
        "Name",
    ]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for name, durations in sorted(by_name.items(), key=lambda item: -sum(item[1])):
            writer.writerow([
                f"{100 * sum(durations) / total:.1f}", sum(durations), len(durations),
                f"{statistics.mean(durations):.1f}", f"{statistics.median(durations):.1f}", min(durations),
                max(durations), f"{statistics.stdev(durations) if len(durations) > 1 else 0:.1f}", name,
            ])  # fmt: skip
    return path


def main(argv: list[str]) -> int:
    """``python tests/nsys_exports.py FOLDER``: the two ranks' exports, for trying the analysis."""
    if len(argv) != 1:
        print("usage: python tests/nsys_exports.py FOLDER", file=sys.stderr)
        return 2
    folder = Path(argv[0])
    folder.mkdir(parents=True, exist_ok=True)
    for rank, kernels in (("rank0", RANK0_KERNELS), ("rank1", RANK1_KERNELS)):
        write_sqlite(folder / f"{rank}.sqlite", kernels, NVTX_RANGES)
        write_csv(folder / f"{rank}_cuda_gpu_kern_sum.csv", kernels)
    print(f"wrote {folder}/rank0.sqlite, rank1.sqlite and their cuda_gpu_kern_sum CSVs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
