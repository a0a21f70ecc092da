"""nccl-tests' size and bandwidth definitions (no processes)."""

from __future__ import annotations

import pytest
from nccl_bench import formulas


@pytest.mark.parametrize(
    ("op", "ranks", "factor"),
    [
        ("all_reduce", 16, 2 * 15 / 16),
        ("all_reduce", 1, 0.0),
        ("all_gather", 8, 7 / 8),
        ("reduce_scatter", 2, 0.5),
        ("alltoall", 16, 15 / 16),
        ("broadcast", 8, 1.0),
    ],
)
def test_bus_factor_matches_nccl_tests(op, ranks, factor):
    assert formulas.bus_factor(op, ranks) == pytest.approx(factor)


def test_busbw_of_a_published_row():
    # 2x p5.48xlarge, 16 ranks, 16 GiB all_reduce in 65944.9 us: nccl-tests printed 260.52 / 488.47.
    algbw = formulas.algbw_gbytes_per_s(17179869184, 65944.9)
    assert algbw == pytest.approx(260.52, abs=0.01)
    assert formulas.busbw_from_algbw("all_reduce", algbw, 16) == pytest.approx(488.47, abs=0.01)


def test_sizes_and_sweep():
    assert [formulas.parse_size(s) for s in ("8", "64K", "16M", "4G", "1GB", "2g")] == [
        8,
        65536,
        16 << 20,
        4 << 30,
        1 << 30,
        2 << 30,
    ]
    assert formulas.sweep(8, 64, 2) == [8, 16, 32, 64]
    assert formulas.sweep(1024, 5000, 4) == [1024, 4096]
    assert formulas.element_count("all_gather", 36, 4, 2) == 8  # 9 floats, rounded to a multiple of 2
    assert formulas.element_count("all_reduce", 36, 4, 2) == 9


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: formulas.parse_size("1.5G"), "size '1.5G' is not a number"),
        (lambda: formulas.sweep(64, 8, 2), "need 1 <= -b <= -e"),
        (lambda: formulas.sweep(8, 64, 1), "-f 1: the step factor must be at least 2"),
        (lambda: formulas.bus_factor("allreduce", 2), "unknown collective 'allreduce'"),
    ],
)
def test_bad_values_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
