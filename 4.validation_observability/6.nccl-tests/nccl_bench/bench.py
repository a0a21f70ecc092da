"""Collective benchmark over torch.distributed: NCCL on GPUs, gloo on CPUs, nccl-tests' output.

Launched by torchrun (one process per GPU, or N CPU ranks), it sweeps message sizes like
``all_reduce_perf -b 8 -e 128M -f 2``: warm-up, timed iterations (the slowest rank's average), then one
checked run whose result is compared element by element with the known answer (``#wrong``). Sizes are
the op's larger buffer, as in nccl-tests; algbw = size / time and busbw = algbw x nccl-tests' factor.
torch.distributed offers all_reduce and broadcast in place only and the others out of place only, so
the other column group reads N/A.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from nccl_bench import __version__, formulas, inputs, instance_types, output_contract, table
from nccl_bench.nccl_output import Device, Measurement, NcclTestsOutput, Row
from nccl_bench.verdict import (
    MIN_BUSBW_ENV,
    Thresholds,
    Verdict,
    band_applies,
    band_note,
    judge,
    resolve_min_busbw,
)

TOOL = "collective-bench"
DTYPES = {"float": torch.float32, "half": torch.float16, "bfloat16": torch.bfloat16}
IN_PLACE_OPS = ("all_reduce", "broadcast")
PATTERN_PERIOD = 7  # element i of rank r holds (r + 1) + i % 7: small integers, exact in every dtype


class BenchError(ValueError):
    """Bad benchmark input; the message names the flag and the fix."""


@dataclass(frozen=True)
class BenchConfig:
    """Validated command line."""

    op: str
    sizes: tuple[int, ...]
    warmup: int
    iters: int
    check: bool
    dtype: str
    backend: str
    thresholds: Thresholds
    json: bool
    json_out: Path | None
    instance_type: str | None
    instance_types_file: str | None


@dataclass(frozen=True)
class World:
    """This process's place in the job."""

    rank: int
    size: int
    local_rank: int
    device: torch.device
    backend: str


# -- command line ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="collective_bench.py", description=__doc__.split("\n")[0])
    parser.add_argument("--op", default="all_reduce", help=f"one of {', '.join(formulas.OPS)}")
    parser.add_argument("-b", "--minbytes", default="8", help="smallest message (8, 64K, 16M, 4G)")
    parser.add_argument("-e", "--maxbytes", default="32M", help="largest message (default 32M)")
    parser.add_argument("-f", "--stepfactor", type=int, default=2, help="size multiplier (default 2)")
    parser.add_argument("-w", "--warmup_iters", type=int, default=5, help="untimed iterations per size")
    parser.add_argument("-n", "--iters", type=int, default=20, help="timed iterations per size")
    parser.add_argument("-c", "--check", type=int, default=1, help="1: verify results (#wrong); 0: skip")
    parser.add_argument("-d", "--datatype", default="float", help=f"one of {', '.join(DTYPES)}")
    parser.add_argument("--backend", default="auto", help="auto (nccl with CUDA, else gloo), nccl or gloo")
    parser.add_argument("--min-busbw", type=float, default=None, help=f"GB/s; env {MIN_BUSBW_ENV}")
    parser.add_argument("--instance-type", default=None, help="judge against its busbw band")
    parser.add_argument("--instance-types", default=None, help="path of instance-types.yaml")
    parser.add_argument("--judge-min-bytes", default=None, help="judge peak busbw from this size (1G)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table (rank 0)")
    parser.add_argument("--json-out", type=Path, default=None, help="also write the JSON to this file")
    return parser


def _positive(name: str, value: int) -> int:
    if value < 1:
        raise BenchError(f"{name}={value} must be a positive integer")
    return value


def _size(flag: str, text: str) -> int:
    try:
        return formulas.parse_size(text)
    except ValueError as exc:
        raise BenchError(f"{flag}: {exc}") from None


def _thresholds(args: argparse.Namespace, max_bytes: int) -> Thresholds:
    """Thresholds from --min-busbw / $MIN_BUSBW and the instance type's band (bands need the node count,
    known only after start: the band is attached in ``_final_thresholds``)."""
    min_busbw = resolve_min_busbw(args.min_busbw, BenchError)
    judge_min = instance_types.DEFAULT_JUDGE_MIN_BYTES
    if args.judge_min_bytes is not None:
        judge_min = _size("--judge-min-bytes", args.judge_min_bytes)
    if (min_busbw is not None or args.instance_type) and max_bytes < judge_min:
        raise BenchError(
            f"-e {max_bytes} stops below --judge-min-bytes {judge_min}: a bandwidth verdict needs the peak; "
            "sweep further (-e 4G) or lower --judge-min-bytes"
        )
    return Thresholds(min_busbw=min_busbw, judge_min_bytes=judge_min)


