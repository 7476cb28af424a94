"""cocotb testbench of :mod:`fpgallm.units.norm` (RMSNorm / LayerNorm).

Vectors of random run-time lengths go into ``i`` (with ``last``), their weights into ``w``
(gamma, and beta for LayerNorm); every output beat is checked bit-exact against ``golden()``
under each idle/backpressure combination (the same pattern drives both inputs).  A corner run
covers length one beat and ``max_len``, all-equal vectors (zero variance: only eps), extreme
magnitudes, tiny magnitudes and saturating outputs; a timing run measures the latency and
the cycles per vector.
"""

from __future__ import annotations

import cocotb
import numpy as np

from fpgallm.hdl.fixed import smax, smin
from fpgallm.sim.bench import Bench, Point, params_from_env
from fpgallm.sim.stream import (ALL_PATTERNS, Pattern, Scoreboard, StreamDriver, StreamMonitor,
                                np_rng_for, pack, rng_for, start_clock, unpack)
from fpgallm.sim.tb._handshakes import Handshakes
from fpgallm.units.norm import NormKind, NormParams, generate, golden

BENCH = Bench(
    unit="norm",
    description="RMSNorm / LayerNorm: exact sums, rsqrt by table + Newton, weight and bias",
    points=(
        Point("rms-1lane-32", NormParams(kind=NormKind.RMS, lanes=1, max_len=32)),
        Point("ln-4lane-64", NormParams(kind=NormKind.LAYER, lanes=4, max_len=64)),
        Point("ln-3lane-576", NormParams(kind=NormKind.LAYER, lanes=3, max_len=576)),
        Point("rms-8lane-576", NormParams(kind=NormKind.RMS, lanes=8, max_len=576,
                                          newton_steps=2, rsqrt_table_log2=6)),
    ),
    generate=generate,
    test_module=__name__,
)


def _random_vector(p: NormParams, rng, n: int):
    scale = 2.0 ** rng.uniform(-4, p.in_width - 2)
    x = np.clip(np.round(rng.standard_normal(n) * scale), smin(p.in_width), smax(p.in_width))
    g = rng.integers(-(2 << p.gamma_frac), (2 << p.gamma_frac) + 1, n)
    b = rng.integers(-(4 << p.beta_frac), (4 << p.beta_frac) + 1, n)
    g = np.clip(g, smin(p.gamma_width), smax(p.gamma_width))
    b = np.clip(b, smin(p.beta_width), smax(p.beta_width))
    return x.astype(np.int64), g, b


def _corner_vectors(p: NormParams, rng):
    lo, hi = smin(p.in_width), smax(p.in_width)
    L, N = p.lanes, p.max_len
    out = []
    x, g, b = _random_vector(p, rng, L)
    out.append((x, g, b))                                     # one beat (length 1 at 1 lane)
    out.append(_random_vector(p, rng, N))                     # maximum length
    out.append((np.full(N, 1234 % hi), *_random_vector(p, rng, N)[1:]))  # all equal
    out.append((np.full(L * 3 if N >= 3 * L else L, lo), *_random_vector(p, rng, L * 3 if N >= 3 * L else L)[1:]))
    alt = np.where(np.arange(N) % 2 == 0, lo, hi)             # extreme magnitudes
    out.append((alt, *_random_vector(p, rng, N)[1:]))
    tiny = rng.integers(-1, 2, N)                              # tiny magnitudes
    out.append((tiny, *_random_vector(p, rng, N)[1:]))
    spike = np.zeros(N, dtype=np.int64)                       # saturating: one spike, big gamma
    spike[-1] = hi
    gmax = np.full(N, smax(p.gamma_width))
    bmax = np.full(N, smax(p.beta_width))
    out.append((spike, gmax, bmax))
    out.append((-spike, gmax, -bmax - 1))
    return out


