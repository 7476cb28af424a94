import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fpgallm.sim.runner import lint
from fpgallm.units.gemm import GemmParams, GemmWeights, generate, golden, tile_streams
from tests.benchutil import assert_bench_passes, bench_points


@pytest.mark.parametrize("bench,point", bench_points("gemm"))
def test_rtl_bit_exact_under_backpressure(bench, point, seed, tmp_path):
    report = assert_bench_passes(bench, point, seed, tmp_path)
    assert len(report.tests) == 7


def test_bench_covers_both_weight_formats_and_packing():
    from fpgallm.sim.bench import benches

    pts = [pt.params for pt in benches()["gemm"].points]
    assert len(pts) >= 4
    assert {p.weights for p in pts} == set(GemmWeights)
    assert {p.dsp_pack for p in pts} == {True, False}


@pytest.mark.parametrize("params", [GemmParams(rows=1, cols=1, max_k=16),
                                    GemmParams(rows=3, cols=6, weights=GemmWeights.INT4,
                                               dsp_pack=True, max_k=1024)],
                         ids=["1x1", "3x6-int4-pack"])
def test_lint_clean(params):
    assert lint(generate(params)) == []


@pytest.mark.parametrize("kwargs,message", [
    (dict(rows=0), "GemmParams.rows must be an integer in [1, 64], got 0"),
    (dict(cols=3, dsp_pack=True), "GemmParams: dsp_pack needs an even number of cols, got 3"),
    (dict(rows=8, cols=8, max_k=8), "GemmParams: max_k 8 is below the smallest tile k 16"),
    (dict(weights="int4"), "GemmParams.weights must be a GemmWeights, got 'int4'"),
])
def test_params_validation_messages(kwargs, message):
    with pytest.raises(ValueError) as exc:
        GemmParams(**kwargs)
    assert str(exc.value) == message


def test_utilization_formula_on_large_tiles():
    for p in (GemmParams(rows=8, cols=8), GemmParams(rows=16, cols=16, dsp_pack=True),
              GemmParams(rows=4, cols=8, weights=GemmWeights.INT4)):
        for m, k, n in ((64, 256, 64), (128, 576, 128), (32, 1536, 64)):
            assert p.utilization(m, k, n, p.cycles(m, k, n)) >= 0.90


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.data())
def test_golden_and_tiling_match_python_integers(data):
    r = data.draw(st.integers(1, 4))
    c = data.draw(st.integers(1, 4))
    w = data.draw(st.sampled_from(list(GemmWeights)))
    p = GemmParams(rows=r, cols=c, weights=w, max_k=64)
    m, n = r * data.draw(st.integers(1, 3)), c * data.draw(st.integers(1, 3))
    k = data.draw(st.integers(p.min_k, 64))
    lo, hi = -(1 << (w.bits - 1)), (1 << (w.bits - 1)) - 1
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    a = rng.integers(-128, 128, size=(m, k))
    b = rng.integers(lo, hi + 1, size=(k, n))
    if data.draw(st.booleans()):
        a[:] = data.draw(st.sampled_from([-128, 127]))
        b[:] = data.draw(st.sampled_from([lo, hi]))
    ref = [[sum(int(a[i, kk]) * int(b[kk, j]) for kk in range(k)) for j in range(n)]
           for i in range(m)]
    assert golden(p, a, b).tolist() == ref
    # the stream order of tile_streams: rebuild Y from the expected output beats
    ab, bb, out = tile_streams(p, a, b)
    assert len(ab) == len(bb) == (m // r) * (n // c) * k
    y = np.zeros((m, n), dtype=np.int64)
    it = iter(out)
    for ti in range(m // r):
        for tj in range(n // c):
            for rr in range(r):
                y[ti * r + rr, tj * c:(tj + 1) * c] = next(it)
    assert y.tolist() == ref
    # widths: the largest |sum| fits acc_width
    assert max(abs(v) for row in ref for v in row) < 2 ** (p.acc_width - 1)


def test_golden_rejects_out_of_range():
    p = GemmParams(rows=1, cols=1, weights=GemmWeights.INT4, max_k=16)
    with pytest.raises(ValueError, match=r"B must be in \[-8, 7\]"):
        golden(p, np.zeros((1, 4), int), np.full((4, 1), 8))
    with pytest.raises(ValueError, match=r"K must be in \[2, 16\]"):
        golden(p, np.zeros((1, 17), int), np.zeros((17, 1), int))
