import numpy as np
import pytest

from fpgallm.sim.runner import lint
from fpgallm.units.quantize import QuantizeParams, dequantize, generate, golden, group_exponent
from tests.benchutil import assert_bench_passes, bench_points


@pytest.mark.parametrize("bench,point", bench_points("quantize"))
def test_rtl_bit_exact_latency_throughput(bench, point, seed, tmp_path):
    report = assert_bench_passes(bench, point, seed, tmp_path)
    assert len(report.tests) == 10  # 9 idle/backpressure combinations + timing


@pytest.mark.parametrize("bench,point", bench_points("quantize"))
def test_lint_clean(bench, point):
    assert lint(generate(point.params)) == []


@pytest.mark.parametrize("p", [QuantizeParams(), QuantizeParams(lanes=3, group=12, in_width=24, out_width=6)])
def test_error_bound_over_random_inputs(p, seed):
    rng = np.random.default_rng(seed)
    worst_half = worst_sat = 0.0
    for _ in range(200):
        bits = rng.integers(1, p.in_width, size=64)
        x = np.concatenate([rng.integers(-(1 << b) + 1, 1 << b, size=p.group) for b in bits])
        q, e = golden(p, x)
        err = np.abs(dequantize(p, q, e) - x).reshape(-1, p.group) / (2.0 ** e[:, None])
        sat = np.abs(q.reshape(-1, p.group)) == (1 << (p.out_width - 1)) - 1
        worst_half = max(worst_half, err[~sat].max(initial=0))
        worst_sat = max(worst_sat, err[sat].max(initial=0))
    assert worst_half <= 0.5
    assert worst_sat <= 1.0


def test_exponent_is_minimal_and_exact_at_powers_of_two():
    p = QuantizeParams(in_width=32, out_width=8)
    m = np.array([0, 1, 127, 128, 255, 256, 2**31 - 1, 2**31])
    assert group_exponent(p, m).tolist() == [0, 0, 0, 1, 1, 2, 24, 25]


def test_golden_matches_python_reference(seed):
    p = QuantizeParams(lanes=4, group=8, in_width=16)
    rng = np.random.default_rng(seed)
    x = rng.integers(-(1 << 15), 1 << 15, size=64)
    q, e = golden(p, x)
    for g in range(8):
        grp = [int(v) for v in x[g * 8:(g + 1) * 8]]
        m = max(abs(v) for v in grp)
        ee = max(0, m.bit_length() - 7)
        assert e[g] == ee
        for k, v in enumerate(grp):
            r = (v + ((1 << ee) >> 1)) >> ee
            assert q[g * 8 + k] == min(max(r, -128), 127)


@pytest.mark.parametrize("kwargs,message", [
    ({"group": 10, "lanes": 4}, "QuantizeParams.group must be a multiple of lanes=4, got 10"),
    ({"out_width": 17}, "QuantizeParams.out_width must be an integer in [2, 16], got 17"),
    ({"in_width": 6, "out_width": 8}, "QuantizeParams.out_width must be <= in_width=6, got 8"),
])
def test_params_validation(kwargs, message):
    with pytest.raises(ValueError) as exc:
        QuantizeParams(**kwargs)
    assert str(exc.value) == message


def test_golden_rejects_partial_groups():
    with pytest.raises(ValueError, match=r"^input length must be a multiple of group=32, got shape \(33,\)$"):
        golden(QuantizeParams(), np.zeros(33, dtype=np.int64))
