"""LOADV / STOREV and the engine framework (fetch, CSRs, memory system, register file) on
the RTL, bit-exact against the golden machine, at memory/lane geometries covering both
gearbox directions, and batch 2."""

from __future__ import annotations

import numpy as np
import pytest

from fpgallm.engine.isa import Op
from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl import x_move
from fpgallm.engine.rtl.progkit import ProgramBuilder, compare

SMALL = dict(gemv_lanes=4, gemv_macs=8, max_dim=64, max_ffn=128, max_vocab=256, max_context=16,
             vregs=8, mem_bytes=1 << 20)
POINTS = {
    "stripe16-L4-b2": EngineParams(mem_ports=2, port_width=64, vector_lanes=4, batch=2, **SMALL),
    "stripe4-L4": EngineParams(mem_ports=1, port_width=32, vector_lanes=4, **SMALL),
    "stripe128-L8": EngineParams(mem_ports=4, port_width=256, vector_lanes=8, **SMALL),
}


@pytest.mark.parametrize("label", list(POINTS))
def test_loadv_storev(label, seed):
    p = POINTS[label]
    rng = np.random.default_rng(seed)
    b = ProgramBuilder(p)
    lim = 1 << 23
    a = b.vector("a", np.r_[-lim, lim - 1, rng.integers(-lim, lim, 35)], frac=5)   # 37: partial beats
    c = b.vector("c", rng.integers(-lim, lim, 64), frac=9)
    d = b.vector("d", rng.integers(-1000, 1000, 256), frac=0)                     # the logits register
    o1, o2, o3 = b.output("o1", 37), b.output("o2", 64), b.output("o3", 256)
    b.ins(Op.LOADV, dst=0, n=37, addr=a, imm=5)
    b.ins(Op.LOADV, dst=3, n=64, addr=c, imm=9)
    b.ins(Op.LOADV, dst=15, n=256, addr=d, imm=0)
    b.ins(Op.NOP)
    b.ins(Op.STOREV, a=0, n=37, addr=o1)
    b.ins(Op.STOREV, a=3, n=64, addr=o2)
    b.ins(Op.STOREV, a=15, n=256, addr=o3)
    steps = [([1] * p.batch, [0] * p.batch), ([2] * p.batch, [3] * p.batch)]
    rtl, _gold = compare(b, steps, units=[x_move])
    assert all(s.cycles > 0 for s in rtl)
    print(label, "cycles per run:", [s.cycles for s in rtl])
