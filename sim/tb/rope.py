"""cocotb testbench of :mod:`fpgallm.units.rope` (both pair conventions).

Random head vectors at random positions under every idle/backpressure combination, a corner
run (position 0 and max_pos-1, saturating extremes, all-equal and zero heads), and a timing
test comparing measured latency and throughput with the Params.
"""

from __future__ import annotations

import cocotb
import numpy as np

from fpgallm.hdl.fixed import smax, smin
from fpgallm.sim.bench import Bench, Point, params_from_env
from fpgallm.sim.stream import (ALL_PATTERNS, Pattern, Scoreboard, StreamDriver, StreamMonitor,
                                np_rng_for, pack, rng_for, start_clock, unpack)
from fpgallm.sim.tb._handshakes import Handshakes
from fpgallm.units.rope import RopeConvention, RopeParams, generate, golden

BENCH = Bench(
    unit="rope",
    description="rotary position embedding: phase = pos * F, quarter-wave sin/cos table",
    points=(
        Point("adjacent-1lane-d16", RopeParams(convention=RopeConvention.ADJACENT, lanes=1,
                                               head_dim=16, max_pos=2048)),
        Point("halves-4lane-d64", RopeParams(convention=RopeConvention.HALVES, lanes=4,
                                             head_dim=64, theta=100000.0, max_pos=8192)),
        Point("adjacent-3lane-d96", RopeParams(convention=RopeConvention.ADJACENT, lanes=3,
                                               head_dim=96, max_pos=4096)),
    ),
    generate=generate,
    test_module=__name__,
)


def beat_words(p: RopeParams, x, pos) -> list[int]:
    """Input beats of heads ``x`` (n, d) at positions ``pos`` (n), in stream order."""
    L, w = p.lanes, p.in_width
    words = []
    for head, ps in zip(x, pos):
        for j in range(p.beats_per_head):
            if p.convention is RopeConvention.ADJACENT:
                word = pack(head[2 * L * j:2 * L * (j + 1)], w)
            else:
                lo = head[L * j:L * (j + 1)]
                hi = head[p.pairs + L * j:p.pairs + L * (j + 1)]
                word = pack(lo, w) | (pack(hi, w) << (L * w))
            words.append(word | (int(ps) << (2 * L * w)))
    return words


def expected_beats(p: RopeParams, y) -> list[np.ndarray]:
    """Output beats (as the 2*lanes elements in payload order) of rotated heads ``y``."""
    L = p.lanes
    out = []
    for head in y:
        for j in range(p.beats_per_head):
            if p.convention is RopeConvention.ADJACENT:
                out.append(head[2 * L * j:2 * L * (j + 1)])
            else:
                out.append(np.concatenate([head[L * j:L * (j + 1)],
                                           head[p.pairs + L * j:p.pairs + L * (j + 1)]]))
    return out


def _heads(p: RopeParams, rng, n: int, corners: bool):
    lo, hi = smin(p.in_width), smax(p.in_width)
    x = rng.integers(lo, hi + 1, size=(n, p.head_dim))
    pos = rng.integers(0, p.max_pos, size=n)
    if corners:
        special = [(np.full(p.head_dim, lo), p.max_pos - 1), (np.full(p.head_dim, hi), 1),
                   (np.full(p.head_dim, lo), 3), (np.zeros(p.head_dim), p.max_pos - 1),
                   (np.full(p.head_dim, 1234 % hi), 0), (x[0], 0),
                   (np.where(np.arange(p.head_dim) % 2, lo, hi), p.max_pos // 2)]
        for k, (v, ps) in enumerate(special[:n]):
            x[k], pos[k] = v, ps
    return x, pos


async def _run(dut, p, pin, pout, tag, x, pos):
    await start_clock(dut)
    expected = expected_beats(p, golden(p, x, pos))
    drv = StreamDriver(dut, "i", dut.clk, pin, rng_for(tag + "in"))
    mon = StreamMonitor(dut, "o", dut.clk, pout, rng_for(tag + "out")).start()
    await drv.send(beat_words(p, x, pos))
    await mon.wait_for(len(expected))
    mon.stop()
    sb = Scoreboard(f"rope {p.convention.value} {tag}", fmt=lambda v: np.asarray(v).tolist())
    sb.expect(expected)
    sb.check([unpack(w, p.out_width, 2 * p.lanes) for w in mon.items])


async def _check(dut, pin: Pattern, pout: Pattern, corners: bool):
    p = params_from_env(RopeParams)
    tag = f"{pin.value}/{pout.value}/{'corners' if corners else 'random'}"
    n = max(2, 64 // p.beats_per_head) if not corners else 8
    x, pos = _heads(p, np_rng_for(tag), n, corners)
    await _run(dut, p, pin, pout, tag, x, pos)


@cocotb.test()
@cocotb.parametrize(pin=ALL_PATTERNS, pout=ALL_PATTERNS)
async def test_random(dut, pin: Pattern, pout: Pattern):
    """Random heads at random positions under one input / output stall pattern."""
    await _check(dut, pin, pout, corners=False)


@cocotb.test()
async def test_corners(dut):
    await _check(dut, Pattern.RANDOM, Pattern.BURSTY, corners=True)


@cocotb.test()
async def test_latency_throughput(dut):
    """First accepted beat -> its output == latency; back-to-back beats one per cycle."""
    p = params_from_env(RopeParams)
    await start_clock(dut)
    x, pos = _heads(p, np_rng_for("timing"), 3, False)
    words = beat_words(p, x, pos)
    hs = Handshakes(dut, dut.clk, ("i", "o")).start()
    drv = StreamDriver(dut, "i", dut.clk)
    mon = StreamMonitor(dut, "o", dut.clk).start()
    await drv.send(words)
    await mon.wait_for(len(words))
    hs.stop()
    mon.stop()
    ci, co = hs.cycles["i"], hs.cycles["o"]
    assert co[0] - ci[0] == p.latency, f"measured latency {co[0] - ci[0]}, Params {p.latency}"
    measured = len(words) * 2 * p.lanes / (co[-1] - co[0] + 1)
    assert measured == p.throughput, f"measured {measured} elements/cycle, Params {p.throughput}"
    got = [unpack(w, p.out_width, 2 * p.lanes).tolist() for w in mon.items]
    assert got == [e.tolist() for e in expected_beats(p, golden(p, x, pos))]