def config_from_args(argv: Sequence[str] | None = None) -> BenchConfig:
    """Parse and validate; BenchError names the bad flag and the fix."""
    args = _parser().parse_args(argv)
    if args.op not in formulas.OPS:
        raise BenchError(f"--op {args.op!r} is unknown; choose one of: {', '.join(formulas.OPS)}")
    if args.datatype not in DTYPES:
        raise BenchError(f"-d {args.datatype!r} is unknown; choose one of: {', '.join(DTYPES)}")
    if args.backend not in ("auto", "nccl", "gloo"):
        raise BenchError(f"--backend {args.backend!r} is unknown; choose auto, nccl or gloo")
    try:
        sizes = formulas.sweep(
            _size("-b/--minbytes", args.minbytes), _size("-e/--maxbytes", args.maxbytes), args.stepfactor
        )
    except ValueError as exc:
        raise BenchError(str(exc)) from None
    return BenchConfig(
        op=args.op,
        sizes=tuple(sizes),
        warmup=max(0, args.warmup_iters),
        iters=_positive("-n/--iters", args.iters),
        check=bool(args.check),
        dtype=args.datatype,
        backend=args.backend,
        thresholds=_thresholds(args, sizes[-1]),
        json=args.json,
        json_out=inputs.output_path(args.json_out, "--json-out") if args.json_out else None,
        instance_type=args.instance_type,
        instance_types_file=args.instance_types,
    )


# -- distributed setup ----------------------------------------------------------------------------


def init_world(backend: str) -> World:
    """Join the job torchrun started (or a world of one without torchrun)."""
    if "RANK" not in os.environ:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1")
        os.environ["MASTER_PORT"] = str(port)
    use_cuda = torch.cuda.is_available() and backend != "gloo"
    if backend == "auto":
        backend = "nccl" if use_cuda and dist.is_nccl_available() else "gloo"
    if backend == "nccl" and not (use_cuda and dist.is_nccl_available()):
        raise BenchError("--backend nccl needs CUDA GPUs and a torch built with NCCL; use --backend gloo")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cpu")
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    dist.init_process_group(backend)
    return World(dist.get_rank(), dist.get_world_size(), local_rank, device, backend)


def _describe_device(world: World) -> Device:
    host = os.environ.get("SLURMD_NODENAME") or socket.gethostname()
    if world.device.type == "cuda":
        props = torch.cuda.get_device_properties(world.device)
        bus = f"{props.pci_domain_id:04x}:{props.pci_bus_id:02x}:{props.pci_device_id:02x}"
        name = torch.cuda.get_device_name(world.device)
        return Device(world.rank, host, str(world.local_rank), bus, name, os.getpid())
    return Device(world.rank, host, "cpu", "cpu", _cpu_model(), os.getpid())


