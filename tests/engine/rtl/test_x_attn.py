"""KVAPPEND and ATTN on the engine RTL (Verilator, AXI memory models), bit for bit against
the golden Machine: programs ``LOADV`` (q, K, V rows of position S[POS]) -> ``KVAPPEND`` ->
``ATTN`` -> ``STOREV``, run at a sequence of positions so that the KV cache fills up;
grouped-query attention, batch 1 and 2 with different positions per sequence, extremes
(full-scale and zero vectors)."""

from __future__ import annotations

import numpy as np

from fpgallm.engine.compiler import row_bytes
from fpgallm.engine.isa import Op
from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl import x_attn, x_kv, x_move
from fpgallm.engine.kvlayout import kv_layer_bytes
from fpgallm.engine.rtl.progkit import ProgramBuilder, compare
from fpgallm.model.spec import preset

BASE = dict(gemv_lanes=4, gemv_macs=8, max_dim=128, max_ffn=128, max_vocab=256, max_context=16,
            vregs=8, mem_bytes=1 << 20)
LIM = 1 << 23


def attn_program(p: EngineParams, heads: int, kv_heads: int, hd: int, ctx: int, seed: int,
                 fracs=(13, 11, 12, 9)):
    """The builder of LOADV q/K/V rows -> KVAPPEND -> ATTN -> STOREV for random tables."""
    rng = np.random.default_rng(seed)
    spec = preset("tiny-llama").spec.replace(d_model=heads * hd, n_heads=heads, n_kv_heads=kv_heads)
    b = ProgramBuilder(p, spec=spec, context=ctx)
    stripe = b.img.stripe
    d, kvd = heads * hd, kv_heads * hd
    fq, fk, fv, fo = fracs

    def table(name, n, frac, bits_lo, bits_hi):
        rows = []
        for pos in range(ctx):
            heads_ = [rng.integers(-(1 << e), 1 << e, hd) for e in rng.integers(bits_lo, bits_hi, n // hd)]
            rows.append(np.concatenate(heads_))
        t = np.stack(rows).astype(np.int64)
        t[1, :hd] = rng.choice([-LIM, LIM - 1], hd)          # extremes: full scale ...
        t[2, :] = 0                                           # ... and an all-zero row
        t = np.clip(t, -LIM, LIM - 1)
        return b.add(name, ctx * row_bytes(n, stripe), "table", t, frac=frac)

    qt = table("q", d, fq, 2, 24)
    kt = table("k", kvd, fk, 1, 22)
    vt = table("v", kvd, fv, 1, 18)
    kv = b.add("kv", kv_layer_bytes(p, hd, kv_heads), "kv")
    o = b.output("o", d)
    # LOADV's imm[7:0] is the register's format tag (the region's fraction bits)
    b.ins(Op.LOADV, dst=3, mode=1, n=kvd, addr=kt, imm=fk)
    b.ins(Op.LOADV, dst=4, mode=1, n=kvd, addr=vt, imm=fv)
    b.ins(Op.LOADV, dst=2, mode=1, n=d, addr=qt, imm=fq)
    b.ins(Op.KVAPPEND, a=3, b=4, n=kvd, m=hd, addr=kv)
    b.ins(Op.ATTN, dst=5, a=2, n=hd, m=heads | kv_heads << 10, addr=kv, imm=fo | fk << 8 | fv << 16)
    b.ins(Op.STOREV, a=5, n=d, addr=o)
    return b


UNITS = [x_move, x_kv, x_attn]


def test_attn_gqa_batch2(seed):
    # tiny-llama's attention (4 heads, 2 kv-heads, head_dim 32) on 2 x 64-bit ports: 2 words
    # per position; two sequences at different positions
    print(f"seed {seed}")
    p = EngineParams(mem_ports=2, port_width=64, vector_lanes=4, batch=2, **BASE)
    b = attn_program(p, 4, 2, 32, 16, seed)
    steps = [([1, 1], [t, (3 * t + 2) % 16]) for t in range(6)] + [([1, 1], [15, 6])]
    rtl, _ = compare(b, steps, units=UNITS)
    print("cycles per run:", [s.cycles for s in rtl])
    # the cycle model: ATTN's cycles = the run's minus the same run without ATTN
    from fpgallm.engine.rtl.simrun import RtlSim
    b2 = attn_program(p, 4, 2, 32, 16, seed)
    b2.prog = [x for x in b2.prog if x.op is not Op.ATTN]
    base = RtlSim(b2.compiled(), units=UNITS).steps(steps, regions=())
    lat = x_attn.PORT_LATENCY
    for (_t, pos), r, r0 in zip(steps, rtl, base):
        got = r.cycles - r0.cycles
        model = x_attn.cycles(p, 32, 4, 2, [x + 1 for x in pos], lat["vread"], lat["mread"])
        print(f"positions {pos}: ATTN {got} cycles, model {model}")
        assert abs(got - model) <= 0.05 * model, f"ATTN cycles {got}, model {model}"


def test_attn_positions_share_words(seed):
    # head_dim 64 on 4 x 256-bit ports (SmolLM2's geometry: two positions per stripe word),
    # 2 heads on one kv-head; batch 1 up to the full context
    print(f"seed {seed}")
    p = EngineParams(mem_ports=4, port_width=256, vector_lanes=8, **BASE)
    b = attn_program(p, 2, 1, 64, 16, seed + 1)
    steps = [([1], [t]) for t in range(16)]
    rtl, _ = compare(b, steps, units=UNITS)
    print("cycles per run:", [s.cycles for s in rtl])
