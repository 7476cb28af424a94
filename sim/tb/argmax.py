"""cocotb testbench of :mod:`fpgallm.units.argmax`.

Each random test sends vectors of random run-time lengths under one combination of input
idling and output backpressure and checks every output beat ``(index, value)`` bit-exact
against ``golden()``.  Corner tests cover all-equal vectors, ties in one beat and across
beats, extreme and saturating values, length 1 and the maximum length; ``test_timing``
checks :attr:`ArgmaxParams.latency` and :attr:`ArgmaxParams.throughput` against measured cycles.
"""

from __future__ import annotations

import cocotb
import numpy as np

from fpgallm.hdl.fixed import smax, smin
from fpgallm.sim.bench import Bench, Point, params_from_env
from fpgallm.sim.stream import (ALL_PATTERNS, Pattern, Scoreboard, StreamDriver, StreamMonitor,
                                np_rng_for, rng_for, start_clock)
from fpgallm.sim.tb._vector import CycleCounter, HandshakeLog, to_beats
from fpgallm.units.argmax import ArgmaxParams, generate, golden

BENCH = Bench(
    unit="argmax",
    description="index and value of the maximum of a run-time-length vector (greedy sampling)",
    points=(
        Point("1lane-i16-len64", ArgmaxParams(lanes=1, in_width=16, max_length=64)),
        Point("7lane-i16-len100", ArgmaxParams(lanes=7, in_width=16, max_length=100)),
        # logits straight from an INT32 accumulator over a 64k vocabulary
        Point("16lane-i32-vocab64k", ArgmaxParams(lanes=16, in_width=32, max_length=65536)),
    ),
    generate=generate,
    test_module=__name__,
)

# Vectors longer than this are only used by the maximum-length corner (keeps runs short).
_RANDOM_MAX_LEN = 200


def _random_vectors(p: ArgmaxParams, rng: np.random.Generator, count: int) -> list[np.ndarray]:
    lo, hi = smin(p.in_width), smax(p.in_width)
    top = min(p.max_length, _RANDOM_MAX_LEN)
    vecs = []
    for _ in range(count):
        n = int(rng.integers(1, top + 1))
        kind = rng.integers(0, 3)
        if kind == 0:    # full range
            v = rng.integers(lo, hi + 1, size=n)
        elif kind == 1:  # few distinct values: many ties
            v = rng.integers(-2, 3, size=n)
        else:            # narrow range near the top
            v = rng.integers(hi - 3, hi + 1, size=n)
        vecs.append(v)
    return vecs


def _corner_vectors(p: ArgmaxParams, rng: np.random.Generator) -> list[np.ndarray]:
    lo, hi = smin(p.in_width), smax(p.in_width)
    top = min(p.max_length, 3 * p.lanes + 2)
    vecs = [
        np.array([lo]), np.array([hi]), np.array([0]),             # length 1
        np.full(top, 5), np.full(top, lo), np.full(top, hi),       # all equal -> index 0
    ]
    v = np.full(top, lo)
    v[-1] = hi                                                     # max at the very end
    vecs.append(v)
    v = np.full(top, lo)
    v[-1] = lo + 1                                                 # smallest margin at the end
    vecs.append(v)
    if top >= 3:
        v = np.zeros(top, dtype=np.int64)
        v[1] = v[2] = 7                                            # tie inside one beat
        vecs.append(v)
    if top > p.lanes + 1:
        v = np.zeros(top, dtype=np.int64)
        v[p.lanes + 1] = 9                                         # tie across beats: lowest wins
        v[p.lanes - 1] = 9
        v[-1] = 9
        vecs.append(v)
    return vecs


