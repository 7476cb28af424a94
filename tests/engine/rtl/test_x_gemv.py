"""GEMV and EMBED on the engine RTL (Verilator), bit-exact against the golden machine:
LOADV (int32 vector) -> QUANT -> GEMV -> STOREV for every weight format and group, and EMBED
-> STOREV, at batch 1 and 2; the engine's cycles per run against the cycle model."""

from __future__ import annotations

import numpy as np
import pytest

from fpgallm.engine import compiler as C
from fpgallm.engine.cycles import CycleModel
from fpgallm.engine.isa import Op
from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl import x_embed, x_gemv, x_move, x_quant
from fpgallm.engine.rtl.progkit import ProgramBuilder, compare
from fpgallm.engine.rtl.simtop import MemTiming
from fpgallm.units import gemv as gemv_u
from fpgallm.units.weights import WeightFormat as F

SMALL = dict(gemv_macs=8, max_dim=128, max_ffn=256, max_vocab=256, max_context=16, vregs=8,
             mem_bytes=1 << 20)
POINTS = {
    # every format in one engine, batch 1
    "W128-P2-L4-all": (EngineParams(mem_ports=1, port_width=128, gemv_lanes=2, vector_lanes=4,
                                    weight_formats=tuple(F), **SMALL),
                       [(F.INT8_ROW, 0), (F.INT8_GROUP, 32), (F.INT4_GROUP, 64),
                        (F.INT4_GROUP_MIN, 128)]),
    # SmolLM2's two formats, batch 2, two ports
    "W128-P2-L4-b2": (EngineParams(mem_ports=2, port_width=64, gemv_lanes=2, vector_lanes=4, batch=2,
                                   weight_formats=(F.INT8_GROUP, F.INT4_GROUP_MIN), **SMALL),
                      [(F.INT8_GROUP, 32), (F.INT4_GROUP_MIN, 32), (F.INT8_GROUP, 64)]),
}


def _matrix(p, fmt, group, rows, cols, rng):
    gp = C.gemv_params(p, fmt, group)
    w = rng.standard_normal((rows, cols)) * np.exp2(rng.uniform(-6, 0, size=(rows, 1)))
    return gemv_u.quantize(gp, np.concatenate([w, np.zeros(((-rows) % gp.lanes, cols))]))


@pytest.mark.parametrize("label", list(POINTS))
def test_gemv_embed_on_rtl(label, seed):
    p, cases = POINTS[label]
    print("seed", seed)
    rng = np.random.default_rng(seed)
    b = ProgramBuilder(p)
    lim = 1 << 23
    cols = 128
    x = rng.integers(-lim, lim, cols)
    x[:32] //= 1 << 12                      # exponent groups of different size
    x[32:64] //= 1 << 20
    xa = b.vector("x", x, frac=14)
    b.ins(Op.LOADV, dst=0, n=cols, addr=xa, imm=14)
    b.ins(Op.QUANT, dst=1, a=0, n=cols)
    for i, (fmt, group) in enumerate(cases):
        rows = 2 * p.gemv_lanes * (i + 2) + 1                  # padded last row tile
        pm = _matrix(p, fmt, group, rows, cols, rng)
        ma = b.add(f"w{i}", C.matrix_bytes(pm), "matrix", pm, fmt=fmt, group=group, rows=rows)
        o = b.output(f"y{i}", rows)
        b.ins(Op.GEMV, dst=2, a=1, mode=C.wmode(fmt, group), n=rows, m=cols, addr=ma, imm=10 + i)
        b.ins(Op.STOREV, a=2, n=rows, addr=o)
        e = b.output(f"e{i}", cols)
        b.ins(Op.EMBED, dst=3, mode=C.wmode(fmt, group), n=cols, addr=ma, imm=12 + i)
        b.ins(Op.STOREV, a=3, n=cols, addr=e)
    B = p.batch
    steps = [([3, 8][:B], [0] * B), ([2 * p.gemv_lanes * 2, 1][:B], [1] * B)]
    rtl, _gold = compare(b, steps, units=[x_move, x_quant, x_gemv, x_embed])
    c = b.compiled()
    cm = CycleModel(c)
    cm.mem_latency = MemTiming().read_latency - 1
    per = {}
    for ins in c.program:
        if ins.op is not Op.HALT:
            per[ins.op.name] = per.get(ins.op.name, 0) + cm.cost(ins, 1)
    print(label, "cycles per run:", [s.cycles for s in rtl], "cycle model (memory latency",
          cm.mem_latency, "):", sum(per.values()), per)


@pytest.mark.slow
def test_gemv_embed_cycles_on_rtl_equal_the_model():
    """The engine's cycles grow by exactly x_gemv.cycles / x_embed.cycles (memory latency =
    MemTiming.read_latency - 1) plus the controller's per-instruction overhead, the same for
    both ops, when a GEMV or an EMBED is added to a program."""
    p, _ = POINTS["W128-P2-L4-all"]
    rng = np.random.default_rng(1)
    lat = MemTiming().read_latency - 1
    fmt, group, rows, cols = F.INT4_GROUP_MIN, 128, 33, 128
    pm = _matrix(p, fmt, group, rows, cols, rng)
    cyc = {}
    for op in (None, Op.GEMV, Op.EMBED):
        b = ProgramBuilder(p)
        xa = b.vector("x", rng.integers(-1 << 20, 1 << 20, cols), frac=14)
        ma = b.add("w", C.matrix_bytes(pm), "matrix", pm, fmt=fmt, group=group, rows=rows)
        o = b.output("y", max(rows, cols))
        b.ins(Op.LOADV, dst=0, n=cols, addr=xa, imm=14)
        b.ins(Op.QUANT, dst=1, a=0, n=cols)
        if op is Op.GEMV:
            b.ins(Op.GEMV, dst=2, a=1, mode=C.wmode(fmt, group), n=rows, m=cols, addr=ma, imm=10)
        elif op is Op.EMBED:
            b.ins(Op.EMBED, dst=2, mode=C.wmode(fmt, group), n=cols, addr=ma, imm=10)
        b.ins(Op.STOREV, a=0, n=cols, addr=o)
        rtl, _ = compare(b, [([3], [0])], units=[x_move, x_quant, x_gemv, x_embed])
        cyc[op] = rtl[0].cycles
    g = cyc[Op.GEMV] - cyc[None] - x_gemv.cycles(p, pm, rows, cols, 1, lat)
    e = cyc[Op.EMBED] - cyc[None] - x_embed.cycles(p, pm, cols, 1, lat)
    print("cycles", cyc, "per-instruction overhead beyond the unit model: GEMV", g, "EMBED", e)
    assert g == e, (g, e)
