"""cocotb testbench of :mod:`fpgallm.units.quantize`: bit-exact groups, latency, throughput."""

from __future__ import annotations

import itertools

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from fpgallm.sim.bench import Bench, Point, params_from_env
from fpgallm.sim.stream import (ALL_PATTERNS, Pattern, Scoreboard, StreamDriver, StreamMonitor,
                                np_rng_for, pack, rng_for, start_clock, unpack)
from fpgallm.units.quantize import QuantizeParams, generate, golden

BENCH = Bench(
    unit="quantize",
    description="group quantizer: wide fixed point -> INT8 with a power-of-two group scale",
    points=(
        Point("1lane-g1-i8", QuantizeParams(lanes=1, group=1, in_width=8, out_width=8)),
        Point("4lane-g8-i16", QuantizeParams(lanes=4, group=8, in_width=16)),
        Point("8lane-g32-i32", QuantizeParams(lanes=8, group=32, in_width=32)),
        Point("3lane-g12-i24-o6", QuantizeParams(lanes=3, group=12, in_width=24, out_width=6)),
    ),
    generate=generate,
    test_module=__name__,
)


def stimulus(p: QuantizeParams, rng: np.random.Generator, groups: int) -> np.ndarray:
    """Groups of random magnitude, plus corners: zeros, all equal, extremes, rounding edges."""
    hi = (1 << (p.in_width - 1)) - 1
    lo = -hi - 1
    out = []
    for g in range(groups):
        bits = int(rng.integers(1, p.in_width))
        mag = (1 << bits) - 1
        x = rng.integers(-mag, mag + 1, size=p.group)
        kind = g % 8
        if kind == 1:
            x[:] = 0
        elif kind == 2:
            x[:] = int(rng.integers(lo, hi + 1))
        elif kind == 3:
            x[:] = rng.choice([lo, hi], size=p.group)
        elif kind == 4:
            # the largest value sits just below a power of two: rounding up saturates
            e = int(rng.integers(1, max(2, p.in_width - p.out_width + 1)))
            top = min(hi, (1 << (p.out_width - 1 + e)) - 1)
            x[0] = top
        out.append(np.clip(x, lo, hi))
    return np.concatenate(out)


def _words(p, x):
    return [pack(x[k:k + p.lanes], p.in_width) for k in range(0, x.size, p.lanes)]


def _unpack_out(p, word):
    q = unpack(word, p.out_width, p.lanes)
    exp = word >> (p.out_width * p.lanes)
    return q, exp


async def _check(dut, pin: Pattern, pout: Pattern, groups: int = 24):
    p = params_from_env(QuantizeParams)
    tag = f"{pin.value}/{pout.value}"
    x = stimulus(p, np_rng_for(tag), groups)
    q, exps = golden(p, x)
    await start_clock(dut)
    drv = StreamDriver(dut, "i", dut.clk, pin, rng_for(tag + "in"))
    mon = StreamMonitor(dut, "o", dut.clk, pout, rng_for(tag + "out")).start()
    await drv.send(_words(p, x))
    nbeats = x.size // p.lanes
    await mon.wait_for(nbeats)
    mon.stop()
    got = [_unpack_out(p, w) for w in mon.items]
    expected = [(q[k * p.lanes:(k + 1) * p.lanes], int(exps[(k * p.lanes) // p.group]))
                for k in range(nbeats)]
    sb = Scoreboard(f"quantize {tag}", fmt=lambda v: (np.asarray(v[0]).tolist(), int(v[1])))
    sb.expect([(e[0].tolist(), e[1]) for e in expected])
    sb.check([(g[0].tolist(), int(g[1])) for g in got])


def _make(name, pin, pout):
    async def test(dut):
        await _check(dut, pin, pout)

    test.__name__ = test.__qualname__ = name
    return cocotb.test()(test)


for _pin, _pout in itertools.product(ALL_PATTERNS, ALL_PATTERNS):
    _name = f"test_{_pin.value}_in_{_pout.value}_out"
    globals()[_name] = _make(_name, _pin, _pout)
del _pin, _pout, _name


@cocotb.test()
async def test_latency_and_throughput(dut):
    """No idling, no backpressure: first output `latency` cycles after a group's last input
    beat, and G groups leave in G * beats_per_group cycles (one beat per cycle)."""
    p = params_from_env(QuantizeParams)
    groups = 6
    x = stimulus(p, np_rng_for("timing"), groups)
    await start_clock(dut)
    dut.o__ready.value = 1
    words = _words(p, x)
    accepted, outputs = [], []
    cycle = 0
    k = 0
    while len(outputs) < len(words):
        if k < len(words):
            dut.i__payload.value = words[k]
            dut.i__valid.value = 1
        else:
            dut.i__valid.value = 0
        await ReadOnly()
        if k < len(words) and dut.i__ready.value:
            accepted.append(cycle)
            k += 1
        if dut.o__valid.value:
            outputs.append(cycle)
        await RisingEdge(dut.clk)
        cycle += 1
        assert cycle < 10_000, "timeout"
    nb = p.beats_per_group
    first_group_last_in = accepted[nb - 1]
    assert outputs[0] - first_group_last_in == p.latency, (accepted[:nb], outputs[:2])
    assert accepted == list(range(len(words))), "input stalled"
    assert outputs[-1] - outputs[0] == len(words) - 1, "output not one beat per cycle"
