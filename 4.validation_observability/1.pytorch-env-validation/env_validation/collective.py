"""An all_reduce across this node's local ranks: NCCL over the GPUs, or gloo over CPU processes.

The ranks are spawned here (no torchrun needed), rendezvous on a free loopback port, all-reduce
1 Mi floats, check every element, and report the slowest rank's time and the bus bandwidth.
"""

from __future__ import annotations

import socket
import time
import traceback
from dataclasses import dataclass
from datetime import timedelta

ELEMENTS = 1 << 20
ITERATIONS = 5
TIMEOUT_S = 120.0


@dataclass(frozen=True)
class CollectiveResult:
    """What the local ranks saw."""

    backend: str
    ranks: int
    wrong: int
    seconds_per_op: float
    errors: tuple[str, ...]

    @property
    def busbw_gbytes_per_s(self) -> float:
        """nccl-tests' all_reduce bus bandwidth: bytes / time x 2(n-1)/n."""
        if self.seconds_per_op <= 0:
            return 0.0
        return ELEMENTS * 4 / self.seconds_per_op / 1e9 * 2 * (self.ranks - 1) / self.ranks


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, ranks: int, backend: str, port: int, queue) -> None:
    """One rank: join, all_reduce (rank + 1) everywhere, check n(n+1)/2, time a few more."""
    try:
        import torch  # noqa: PLC0415 - imported in the spawned process
        import torch.distributed as dist  # noqa: PLC0415

        device = torch.device("cuda", rank) if backend == "nccl" else torch.device("cpu")
        if backend == "nccl":
            torch.cuda.set_device(device)
        dist.init_process_group(
            backend,
            init_method=f"tcp://127.0.0.1:{port}",
            rank=rank,
            world_size=ranks,
            timeout=timedelta(seconds=TIMEOUT_S),
        )
        data = torch.full((ELEMENTS,), float(rank + 1), device=device)
        dist.all_reduce(data)
        wrong = int((data != ranks * (ranks + 1) / 2).sum().item())
        if backend == "nccl":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(ITERATIONS):
            dist.all_reduce(data)
        if backend == "nccl":
            torch.cuda.synchronize(device)
        elapsed = torch.tensor(
            [(time.perf_counter() - start) / ITERATIONS], dtype=torch.float64, device=device
        )
        dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)
        queue.put((rank, wrong, float(elapsed.item()), ""))
        dist.destroy_process_group()
    except Exception as exc:  # report every failure to the parent, which decides the verdict
        queue.put((rank, 0, 0.0, f"rank {rank}: {type(exc).__name__}: {exc}".splitlines()[0] + _where(exc)))


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    return f" ({frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""


def run_local_collective(ranks: int, backend: str) -> CollectiveResult:
    """Spawn ``ranks`` processes and all-reduce across them; errors are collected, never raised."""
    import torch.multiprocessing as mp  # noqa: PLC0415 - torch only when the check runs

    context = mp.get_context("spawn")
    queue = context.SimpleQueue()
    port = _free_port()
    processes = [context.Process(target=_worker, args=(r, ranks, backend, port, queue)) for r in range(ranks)]
    for process in processes:
        process.start()
    deadline = time.monotonic() + TIMEOUT_S + 30
    for process in processes:
        process.join(max(0.1, deadline - time.monotonic()))
    errors = []
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join()
            errors.append(f"a rank did not finish in {TIMEOUT_S + 30:g}s (hang in the collective)")
    reports = []
    while not queue.empty():
        reports.append(queue.get())
    errors += [error for _, _, _, error in reports if error]
    if len(reports) < ranks and not errors:
        codes = [process.exitcode for process in processes]
        errors.append(f"{ranks - len(reports)} rank(s) died without a report (exit codes {codes})")
    wrong = sum(report[1] for report in reports)
    seconds = max((report[2] for report in reports), default=0.0)
    return CollectiveResult(backend, ranks, wrong, seconds, tuple(errors))
