"""The environment checks, each with a stable ID: PASS, WARN, FAIL, or SKIP with the reason.

GPU-only checks SKIP on a machine without CUDA unless GPUs are expected (the instance type has them,
or --expect-gpus), in which case their absence is a FAIL.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from env_validation import efa_env
from env_validation.collective import run_local_collective
from env_validation.instance_types import InstanceType

GEMM_SIZE = 1024
GEMM_MAX_ERROR = 1e-3  # fp32 (TF32 off) against a float64 reference
SLOW_DEVICE_FRACTION = 0.5  # a device under half the median throughput of its peers is flagged


@dataclass
class Options:
    """What the checks are judged against."""

    instance: InstanceType | None = None
    expect_gpus: int | None = None
    local_ranks: int | None = None
    root: Path = Path("/")
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def expected_gpus(self) -> int:
        """GPUs this node must have: --expect-gpus, else the instance type's, else 0."""
        if self.expect_gpus is not None:
            return self.expect_gpus
        return self.instance.gpus if self.instance else 0


@dataclass(frozen=True)
class Result:
    """One check's outcome."""

    id: str
    title: str
    status: str
    detail: str

    def to_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "status": self.status, "detail": self.detail}


def _torch():
    import torch  # noqa: PLC0415 - imported once, by the first check, so a missing torch is a result

    return torch


def check_torch(options: Options) -> tuple[str, str]:
    """ENV001: torch imports; a CPU-only build on a GPU node fails."""
    try:
        torch = _torch()
    except ImportError as exc:
        return "FAIL", f"torch does not import ({exc}); install torch first"
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only build"
    if not torch.version.cuda and options.expected_gpus:
        return (
            "FAIL",
            f"torch {torch.__version__} is a CPU-only build on a node with GPUs; install a CUDA build",
        )
    return "PASS", f"torch {torch.__version__} ({build})"


def check_cuda(options: Options) -> tuple[str, str]:
    """ENV002: CUDA devices visible to torch, as many as expected."""
    torch = _torch()
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    expected = options.expected_gpus
    if count == 0 and not expected:
        return "SKIP", "no CUDA device (CPU-only torch or no GPU); expected none"
    if count < expected:
        return (
            "FAIL",
            f"{count} of {expected} GPUs visible to torch (CUDA_VISIBLE_DEVICES, driver, or a GPU gone)",
        )
    names = sorted({torch.cuda.get_device_name(i) for i in range(count)})
    major, minor = torch.cuda.get_device_capability(0)
    return "PASS", f"{count}x {', '.join(names)} (sm_{major}{minor}), CUDA {torch.version.cuda}"


def check_cudnn(options: Options) -> tuple[str, str]:
    """ENV003: cuDNN loads where CUDA does."""
    torch = _torch()
    if not torch.cuda.is_available():
        return (
            ("FAIL", "CUDA unavailable, so is cuDNN") if options.expected_gpus else ("SKIP", "no CUDA device")
        )
    if not torch.backends.cudnn.is_available():
        return "FAIL", "cuDNN not available in this torch build; install a CUDA build with cuDNN"
    return "PASS", f"cuDNN {torch.backends.cudnn.version()}"


def check_nccl(options: Options) -> tuple[str, str]:
    """ENV004: NCCL is built in and reports its version (GPU nodes)."""
    torch = _torch()
    import torch.distributed as dist  # noqa: PLC0415

    if not torch.cuda.is_available():
        return ("FAIL", "no CUDA device, so no NCCL") if options.expected_gpus else ("SKIP", "no CUDA device")
    if not dist.is_nccl_available():
        return "FAIL", "torch.distributed has no NCCL backend; install a CUDA build of torch"
    return "PASS", "NCCL " + ".".join(str(part) for part in torch.cuda.nccl.version())


def check_gloo(options: Options) -> tuple[str, str]:
    """ENV005: the gloo backend (CPU collectives, and what torch uses for object collectives)."""
    import torch.distributed as dist  # noqa: PLC0415

    if not dist.is_available() or not dist.is_gloo_available():
        return "FAIL", "torch.distributed has no gloo backend"
    return "PASS", "gloo available"


