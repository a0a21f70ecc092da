"""Test driver (torchrun, 2 gloo ranks): every collective once through the benchmark's own code.

Writes, from rank 0, {op: rows} plus the #wrong count of a sabotaged all_reduce (the launcher replaced by
a no-op), which proves the correctness check catches results that never arrived.
"""

import json
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nccl_bench import bench, formulas


def main(out: Path) -> None:
    world = bench.init_world("gloo")
    results = {}
    for op in formulas.OPS:
        config = bench.config_from_args(["--op", op, "-b", "8", "-e", "64K", "-f", "8", "-n", "2", "-w", "1"])
        results[op] = [asdict(row) for row in bench.measure(config, world)]
    bench.launcher = lambda op, buffers: lambda: None  # results never arrive
    results["sabotaged_all_reduce_wrong"] = bench.count_wrong("all_reduce", 100, world, bench.DTYPES["float"])
    if world.rank == 0:
        out.write_text(json.dumps(results))
    bench.dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
