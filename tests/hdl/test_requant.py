"""The requantizing shifts (fpgallm.hdl.requant) equal their golden counterparts for every
shift amount, on random and edge values, in Amaranth's simulator."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from fpgallm.engine import golden as G
from fpgallm.hdl import requant
from fpgallm.hdl.fixed import smax, smin

SEED = 2026


def _values(wx: int, rng, n: int = 48) -> list[int]:
    edge = {0, -1, 1, smin(wx), smax(wx), smin(wx) + 1, smax(wx) - 1}
    for k in range(wx - 1):
        edge |= {1 << k, (1 << k) - 1, -(1 << k), -(1 << k) - 1, (1 << k) + 1}
    rnd = rng.integers(smin(wx), smax(wx), size=n, endpoint=True).tolist()
    return sorted(v for v in edge | set(rnd) if smin(wx) <= v <= smax(wx))


def _sat(v: int, width: int) -> int:
    return max(smin(width), min(smax(width), v))


def _ref_right(x: int, r: int, width: int) -> int:
    return _sat((x + ((1 << r) >> 1)) >> r, width)


def _ref_left(x: int, left: int, width: int) -> int:
    return _sat(x << left, width)


def _run(build, wx: int, amt_shape, amounts, values, ref):
    m = Module()
    x = Signal(signed(wx), name="x")
    a = Signal(amt_shape, name="a")
    out = build(m, x, a)
    bad = []

    async def bench(ctx):
        for s in amounts:
            ctx.set(a, s)
            for v in values:
                ctx.set(x, v)
                got = ctx.get(out)
                if got != ref(v, s):
                    bad.append((v, s, got, ref(v, s)))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return bad


@pytest.mark.parametrize("wx,width", [(8, 24), (24, 24), (32, 24), (48, 24), (20, 16)])
def test_shift_right_sat(wx, width):
    print(f"seed {SEED}")
    rng = np.random.default_rng([SEED, wx, width])
    bad = _run(lambda m, x, a: requant.shift_right_sat(m, x, a, width, "o"), wx, unsigned(7),
               range(0, wx + 4), _values(wx, rng), lambda v, s: _ref_right(v, s, width))
    assert bad == []


@pytest.mark.parametrize("wx,width", [(8, 24), (24, 24), (32, 24), (48, 24), (20, 16)])
def test_shift_left_sat(wx, width):
    print(f"seed {SEED}")
    rng = np.random.default_rng([SEED, wx, width, 1])
    bad = _run(lambda m, x, a: requant.shift_left_sat(m, x, a, width, "o"), wx, unsigned(7),
               range(0, width + 4), _values(wx, rng), lambda v, s: _ref_left(v, s, width))
    assert bad == []


@pytest.mark.parametrize("wx", [24, 32, 40])
def test_shift_to_is_golden(wx):
    """Signed amounts in both directions equal ``golden.shift_to`` (24-bit registers)."""
    print(f"seed {SEED}")
    rng = np.random.default_rng([SEED, wx, 2])
    width = G.W
    bad = _run(lambda m, x, a: requant.shift_to(m, x, a, width, "o"), wx, signed(8),
               range(-wx - 3, width + 3), _values(wx, rng, 32),
               lambda v, s: int(G.shift_to(np.int64(v), s, width)))
    assert bad == []