def _words(p: NormParams, vectors):
    xw, ww, expected = [], [], []
    L = p.lanes
    for x, g, b in vectors:
        beats = len(x) // L
        for k in range(beats):
            sl = slice(k * L, (k + 1) * L)
            last = 1 if k == beats - 1 else 0
            xw.append(pack(x[sl], p.in_width) | (last << (L * p.in_width)))
            word = pack(g[sl], p.gamma_width)
            if p.kind is NormKind.LAYER:
                word |= pack(b[sl], p.beta_width) << (L * p.gamma_width)
            ww.append(word)
        y = golden(p, x, g, b if p.kind is NormKind.LAYER else None)
        expected.extend(y.reshape(beats, L))
    return xw, ww, expected


async def _run(dut, p, pin, pout, tag, vectors):
    import cocotb as _c

    await start_clock(dut)
    xw, ww, expected = _words(p, vectors)
    dx = StreamDriver(dut, "i", dut.clk, pin, rng_for(tag + "x"))
    dw = StreamDriver(dut, "w", dut.clk, pin, rng_for(tag + "w"))
    mon = StreamMonitor(dut, "o", dut.clk, pout, rng_for(tag + "out")).start()
    tw = _c.start_soon(dw.send(ww))
    await dx.send(xw)
    await tw
    await mon.wait_for(len(expected))
    mon.stop()
    sb = Scoreboard(f"norm {p.kind.value} {tag}", fmt=lambda v: np.asarray(v).tolist())
    sb.expect(expected)
    sb.check([unpack(w, p.out_width, p.lanes) for w in mon.items])


async def _check(dut, pin: Pattern, pout: Pattern, corners: bool):
    p = params_from_env(NormParams)
    tag = f"{pin.value}/{pout.value}/{'corners' if corners else 'random'}"
    rng = np_rng_for(tag)
    if corners:
        vectors = _corner_vectors(p, rng)
    else:
        lens = rng.integers(1, p.beats_max + 1, size=3) * p.lanes
        vectors = [_random_vector(p, rng, int(n)) for n in lens]
    await _run(dut, p, pin, pout, tag, vectors)


@cocotb.test()
@cocotb.parametrize(pin=ALL_PATTERNS, pout=ALL_PATTERNS)
async def test_random(dut, pin: Pattern, pout: Pattern):
    """Three vectors of random lengths under one input / output stall pattern."""
    await _check(dut, pin, pout, corners=False)


@cocotb.test()
async def test_corners(dut):
    await _check(dut, Pattern.RANDOM, Pattern.BURSTY, corners=True)


@cocotb.test()
async def test_latency_throughput(dut):
    """Last x beat -> first output == latency; back-to-back vectors every vector_cycles."""
    p = params_from_env(NormParams)
    await start_clock(dut)
    rng = np_rng_for("timing")
    vectors = [_random_vector(p, rng, p.max_len) for _ in range(3)]
    xw, ww, expected = _words(p, vectors)
    hs = Handshakes(dut, dut.clk, ("i", "w", "o")).start()
    dx = StreamDriver(dut, "i", dut.clk)
    dw = StreamDriver(dut, "w", dut.clk)
    mon = StreamMonitor(dut, "o", dut.clk).start()
    tw = cocotb.start_soon(dw.send(ww))
    await dx.send(xw)
    await tw
    await mon.wait_for(len(expected))
    hs.stop()
    mon.stop()
    b = p.beats_max
    ci, co = hs.cycles["i"], hs.cycles["o"]
    latency = co[0] - ci[b - 1]
    assert latency == p.latency, f"measured latency {latency}, Params say {p.latency}"
    period = ci[b] - ci[0]
    assert period == p.vector_cycles(p.max_len), (
        f"measured {period} cycles per vector, Params say {p.vector_cycles(p.max_len)}")
    assert ci[2 * b] - ci[b] == period
    measured = p.max_len / period
    assert measured == p.throughput, f"measured {measured} elements/cycle, Params {p.throughput}"
    got = [unpack(w, p.out_width, p.lanes).tolist() for w in mon.items]
    assert got == [e.tolist() for e in expected]