def _gemm(torch, device) -> tuple[float, float]:
    """(GFLOP/s, max relative error) of an fp32 GEMM on ``device`` against float64 on the CPU."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(GEMM_SIZE, GEMM_SIZE, generator=generator)
    b = torch.randn(GEMM_SIZE, GEMM_SIZE, generator=generator)
    reference = (a.double() @ b.double()).float()
    da, db = a.to(device), b.to(device)
    result = da @ db  # warm-up and the checked product
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start, repeats = time.perf_counter(), 3
    for _ in range(repeats):
        da @ db
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - start) / repeats
    error = ((result.cpu() - reference).abs().max() / reference.abs().max()).item()
    return 2 * GEMM_SIZE**3 / seconds / 1e9, error


def check_compute(options: Options) -> tuple[str, str]:
    """ENV006: an fp32 GEMM per device is correct; no device is far slower than its peers."""
    torch = _torch()
    torch.backends.cuda.matmul.allow_tf32 = False
    devices = (
        [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available()
        else []
    )
    devices = devices or [torch.device("cpu")]
    measured = {str(device): _gemm(torch, device) for device in devices}
    wrong = [f"{name} error {error:.1e}" for name, (_, error) in measured.items() if error > GEMM_MAX_ERROR]
    if wrong:
        return "FAIL", f"GEMM results wrong: {', '.join(wrong)} (limit {GEMM_MAX_ERROR:g})"
    rates = sorted(rate for rate, _ in measured.values())
    median = rates[len(rates) // 2]
    slow = [
        f"{name} {rate:.0f} GFLOP/s"
        for name, (rate, _) in measured.items()
        if rate < SLOW_DEVICE_FRACTION * median
    ]
    summary = ", ".join(f"{name} {rate:.1f} GFLOP/s" for name, (rate, _) in measured.items())
    if slow:
        return "WARN", f"slow against the median {median:.0f} GFLOP/s: {', '.join(slow)} (throttling?)"
    return "PASS", f"fp32 GEMM {GEMM_SIZE}^3 correct; {summary}"


def check_collective(options: Options) -> tuple[str, str]:
    """ENV007: all_reduce across the node's local ranks (one per GPU, or 2 CPU processes)."""
    torch = _torch()
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    backend = "nccl" if gpus else "gloo"
    ranks = options.local_ranks or gpus or 2
    if gpus and ranks > gpus:
        return "FAIL", f"--local-ranks {ranks} is more than the {gpus} GPUs here"
    if ranks < 2:
        return "SKIP", "one local rank: nothing to all-reduce across (one GPU)"
    result = run_local_collective(ranks, backend)
    if result.errors:
        return "FAIL", f"{backend} all_reduce across {ranks} ranks failed: {result.errors[0]}"
    if result.wrong:
        return "FAIL", f"{backend} all_reduce across {ranks} ranks: {result.wrong} wrong elements"
    return "PASS", (
        f"{backend} all_reduce across {ranks} ranks correct; 4 MiB in {result.seconds_per_op * 1e3:.2f} ms, "
        f"busbw {result.busbw_gbytes_per_s:.2f} GB/s"
    )


def check_efa_environment(options: Options) -> tuple[str, str]:
    """ENV008: FI_*/NCCL_* variables against the instance type and the EFA devices visible here."""
    host = efa_env.host_facts(options.root)
    problems = efa_env.findings(options.env, options.instance, host, options.root)
    failed = [text for status, text in problems if status == "FAIL"]
    if problems:
        return ("FAIL" if failed else "WARN"), "; ".join(text for _, text in problems)
    names = efa_env.examined(options.env)
    instance = options.instance.name if options.instance else "instance type unknown"
    checked = ", ".join(names) if names else "no FI_/NCCL_ variables set"
    return "PASS", f"{checked}; {instance}; {host.efa_devices} EFA devices, {host.uverbs_devices} uverbs"


CHECKS: tuple[tuple[str, str, Callable[[Options], tuple[str, str]]], ...] = (
    ("ENV001", "PyTorch", check_torch),
    ("ENV002", "CUDA devices", check_cuda),
    ("ENV003", "cuDNN", check_cudnn),
    ("ENV004", "NCCL", check_nccl),
    ("ENV005", "gloo", check_gloo),
    ("ENV006", "compute per device", check_compute),
    ("ENV007", "local collective", check_collective),
    ("ENV008", "EFA/NCCL environment", check_efa_environment),
)


def run_checks(options: Options, skip: set[str] = frozenset()) -> list[Result]:
    """Every check in order; after a torch import failure the torch checks SKIP."""
    results: list[Result] = []
    torch_ok = True
    for check_id, title, function in CHECKS:
        if check_id in skip:
            continue
        if not torch_ok and check_id != "ENV008":
            results.append(Result(check_id, title, "SKIP", "torch does not import (ENV001)"))
            continue
        status, detail = function(options)
        results.append(Result(check_id, title, status, detail))
        torch_ok = torch_ok and not (check_id == "ENV001" and status == "FAIL" and "import" in detail)
    return results
