"""cocotb testbench of :mod:`fpgallm.units.elementwise`.

Each test drives random and corner beats under one combination of input idling and
output backpressure, and checks every output beat bit-exact against ``golden()``.
"""

from __future__ import annotations

import itertools

import cocotb
import numpy as np

from fpgallm.hdl.fixed import smax, smin
from fpgallm.sim.bench import Bench, Point, params_from_env
from fpgallm.sim.stream import (ALL_PATTERNS, Pattern, Scoreboard, StreamDriver, StreamMonitor,
                                np_rng_for, pack, rng_for, start_clock, unpack)
from fpgallm.units.elementwise import ElementwiseOp, ElementwiseParams, generate, golden

BENCH = Bench(
    unit="elementwise",
    description="residual add / multiply with requantization and saturation",
    points=(
        Point("add-1lane", ElementwiseParams(op=ElementwiseOp.ADD, lanes=1)),
        Point("mul-4lane", ElementwiseParams(op=ElementwiseOp.MUL, lanes=4, mult_width=12)),
        Point("add-5lane-i16-o12", ElementwiseParams(op=ElementwiseOp.ADD, lanes=5, in_width=16,
                                                     out_width=12, mult_width=16)),
        Point("mul-16lane-o16", ElementwiseParams(op=ElementwiseOp.MUL, lanes=16, out_width=16)),
    ),
    generate=generate,
    test_module=__name__,
)


def _stimulus(p: ElementwiseParams, rng: np.random.Generator, beats: int):
    lo, hi = smin(p.in_width), smax(p.in_width)
    a = rng.integers(lo, hi + 1, size=(beats, p.lanes))
    b = rng.integers(lo, hi + 1, size=(beats, p.lanes))
    # corners: extremes of both operands in every combination
    corners = np.array(list(itertools.product((lo, hi, 0, -1), repeat=2)))
    n = min(beats, len(corners))
    a[:n] = corners[:n, :1]
    b[:n] = corners[:n, 1:]
    return a, b


async def _check(dut, pin: Pattern, pout: Pattern, cfg, beats: int = 120):
    p = params_from_env(ElementwiseParams)
    tag = f"{pin.value}/{pout.value}/{cfg}"
    rng = np_rng_for(tag)
    mult_max = (1 << p.mult_width) - 1
    if cfg == "saturate":
        mult_a = mult_b = mult_max
        shift = 0
    elif cfg == "identity":
        mult_a = mult_b = 1
        shift = 0
    else:
        mult_a = int(rng.integers(0, mult_max + 1))
        mult_b = int(rng.integers(0, mult_max + 1))
        # around the shift that maps the full accumulator range onto the output range
        natural = p.acc_width - p.out_width
        shift = int(rng.integers(max(0, natural - 4), min(p.max_shift, natural + 2) + 1))
    dut.mult_a.value = mult_a
    dut.mult_b.value = mult_b
    dut.shift.value = shift
    await start_clock(dut)
    a, b = _stimulus(p, rng, beats)
    expected = golden(p, a, b, mult_a, mult_b, shift)
    w = p.in_width
    words = [pack(a[k], w) | (pack(b[k], w) << (w * p.lanes)) for k in range(beats)]
    drv = StreamDriver(dut, "i", dut.clk, pin, rng_for(tag + "in"))
    mon = StreamMonitor(dut, "o", dut.clk, pout, rng_for(tag + "out")).start()
    await drv.send(words)
    await mon.wait_for(beats)
    mon.stop()
    sb = Scoreboard(f"elementwise {tag} (mult_a={mult_a} mult_b={mult_b} shift={shift})",
                    fmt=lambda v: np.asarray(v).tolist())
    sb.expect(list(expected))
    sb.check([unpack(x, p.out_width, p.lanes) for x in mon.items])


@cocotb.test()
@cocotb.parametrize(pin=ALL_PATTERNS, pout=ALL_PATTERNS)
async def test_random(dut, pin: Pattern, pout: Pattern):
    """Random multipliers and shift under one input / output stall pattern."""
    await _check(dut, pin, pout, "random")


@cocotb.test()
async def test_saturate(dut):
    await _check(dut, Pattern.RANDOM, Pattern.BURSTY, "saturate")


@cocotb.test()
async def test_identity(dut):
    await _check(dut, Pattern.NONE, Pattern.NONE, "identity")


@cocotb.test()
async def test_latency_and_throughput(dut):
    """No idling, no backpressure: each output `latency` cycles after its input, one beat
    per cycle."""
    from cocotb.triggers import ReadOnly, RisingEdge

    p = params_from_env(ElementwiseParams)
    dut.mult_a.value = 1
    dut.mult_b.value = 1
    dut.shift.value = 0
    await start_clock(dut)
    dut.o__ready.value = 1
    beats = 20
    accepted, outputs = [], []
    cycle = k = 0
    while len(outputs) < beats:
        dut.i__valid.value = int(k < beats)
        dut.i__payload.value = k
        await ReadOnly()
        if k < beats and dut.i__ready.value:
            accepted.append(cycle)
            k += 1
        if dut.o__valid.value:
            outputs.append(cycle)
        await RisingEdge(dut.clk)
        cycle += 1
        assert cycle < 1000, "timeout"
    assert [o - a for a, o in zip(accepted, outputs)] == [p.latency] * beats
    assert outputs == list(range(outputs[0], outputs[0] + beats)), "not one beat per cycle"
