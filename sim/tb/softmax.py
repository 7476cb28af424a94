"""cocotb testbench of :mod:`fpgallm.units.softmax`.

Each random test sends vectors of random run-time lengths (attention-like scores of several
spreads, and uniform over the whole input range) under one combination of input idling and
output backpressure, and checks every output beat ``(data, n, last)`` bit-exact against
``golden()``.  Corner tests: all-equal vectors, extreme and saturating scores, length 1 and the
maximum length.  ``test_timing`` checks :meth:`SoftmaxParams.cycles` (and so ``latency`` and
``throughput``) against cycles measured with no stalls.
"""

from __future__ import annotations

import cocotb
import numpy as np

from fpgallm.hdl.fixed import smax, smin
from fpgallm.sim.bench import Bench, Point, params_from_env
from fpgallm.sim.stream import (ALL_PATTERNS, Pattern, Scoreboard, StreamDriver, StreamMonitor,
                                np_rng_for, rng_for, start_clock)
from fpgallm.sim.tb._vector import CycleCounter, HandshakeLog, expected_beats, from_beat, to_beats
from fpgallm.units.softmax import SoftmaxParams, generate, golden

BENCH = Bench(
    unit="softmax",
    description="softmax over a run-time-length vector (attention probabilities)",
    points=(
        Point("1lane-len16", SoftmaxParams(lanes=1, max_length=16)),
        Point("4lane-i8-o8-len64", SoftmaxParams(lanes=4, in_width=8, in_frac=4, max_length=64,
                                                 exp_frac=12, exp_table_bits=5, exp_interp_bits=6,
                                                 out_width=8, out_frac=7)),
        Point("5lane-len100", SoftmaxParams(lanes=5, max_length=100)),
    ),
    generate=generate,
    test_module=__name__,
)

_RANDOM_MAX_LEN = 40  # random vectors stay short; the maximum length has its own test


def _scores(p: SoftmaxParams, rng: np.random.Generator, n: int) -> np.ndarray:
    lo, hi = smin(p.in_width), smax(p.in_width)
    kind = int(rng.integers(0, 4))
    if kind == 3:
        return rng.integers(lo, hi + 1, size=n)
    spread = (0.5, 2.0, 8.0)[kind]  # standard deviation in real units
    real = rng.normal(0.0, spread, size=n) + rng.normal(0.0, 4.0)
    return np.clip(np.round(real * (1 << p.in_frac)), lo, hi).astype(np.int64)


def _random_vectors(p, rng, count):
    top = min(p.max_length, _RANDOM_MAX_LEN)
    return [_scores(p, rng, int(rng.integers(1, top + 1))) for _ in range(count)]


