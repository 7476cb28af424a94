"""cocotb testbench of :mod:`fpgallm.units.gemv`.

Each test runs a few jobs (activation load, weight and scale streams, outputs) under one
idle/backpressure pattern on every input stream (``x``, ``w``, ``s``) and one on ``o``, and
checks every output beat bit-exact against ``golden()``.  Matrices are seeded random with
extremes: rows of the most negative / most positive quant, all-zero groups, zero and maximal
scales, activations at -128 / 127.  With no stalls, each job's cycle count (first weight word
accepted to last output accepted) must equal ``GemvParams.cycles``.
"""

from __future__ import annotations

from dataclasses import replace

import cocotb
import numpy as np

from fpgallm.sim.bench import Bench, Point, params_from_env
from fpgallm.sim.stream import (Pattern, Scoreboard, StreamDriver, StreamMonitor, np_rng_for,
                                pack, rng_for, start_clock, unpack)
from fpgallm.hdl.dsp import MulStyle
from fpgallm.units.gemv import GemvOutput, GemvParams, generate, golden, golden_acc, pack as pack_matrix
from fpgallm.units.weights import WeightFormat

BENCH = Bench(
    unit="gemv",
    description="GEMV engine: P lanes x K MACs, INT8-row / Q8_0 / Q4_0 / Q4_1 weights",
    points=(
        Point("int8row-p4-w128", GemvParams(fmt=WeightFormat.INT8_ROW, lanes=4, word_bits=128,
                                            max_cols=512, max_rows=64)),
        Point("q8g32-p2-w256-pack-i8", GemvParams(fmt=WeightFormat.INT8_GROUP, lanes=2, group=32,
                                                  word_bits=256, max_cols=512, max_rows=64,
                                                  output=GemvOutput.INT8, dsp_pack=True)),
        Point("q4g64-p4-w256", GemvParams(fmt=WeightFormat.INT4_GROUP, lanes=4, group=64,
                                          word_bits=256, max_cols=512, max_rows=64)),
        # three activation RAM copies of 3, 3 and 2 lanes (a fan-out splitting a packed pair)
        Point("q4mg32-p8-w256-pack-i8-xf3", GemvParams(fmt=WeightFormat.INT4_GROUP_MIN, lanes=8,
                                                       group=32, word_bits=256, max_cols=512,
                                                       max_rows=64, output=GemvOutput.INT8,
                                                       dsp_pack=True, x_fanout=3)),
        # MULT18X18D instances with their own registers (simulated with the primitive's model)
        Point("q4mg32-p4-w128-i8-ecp5", GemvParams(fmt=WeightFormat.INT4_GROUP_MIN, lanes=4,
                                                   group=32, word_bits=128, max_cols=512,
                                                   max_rows=64, output=GemvOutput.INT8,
                                                   mul_style=MulStyle.ECP5)),
        Point("q4mg128-p2-w128", GemvParams(fmt=WeightFormat.INT4_GROUP_MIN, lanes=2, group=128,
                                            word_bits=128, max_cols=512, max_rows=64,
                                            max_shift=12, guard=4)),
        # the decode engine's configuration: block-scaled activations, group chosen per job
        Point("q8rg-p2-w128-exp", GemvParams(fmt=WeightFormat.INT8_GROUP, lanes=2, group=128,
                                             word_bits=128, max_cols=512, max_rows=64,
                                             act_exp_max=17, runtime_group=True)),
        Point("q4mrg-p4-w256-exp", GemvParams(fmt=WeightFormat.INT4_GROUP_MIN, lanes=4, group=128,
                                              word_bits=256, max_cols=512, max_rows=64,
                                              act_exp_max=17, runtime_group=True)),
        Point("int8row-p2-w128-exp", GemvParams(fmt=WeightFormat.INT8_ROW, lanes=2, word_bits=128,
                                                max_cols=256, max_rows=64, act_exp_max=17)),
        Point("q4g32-p2-w64-exp", GemvParams(fmt=WeightFormat.INT4_GROUP, lanes=2, group=32,
                                             word_bits=64, max_cols=256, max_rows=64,
                                             act_exp_max=17, guard=6)),
    ),
    generate=generate,
    test_module=__name__,
)


def _fp16(rng, shape, lo_exp=-14, hi_exp=4):
    v = rng.choice([-1.0, 1.0], size=shape) * np.exp2(rng.uniform(lo_exp, hi_exp, size=shape))
    return v.astype(np.float16).astype(np.float64)


def job_params(p: GemvParams, rng: np.random.Generator, cols: int) -> GemvParams:
    """The packing parameters of one job: with ``runtime_group`` a random group <= ``group``."""
    if not p.runtime_group:
        return p
    choices = [g for g in (32, 64, 128) if g <= p.group and g % p.k == 0 and cols % g == 0]
    return replace(p, group=int(rng.choice(choices)), runtime_group=False)