def _max_length_vector(p: ArgmaxParams, rng: np.random.Generator) -> np.ndarray:
    v = rng.integers(smin(p.in_width), smax(p.in_width), size=p.max_length)
    v[p.max_length // 3] = smax(p.in_width)
    v[-1] = smax(p.in_width)  # a later tie must lose
    return v


async def _run(dut, vecs, pin: Pattern, pout: Pattern, tag: str):
    p = params_from_env(ArgmaxParams)
    await start_clock(dut)
    words = [w for v in vecs for w in to_beats(v, p.lanes, p.in_width)]
    drv = StreamDriver(dut, "i", dut.clk, pin, rng_for(tag + "in"))
    mon = StreamMonitor(dut, "o", dut.clk, pout, rng_for(tag + "out")).start()
    await drv.send(words)
    await mon.wait_for(len(vecs), timeout_cycles=20 * len(words) + 1000)
    mon.stop()
    iw = p.index_width
    got = [(x & ((1 << iw) - 1), _signed(x >> iw, p.in_width)) for x in mon.items]
    sb = Scoreboard(f"argmax {tag}", fmt=lambda v: f"(index={v[0]}, value={v[1]})")
    sb.expect([golden(p, v) for v in vecs])
    sb.check(got)


def _signed(v: int, width: int) -> int:
    v &= (1 << width) - 1
    return v - (1 << width) if v >> (width - 1) else v


@cocotb.test()
@cocotb.parametrize(pin=ALL_PATTERNS, pout=ALL_PATTERNS)
async def test_random(dut, pin: Pattern, pout: Pattern):
    p = params_from_env(ArgmaxParams)
    tag = f"{pin.value}/{pout.value}"
    await _run(dut, _random_vectors(p, np_rng_for(tag), 8), pin, pout, tag)


@cocotb.test()
async def test_corners(dut):
    p = params_from_env(ArgmaxParams)
    await _run(dut, _corner_vectors(p, np_rng_for("corners")), Pattern.RANDOM, Pattern.RANDOM,
               "corners")


@cocotb.test()
async def test_max_length(dut):
    p = params_from_env(ArgmaxParams)
    rng = np_rng_for("maxlen")
    await _run(dut, [_max_length_vector(p, rng), np.array([1])], Pattern.NONE, Pattern.BURSTY,
               "maxlen")


@cocotb.test()
async def test_timing(dut):
    """No idling, no backpressure: latency per vector and one beat accepted every cycle."""
    p = params_from_env(ArgmaxParams)
    await start_clock(dut)
    rng = np_rng_for("timing")
    lengths = [1, p.lanes, min(p.max_length, 3 * p.lanes + 1), min(p.max_length, 40)]
    vecs = [rng.integers(-100, 100, size=n) for n in lengths]
    words = [w for v in vecs for w in to_beats(v, p.lanes, p.in_width)]
    counter = CycleCounter(dut.clk).start()
    ins = HandshakeLog(dut, "i", dut.clk).start(counter)
    outs = HandshakeLog(dut, "o", dut.clk).start(counter)
    drv = StreamDriver(dut, "i", dut.clk, Pattern.NONE)
    mon = StreamMonitor(dut, "o", dut.clk, Pattern.NONE).start()
    await drv.send(words)
    await mon.wait_for(len(vecs), timeout_cycles=1000)
    last_bit = 1 << (p.lanes * p.in_width + p.lanes.bit_length())
    last_cycles = [c for c, w in ins.events if w & last_bit]
    out_cycles = [c for c, _ in outs.events]
    assert len(last_cycles) == len(out_cycles) == len(vecs)
    measured = [o - i for i, o in zip(last_cycles, out_cycles)]
    assert measured == [p.latency] * len(vecs), \
        f"latency: measured {measured} cycles, ArgmaxParams.latency = {p.latency}"
    first, final = ins.events[0][0], ins.events[-1][0]
    elements = sum(lengths)
    beats = len(words)
    assert final - first + 1 == beats, \
        f"throughput: {beats} beats took {final - first + 1} cycles (expected one per cycle)"
    assert len(ins.events) == beats
    # elements per cycle at full beats equals the declared throughput
    assert p.throughput == p.lanes and elements <= beats * p.lanes
