"""cocotb testbench of :mod:`fpgallm.units.activation` (SiLU / GELU-tanh).

Random inputs over the whole input range under every idle/backpressure combination, a corner
run (range ends, table edges, runs of equal values), and a timing test that measures latency
and throughput in cycles and compares them with the Params.
"""

from __future__ import annotations

import cocotb
import numpy as np

from fpgallm.hdl.fixed import smax, smin
from fpgallm.sim.bench import Bench, Point, params_from_env
from fpgallm.sim.stream import (ALL_PATTERNS, Pattern, Scoreboard, StreamDriver, StreamMonitor,
                                np_rng_for, pack, rng_for, start_clock, unpack)
from fpgallm.sim.tb._handshakes import Handshakes
from fpgallm.units.activation import ActivationKind, ActivationParams, generate, golden

BENCH = Bench(
    unit="activation",
    description="SiLU / GELU (tanh form) by correction table with linear interpolation",
    points=(
        Point("silu-1lane", ActivationParams(kind=ActivationKind.SILU, lanes=1)),
        Point("gelu-4lane", ActivationParams(kind=ActivationKind.GELU_TANH, lanes=4)),
        Point("silu-5lane-i12-o8", ActivationParams(kind=ActivationKind.SILU, lanes=5, in_width=12,
                                                    in_frac=8, out_width=8, out_frac=4,
                                                    range_log2=3, seg_log2=6, tab_frac=10)),
    ),
    generate=generate,
    test_module=__name__,
)


def corner_values(p: ActivationParams) -> np.ndarray:
    lo, hi = smin(p.in_width), smax(p.in_width)
    r = 1 << (p.in_frac + p.range_log2)
    seg = 1 << p.seg_shift
    vals = [lo, lo + 1, hi, hi - 1, 0, 1, -1, r, r - 1, -r, -r + 1, seg, seg - 1, -seg,
            seg // 2, -(seg // 2)]
    return np.array([min(max(v, lo), hi) for v in vals], dtype=np.int64)


def _beats(p: ActivationParams, rng, beats: int, corners: bool) -> np.ndarray:
    x = rng.integers(smin(p.in_width), smax(p.in_width) + 1, size=(beats, p.lanes))
    # half of the random values inside the table range, where the function bends
    r = 1 << (p.in_frac + p.range_log2)
    inner = rng.integers(-r, r, size=(beats, p.lanes))
    x = np.where(rng.random((beats, p.lanes)) < 0.5, x, np.clip(inner, smin(p.in_width),
                                                                 smax(p.in_width)))
    if corners:
        c = corner_values(p)
        flat = x.reshape(-1)
        flat[:len(c)] = c[:flat.size]
        # runs of equal values: a whole beat of min, of max, of zero
        for k, v in enumerate((smin(p.in_width), smax(p.in_width), 0)):
            if beats > len(c) + k:
                x[-1 - k, :] = v
    return x


async def _run(dut, p, pin, pout, tag, x):
    await start_clock(dut)
    expected = golden(p, x)
    words = [pack(row, p.in_width) for row in x]
    drv = StreamDriver(dut, "i", dut.clk, pin, rng_for(tag + "in"))
    mon = StreamMonitor(dut, "o", dut.clk, pout, rng_for(tag + "out")).start()
    await drv.send(words)
    await mon.wait_for(len(words))
    mon.stop()
    sb = Scoreboard(f"activation {p.kind.value} {tag}", fmt=lambda v: np.asarray(v).tolist())
    sb.expect(list(expected))
    sb.check([unpack(w, p.out_width, p.lanes) for w in mon.items])


async def _check(dut, pin: Pattern, pout: Pattern, corners: bool):
    p = params_from_env(ActivationParams)
    tag = f"{pin.value}/{pout.value}/{'corners' if corners else 'random'}"
    x = _beats(p, np_rng_for(tag), 60, corners)
    await _run(dut, p, pin, pout, tag, x)


@cocotb.test()
@cocotb.parametrize(pin=ALL_PATTERNS, pout=ALL_PATTERNS)
async def test_random(dut, pin: Pattern, pout: Pattern):
    """60 random beats under one input / output stall pattern."""
    await _check(dut, pin, pout, corners=False)


@cocotb.test()
async def test_corners(dut):
    await _check(dut, Pattern.RANDOM, Pattern.RANDOM, corners=True)


@cocotb.test()
async def test_latency_throughput(dut):
    """Cycles from the first accepted beat to its output == latency; n beats in n cycles."""
    p = params_from_env(ActivationParams)
    await start_clock(dut)
    n = 24
    x = _beats(p, np_rng_for("timing"), n, False)
    hs = Handshakes(dut, dut.clk, ("i", "o")).start()
    drv = StreamDriver(dut, "i", dut.clk)
    mon = StreamMonitor(dut, "o", dut.clk).start()
    await drv.send([pack(row, p.in_width) for row in x])
    await mon.wait_for(n)
    hs.stop()
    mon.stop()
    ci, co = hs.cycles["i"], hs.cycles["o"]
    latency = co[0] - ci[0]
    assert latency == p.latency, f"measured latency {latency}, Params say {p.latency}"
    span = co[-1] - co[0] + 1
    measured = n * p.lanes / span
    assert measured == p.throughput, f"measured {measured} elements/cycle, Params say {p.throughput}"
    assert [unpack(w, p.out_width, p.lanes).tolist() for w in mon.items] == golden(p, x).tolist()