def _corner_vectors(p: SoftmaxParams, rng: np.random.Generator) -> list[np.ndarray]:
    lo, hi = smin(p.in_width), smax(p.in_width)
    top = min(p.max_length, 3 * p.lanes + 2)
    vecs = [np.array([lo]), np.array([hi]), np.array([0]),        # length 1: p = 1 saturates
            np.full(top, 3), np.full(top, lo), np.full(top, hi)]  # all equal: 1/n each
    v = np.full(top, lo)
    v[top // 2] = hi                                              # extreme: one of 1, the rest 0
    vecs.append(v)
    v = np.array([hi, lo] * ((top + 1) // 2))[:top]               # alternating extremes
    vecs.append(v)
    v = np.full(top, hi)
    v[-1] = hi - (1 << p.in_frac)                                 # one score 1.0 below the rest
    vecs.append(v)
    v = np.full(top, 0)
    v[0] = 1                                                      # smallest margin
    vecs.append(v)
    return vecs


async def _run(dut, vecs, pin: Pattern, pout: Pattern, tag: str):
    p = params_from_env(SoftmaxParams)
    await start_clock(dut)
    words = [w for v in vecs for w in to_beats(v, p.lanes, p.in_width)]
    drv = StreamDriver(dut, "i", dut.clk, pin, rng_for(tag + "in"))
    mon = StreamMonitor(dut, "o", dut.clk, pout, rng_for(tag + "out")).start()
    await drv.send(words)
    await mon.wait_for(len(words), timeout_cycles=20 * len(words) + 200 * len(vecs))
    mon.stop()
    sb = Scoreboard(f"softmax {tag}", fmt=lambda b: f"(data={list(b[0])}, n={b[1]}, last={b[2]})")
    for v in vecs:
        sb.expect(expected_beats(golden(p, v), p.lanes))
    got = []
    for w in mon.items:
        d, n, last = from_beat(w, p.lanes, p.out_width)
        got.append((tuple(int(x) for x in d), n, last))
    sb.check(got)


@cocotb.test()
@cocotb.parametrize(pin=ALL_PATTERNS, pout=ALL_PATTERNS)
async def test_random(dut, pin: Pattern, pout: Pattern):
    p = params_from_env(SoftmaxParams)
    tag = f"{pin.value}/{pout.value}"
    await _run(dut, _random_vectors(p, np_rng_for(tag), 6), pin, pout, tag)


@cocotb.test()
async def test_corners(dut):
    p = params_from_env(SoftmaxParams)
    await _run(dut, _corner_vectors(p, np_rng_for("corners")), Pattern.RANDOM, Pattern.RANDOM,
               "corners")


@cocotb.test()
async def test_max_length(dut):
    p = params_from_env(SoftmaxParams)
    rng = np_rng_for("maxlen")
    big = _scores(p, rng, p.max_length)
    flat = np.full(p.max_length, 7)
    await _run(dut, [big, flat, np.array([5])], Pattern.BURSTY, Pattern.RANDOM, "maxlen")


@cocotb.test()
async def test_timing(dut):
    """No idling, no backpressure: cycles(length) per vector, vectors back to back."""
    p = params_from_env(SoftmaxParams)
    await start_clock(dut)
    rng = np_rng_for("timing")
    lengths = sorted({1, p.lanes, min(p.max_length, 3 * p.lanes + 1), p.max_length})
    vecs = [_scores(p, rng, n) for n in lengths]
    counter = CycleCounter(dut.clk).start()
    ins = HandshakeLog(dut, "i", dut.clk).start(counter)
    outs = HandshakeLog(dut, "o", dut.clk).start(counter)
    words = [w for v in vecs for w in to_beats(v, p.lanes, p.in_width)]
    drv = StreamDriver(dut, "i", dut.clk, Pattern.NONE)
    mon = StreamMonitor(dut, "o", dut.clk, Pattern.NONE).start()
    await drv.send(words)
    await mon.wait_for(len(words), timeout_cycles=sum(p.period(n) for n in lengths) + 100)
    last_bit = 1 << (p.lanes * p.out_width + p.n_width)
    in_cycles = [c for c, _ in ins.events]
    out_last = [c for c, w in outs.events if w & last_bit]
    k = 0
    for vec_no, n in enumerate(lengths):
        beats = -(-n // p.lanes)
        first_in = in_cycles[k]
        assert in_cycles[k:k + beats] == list(range(first_in, first_in + beats)), \
            f"length {n}: input beats not accepted one per cycle: {in_cycles[k:k + beats]}"
        measured = out_last[vec_no] - first_in
        assert measured == p.cycles(n), \
            f"length {n}: measured {measured} cycles, SoftmaxParams.cycles = {p.cycles(n)}"
        if vec_no + 1 < len(lengths):
            nxt = in_cycles[k + beats]
            assert nxt - first_in == p.period(n), \
                f"length {n}: next vector after {nxt - first_in} cycles, period = {p.period(n)}"
        k += beats
    # the declared throughput is the long-vector limit of elements per period
    n = p.max_length
    assert abs(n / p.period(n) - p.throughput) <= p.throughput * (p.latency + 4) / (3 * -(-n // p.lanes))
