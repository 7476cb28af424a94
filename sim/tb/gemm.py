"""cocotb testbench of :mod:`fpgallm.units.gemm`.

Each test streams a few jobs (M x K by K x N, tile by tile) under one idle/backpressure
pattern on both input streams and one on the output, and checks every output beat
bit-exact against ``golden()``.  Operands are seeded random with extremes (-128 / 127
activations, -128 / 127 or -8 / 7 weights, all-zero rows and columns).  With no stalls the
cycle count (first input beat to last output beat) must equal ``GemmParams.cycles``.
"""

from __future__ import annotations

import cocotb
import numpy as np

from fpgallm.sim.bench import Bench, Point, params_from_env
from fpgallm.sim.stream import (Pattern, Scoreboard, StreamDriver, StreamMonitor, np_rng_for,
                                pack, rng_for, start_clock, unpack)
from fpgallm.units.gemm import GemmParams, GemmWeights, generate, tile_streams

BENCH = Bench(
    unit="gemm",
    description="output-stationary systolic GEMM, INT8 x INT8 / INT4 weights",
    points=(
        Point("2x2-i8", GemmParams(rows=2, cols=2, max_k=256)),
        Point("4x4-i4", GemmParams(rows=4, cols=4, weights=GemmWeights.INT4, max_k=256)),
        Point("3x4-i8-pack", GemmParams(rows=3, cols=4, max_k=256, dsp_pack=True)),
        Point("4x8-i4-pack", GemmParams(rows=4, cols=8, weights=GemmWeights.INT4, max_k=256,
                                        dsp_pack=True)),
        Point("1x3-i8", GemmParams(rows=1, cols=3, max_k=64)),
    ),
    generate=generate,
    test_module=__name__,
)


def make_job(p: GemmParams, rng: np.random.Generator, m: int, k: int, n: int, extremes: bool):
    lo, hi = -(1 << (p.weights.bits - 1)), (1 << (p.weights.bits - 1)) - 1
    a = rng.integers(-128, 128, size=(m, k))
    b = rng.integers(lo, hi + 1, size=(k, n))
    if extremes:
        a[0, :] = -128
        b[:, 0] = lo
        if m > 1:
            a[1, :] = 127
        if n > 1:
            b[:, 1] = hi
        a[m - 1, :] = 0 if m > 2 else a[m - 1, :]
        b[:, n - 1] = 0 if n > 2 else b[:, n - 1]
        b[: k // 2, 0] = hi
    return a, b


class _Handshakes:
    def __init__(self, dut):
        self.dut = dut
        self.i: list[int] = []
        self.o: list[int] = []
        self.cycle = 0

    async def run(self):
        from cocotb.triggers import ReadOnly, RisingEdge

        d = self.dut
        while True:
            await ReadOnly()
            if d.a__valid.value and d.a__ready.value and d.b__valid.value:
                self.i.append(self.cycle)
            if d.o__valid.value and d.o__ready.value:
                self.o.append(self.cycle)
            await RisingEdge(d.clk)
            self.cycle += 1


async def run_jobs(dut, p: GemmParams, jobs, pin: Pattern, pout: Pattern, tag: str,
                   check_cycles: bool = False):
    """Run jobs [(A, B)] (each with its own k_len); return measured cycles per job."""
    from cocotb.triggers import RisingEdge

    await start_clock(dut)
    hs = _Handshakes(dut)
    cocotb.start_soon(hs.run())
    mon = StreamMonitor(dut, "o", dut.clk, pout, rng_for(tag + "o")).start()
    sb = Scoreboard(f"gemm {tag}", fmt=lambda v: np.asarray(v).tolist())
    measured = []
    total = 0
    for j, (a, b) in enumerate(jobs):
        dut.k_len.value = a.shape[1]
        ab, bb, out = tile_streams(p, a, b)
        sb.expect(out)
        n0 = len(hs.i)
        da = StreamDriver(dut, "a", dut.clk, pin, rng_for(f"{tag}a{j}"))
        db = StreamDriver(dut, "b", dut.clk, pin, rng_for(f"{tag}b{j}"))
        ta = cocotb.start_soon(da.send([pack(v, 8) for v in ab]))
        tb = cocotb.start_soon(db.send([pack(v, p.weights.bits) for v in bb]))
        total += len(out)
        await mon.wait_for(total, timeout_cycles=200_000)
        await ta
        await tb
        await RisingEdge(dut.clk)
        measured.append(hs.o[total - 1] - hs.i[n0] + 1)
        if check_cycles:
            want = p.cycles(a.shape[0], a.shape[1], b.shape[1])
            assert measured[-1] == want, (f"gemm {tag} job {j} {a.shape}x{b.shape}: "
                                          f"{measured[-1]} cycles, cycles() says {want}")
    mon.stop()
    sb.check([unpack(v, p.acc_width, p.cols) for v in mon.items])
    return measured


def _shapes(p: GemmParams):
    R, C, k0 = p.rows, p.cols, p.min_k
    return [(2 * R, k0, 2 * C), (R, k0 + 5, C), (3 * R, 2 * k0 + 3, C)]


async def _check(dut, pin, pout, extremes, check_cycles=False):
    p = params_from_env(GemmParams)
    tag = f"{pin.value}/{pout.value}/{'ext' if extremes else 'rnd'}"
    rng = np_rng_for(tag)
    jobs = [make_job(p, rng, m, k, n, extremes) for m, k, n in _shapes(p)]
    await run_jobs(dut, p, jobs, pin, pout, tag, check_cycles)


@cocotb.test()
async def test_cycles_no_stall(dut):
    await _check(dut, Pattern.NONE, Pattern.NONE, extremes=False, check_cycles=True)


@cocotb.test()
@cocotb.parametrize((("pin", "pout"), [(Pattern.RANDOM, Pattern.RANDOM),
                                       (Pattern.BURSTY, Pattern.BURSTY)]))
async def test_random(dut, pin: Pattern, pout: Pattern):
    await _check(dut, pin, pout, extremes=False)


@cocotb.test()
@cocotb.parametrize((("pin", "pout"), [(Pattern.RANDOM, Pattern.NONE),
                                       (Pattern.NONE, Pattern.RANDOM),
                                       (Pattern.BURSTY, Pattern.BURSTY)]))
async def test_extremes(dut, pin: Pattern, pout: Pattern):
    await _check(dut, pin, pout, extremes=True)


@cocotb.test()
async def test_cycles_moderate(dut):
    """A larger job with no stalls: cycles == cycles(), utilization reported in the log."""
    p = params_from_env(GemmParams)
    rng = np_rng_for("moderate")
    k = min(p.max_k, 64)
    a, b = make_job(p, rng, 4 * p.rows, k, 4 * p.cols, False)
    [cyc] = await run_jobs(dut, p, [(a, b)], Pattern.NONE, Pattern.NONE, "moderate", True)
    dut._log.info("utilization %.4f", p.utilization(a.shape[0], k, b.shape[1], cyc))