def _cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (the platform's name elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gather_devices(world: World) -> list[Device]:
    """Every rank's device line, in rank order."""
    devices: list[Device | None] = [None] * world.size
    dist.all_gather_object(devices, _describe_device(world))
    return [device for device in devices if device is not None]


# -- the collectives ------------------------------------------------------------------------------


def _pattern(rank: int, start: int, count: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    index = torch.arange(start, start + count, device=device)
    return (index % PATTERN_PERIOD + rank + 1).to(dtype)


def _all_gather(output: torch.Tensor, inp: torch.Tensor) -> None:
    # torch 2.13 names them *_single; older releases (still on many clusters) only have the old names.
    (getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor)(output, inp)


def _reduce_scatter(output: torch.Tensor, inp: torch.Tensor) -> None:
    (getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor)(output, inp)


@dataclass
class Buffers:
    """The op's input and output (the same tensor for in-place ops)."""

    input: torch.Tensor
    output: torch.Tensor


def make_buffers(op: str, count: int, world: World, dtype: torch.dtype) -> Buffers:
    """Fresh buffers holding this rank's pattern."""
    chunk = count // world.size
    if op in IN_PLACE_OPS:
        data = _pattern(world.rank, 0, count, dtype, world.device)
        return Buffers(data, data)
    if op == "all_gather":
        inp = _pattern(world.rank, 0, chunk, dtype, world.device)
        return Buffers(inp, torch.empty(count, dtype=dtype, device=world.device))
    inp = _pattern(world.rank, 0, count, dtype, world.device)
    out_count = chunk if op == "reduce_scatter" else count
    return Buffers(inp, torch.empty(out_count, dtype=dtype, device=world.device))


def launcher(op: str, buffers: Buffers) -> Callable[[], object]:
    """A no-argument call that runs the collective once on ``buffers``."""
    inp, out = buffers.input, buffers.output
    calls: dict[str, Callable[[], object]] = {
        "all_reduce": lambda: dist.all_reduce(out),
        "broadcast": lambda: dist.broadcast(out, src=0),
        "all_gather": lambda: _all_gather(out, inp),
        "reduce_scatter": lambda: _reduce_scatter(out, inp),
        "alltoall": lambda: dist.all_to_all_single(out, inp),
    }
    return calls[op]


def expected_output(op: str, count: int, world: World, dtype: torch.dtype) -> torch.Tensor:
    """What the output must hold after one run, from the pattern's definition."""
    n, chunk, device = world.size, count // world.size, world.device
    if op == "all_reduce":
        return sum(_pattern(r, 0, count, torch.float64, device) for r in range(n)).to(dtype)
    if op == "broadcast":
        return _pattern(0, 0, count, dtype, device)
    if op == "reduce_scatter":
        start = world.rank * chunk
        return sum(_pattern(r, start, chunk, torch.float64, device) for r in range(n)).to(dtype)
    if op == "all_gather":
        return torch.cat([_pattern(r, 0, chunk, dtype, device) for r in range(n)])
    return torch.cat([_pattern(r, world.rank * chunk, chunk, dtype, device) for r in range(n)])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_us(run: Callable[[], object], warmup: int, iters: int, world: World) -> float:
    """Average microseconds per call on the slowest rank."""
    for _ in range(warmup):
        run()
    dist.barrier()
    _sync(world.device)
    start = time.perf_counter()
    for _ in range(iters):
        run()
    _sync(world.device)
    elapsed = torch.tensor([(time.perf_counter() - start) / iters * 1e6], dtype=torch.float64)
    elapsed = elapsed.to(world.device)
    dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)
    return float(elapsed.item())


def count_wrong(op: str, count: int, world: World, dtype: torch.dtype) -> int:
    """Run once on fresh buffers; wrong elements summed over all ranks."""
    buffers = make_buffers(op, count, world, dtype)
    launcher(op, buffers)()
    _sync(world.device)
    expected = expected_output(op, count, world, dtype)
    if dtype == torch.float32:
        bad = buffers.output != expected
    else:
        bad = ~torch.isclose(buffers.output.double(), expected.double(), rtol=1e-2)
    wrong = torch.tensor([int(bad.sum().item())], dtype=torch.int64, device=world.device)
    dist.all_reduce(wrong)
    return int(wrong.item())


def measure(config: BenchConfig, world: World) -> list[Row]:
    """One row per size of the sweep (sizes too small for one element per rank are left out)."""
    dtype = DTYPES[config.dtype]
    element = torch.empty((), dtype=dtype).element_size()
    rows = []
    for size in config.sizes:
        count = formulas.element_count(config.op, size, element, world.size)
        if count == 0:
            continue
        buffers = make_buffers(config.op, count, world, dtype)
        elapsed = time_us(launcher(config.op, buffers), config.warmup, config.iters, world)
        del buffers
        wrong = count_wrong(config.op, count, world, dtype) if config.check else None
        nbytes = count * element
        algbw = formulas.algbw_gbytes_per_s(nbytes, elapsed)
        busbw = formulas.busbw_from_algbw(config.op, algbw, world.size)
        measured = Measurement(elapsed, algbw, busbw, wrong)
        redop = "sum" if config.op in ("all_reduce", "reduce_scatter") else "none"
        root = 0 if config.op == "broadcast" else -1
        in_place = config.op in IN_PLACE_OPS
        rows.append(
            Row(
                nbytes,
                count,
                config.dtype,
                redop,
                root,
                out_of_place=Measurement(None, None, None, None) if in_place else measured,
                in_place=measured if in_place else None,
            )
        )
    return rows


# -- report ---------------------------------------------------------------------------------------


def _final_thresholds(config: BenchConfig, nodes: int) -> Thresholds:
    """Attach the instance type's band for this node count (an explicit --min-busbw still wins)."""
    base = config.thresholds
    facts = instance_types.resolve(config.instance_type, config.instance_types_file)
    if facts is None:
        return base
    if not band_applies(config.op):
        if base.min_busbw is None:
            raise BenchError(band_note(config.op, facts.name))
        return base
    band = facts.busbw_band(nodes)
    if band is None and base.min_busbw is None:
        raise BenchError(
            f"instance-types.yaml has no {'single' if nodes == 1 else 'two'}-node busbw band for "
            f"{facts.name}; pass --min-busbw"
        )
    return Thresholds(
        min_busbw=base.min_busbw,
        band=band,
        band_source=f"{facts.name}, {nodes} node(s)",
        judge_min_bytes=base.judge_min_bytes,
        expect_efa=facts.efa_devices > 0,
    )


def facts(config: BenchConfig, world: World, nodes: int) -> dict[str, object]:
    """The header's versions and settings."""
    nccl = None
    if world.backend == "nccl":
        nccl = ".".join(str(part) for part in torch.cuda.nccl.version())
    return {
        "torch": torch.__version__,
        "backend": world.backend,
        "CUDA": torch.version.cuda,
        "NCCL": nccl,
        "collective": config.op,
        "ranks": f"{world.size} on {nodes} node(s)",
        "sweep": f"{config.sizes[0]}..{config.sizes[-1]} B, warmup {config.warmup}, iters {config.iters}",
        "datatype": config.dtype,
    }


def report_lines(
    header: dict, devices: list[Device], rows: list[Row], op: str, verdict: Verdict
) -> list[str]:
    """Header, device lines, nccl-tests table and footer, then the verdict footer."""
    lines = output_contract.header(TOOL, __version__, header)
    lines.append("# Using devices")
    for d in devices:  # nccl-tests' device line, which the parser reads back
        where = f"on {d.host:>10} device {d.device:>3} [{d.bus_id}] {d.name}"
        lines.append(f"#  Rank {d.rank:2d} Group  0 Pid {d.pid:6d} {where}")
    lines += ["#", *table.COLUMN_HEADER, *(table.format_row(row) for row in rows), *table.footer(rows, op)]
    peak = (
        "N/A"
        if verdict.peak_busbw is None
        else f"{verdict.peak_busbw:.2f} GB/s at {verdict.peak_size_bytes} B"
    )
    lines += [f"# Peak busbw : {peak}", *(f"# Note : {note}" for note in verdict.notes)]
    return lines + output_contract.footer(verdict.failures, "Verdict")


def _benchmark(config: BenchConfig, world: World) -> int:
    """Measure, judge, print (rank 0); the exit code every rank shares (0 OK, 1 FAILED)."""
    devices = gather_devices(world)
    nodes = len({device.host for device in devices})
    thresholds = _final_thresholds(config, nodes)
    rows = measure(config, world)
    result = NcclTestsOutput(test=config.op, devices=devices, rows=rows, avg_busbw=table.average_busbw(rows))
    verdict = judge(result, thresholds)
    if world.rank == 0:
        header = facts(config, world, nodes)
        document = {"tool": TOOL, "version": __version__, "facts": header, **result.to_dict()}
        document["verdict"] = verdict.to_dict()
        if config.json_out:
            inputs.write_text(config.json_out, output_contract.to_json(document), "--json-out")
        lines = report_lines(header, devices, rows, config.op, verdict)
        sys.stdout.write(output_contract.to_json(document) if config.json else "\n".join(lines) + "\n")
        sys.stdout.flush()
    return 0 if verdict.ok else 1


def run(config: BenchConfig) -> int:
    """Join the job, benchmark, leave; a collective that fails names the rank and host (exit 1)."""
    world = init_world(config.backend)
    try:
        return _benchmark(config, world)
    except RuntimeError as exc:  # NCCL/gloo errors (DistBackendError is one)
        host = os.environ.get("SLURMD_NODENAME") or socket.gethostname()
        print(f"error: rank {world.rank} on {host}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    finally:
        dist.destroy_process_group()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: one-line errors with exit code 2."""
    try:
        return run(config_from_args(argv))
    except (BenchError, inputs.InputError, instance_types.InstanceTypesError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