def make_job(p: GemvParams, rng: np.random.Generator, rows: int, cols: int, extremes: bool):
    """A random packed matrix, activation vector (and exponents), requantization for ``p``."""
    p = job_params(p, rng, cols)
    f = p.fmt
    q = rng.integers(f.q_min, f.q_max + 1, size=(rows, cols))
    x = rng.integers(-128, 128, size=cols)
    exps = None
    if p.act_exp_max:
        exps = rng.integers(0, p.act_exp_max + 1, size=cols // 32)
        if extremes:
            exps[::2] = p.act_exp_max
    groups = cols // p.group if f.grouped else 1
    g = cols // groups
    d = _fp16(rng, (rows, groups))
    mins = _fp16(rng, (rows, groups)) if f.has_min else None
    if extremes:
        q[0, :] = f.q_min
        if rows > 1:
            q[1, :] = f.q_max
        x[: cols // 2] = -128
        x[cols // 2:] = 127
        x[::7] = 0
        # all-zero groups (quants and / or scales), maximal scales
        for _ in range(max(1, rows * groups // 4)):
            r, gg = rng.integers(rows), rng.integers(groups)
            q[r, gg * g:(gg + 1) * g] = 0 if f.is_signed else rng.integers(0, 2)
            if rng.random() < 0.5:
                d[r, gg] = 0.0
        d[0, 0] = 65504.0
        d[rows - 1, groups - 1] = -65504.0
        if mins is not None:
            mins[0, 0] = 65504.0
            mins[rows - 1, 0] = -65504.0
    pm = pack_matrix(p, q, d, mins)
    out_mult, out_shift = 1, 0
    if p.output is GemvOutput.INT8:
        acc = golden_acc(pm, x, exps)
        out_mult = int(rng.integers(1, 1 << p.out_mult_bits))
        top = int(np.abs(acc).max()) * out_mult
        out_shift = max(0, top.bit_length() - 8 + int(rng.integers(-1, 2)))
        out_shift = min(out_shift, 62, (1 << p.out_shift_width) - 1)
    return pm, x, out_mult, out_shift, exps


class _Handshakes:
    """Cycle numbers of every w and o handshake."""

    def __init__(self, dut):
        self.dut = dut
        self.w: list[int] = []
        self.o: list[int] = []
        self.cycle = 0

    async def run(self):
        from cocotb.triggers import ReadOnly, RisingEdge

        d = self.dut
        while True:
            await ReadOnly()
            if d.w__valid.value and d.w__ready.value:
                self.w.append(self.cycle)
            if d.o__valid.value and d.o__ready.value:
                self.o.append(self.cycle)
            await RisingEdge(d.clk)
            self.cycle += 1


async def run_jobs(dut, p: GemvParams, jobs, pin: Pattern, pout: Pattern, tag: str,
                   check_cycles: bool = False):
    """Run ``jobs`` = [(pm, x, out_mult, out_shift, exps)] in order; return measured cycles per job."""
    await start_clock(dut)
    hs = _Handshakes(dut)
    cocotb.start_soon(hs.run())
    mon = StreamMonitor(dut, "o", dut.clk, pout, rng_for(tag + "o")).start()
    sb = Scoreboard(f"gemv {tag}", fmt=lambda v: np.asarray(v).tolist())
    measured = []
    done_out = 0
    for j, (pm, x, om, osh, ex) in enumerate(jobs):
        dut.cols_words.value = pm.cols // p.k
        dut.row_tiles.value = pm.rows // p.lanes
        dut.out_mult.value = om
        dut.out_shift.value = osh
        if p.runtime_group:
            dut.group_words.value = pm.params.group // p.k
        exp = golden(pm, x, om, osh, ex).reshape(-1, p.lanes)
        sb.expect(list(exp))
        nw0 = len(hs.w)
        xw = [pack(x[c * p.k:(c + 1) * p.k], 8) for c in range(pm.cols // p.k)]
        if p.act_exp_max:
            xw = [w | (int(ex[c * p.k // 32]) << (8 * p.k)) for c, w in enumerate(xw)]
        dx = StreamDriver(dut, "x", dut.clk, pin, rng_for(f"{tag}x{j}"))
        dw = StreamDriver(dut, "w", dut.clk, pin, rng_for(f"{tag}w{j}"))
        ds = StreamDriver(dut, "s", dut.clk, pin, rng_for(f"{tag}s{j}"))
        tx = cocotb.start_soon(dx.send(xw))
        tw = cocotb.start_soon(dw.send(pm.weight_words()))
        ts = cocotb.start_soon(ds.send(pm.scale_words()))
        done_out += len(exp)
        await mon.wait_for(done_out, timeout_cycles=200_000)
        await tx
        await tw
        await ts
        from cocotb.triggers import RisingEdge
        await RisingEdge(dut.clk)
        await RisingEdge(dut.clk)
        measured.append(hs.o[done_out - 1] - hs.w[nw0] + 1)
        if check_cycles:
            want = p.cycles(pm.rows, pm.cols)
            assert measured[-1] == want, (f"gemv {tag} job {j} ({pm.rows}x{pm.cols}): "
                                          f"{measured[-1]} cycles, cycles() says {want}")
    mon.stop()
    sb.check([unpack(v, p.out_width, p.lanes) for v in mon.items])
    return measured


def _shapes(p: GemvParams):
    unit = p.group if p.fmt.grouped else max(p.k, 32 if p.act_exp_max else 1)
    return [(p.lanes * 2, unit * 2), (p.lanes * 3, unit), (p.lanes, min(p.max_cols, unit * 4))]


async def _check(dut, pin: Pattern, pout: Pattern, extremes: bool, check_cycles: bool = False):
    p = params_from_env(GemvParams)
    tag = f"{pin.value}/{pout.value}/{'ext' if extremes else 'rnd'}"
    rng = np_rng_for(tag)
    jobs = [make_job(p, rng, r, c, extremes) for r, c in _shapes(p)]
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
                                       (Pattern.BURSTY, Pattern.RANDOM)]))
async def test_extremes(dut, pin: Pattern, pout: Pattern):
    await _check(dut, pin, pout, extremes=True)


@cocotb.test()
async def test_cycles_moderate(dut):
    """A 64 x 512 (or largest fitting) matrix with no stalls: cycles == cycles()."""
    p = params_from_env(GemvParams)
    rng = np_rng_for("moderate")
    rows = min(64, p.max_rows)
    cols = p.max_cols
    await run_jobs(dut, p, [make_job(p, rng, rows, cols, False)], Pattern.NONE, Pattern.NONE,
                   "moderate", check_cycles=True)
