"""Vector execution units (QUANT, EWADD, EWMUL, ACT, NORM, ROPE, ARGMAX) in Amaranth's Python
simulator against the golden Machine's arithmetic, bit for bit, with the shared ports
modelled in Python (tests/engine/rtl/vecsim.py) under random valid/ready gaps."""

from __future__ import annotations

import numpy as np
import pytest

from fpgallm.engine import compiler as C
from fpgallm.engine import golden as G
from fpgallm.engine.isa import Op
from fpgallm.engine.params import EngineParams

from tests.engine.rtl.vecsim import cmd_dict, run_unit

W = C.REG_BITS
LIM = 1 << (W - 1)


def small_params(L=8, batch=2, **kw):
    return EngineParams(max_dim=256, max_ffn=256, max_vocab=512, max_context=64, batch=batch,
                        vector_lanes=L, mem_ports=2, port_width=64, **kw)


def rand_vec(rng, n, kind):
    """Test vectors: random magnitudes, extremes, zeros."""
    if kind == "zeros":
        return np.zeros(n, np.int64)
    if kind == "extreme":
        return rng.choice([-LIM, LIM - 1, 0, 1, -1, LIM // 2, -LIM // 2 - 1], n).astype(np.int64)
    bits = rng.integers(1, W, n)
    return (rng.integers(-LIM, LIM, n) >> (W - bits)).astype(np.int64)


def first_mismatch(got, want, what):
    got, want = np.asarray(got), np.asarray(want)
    bad = np.nonzero(got != want)[0]
    assert bad.size == 0, f"{what}: first mismatch at {bad[0]}: rtl {got[bad[0]]} golden {want[bad[0]]}"


@pytest.mark.parametrize("L,nseq,kind", [(8, 1, "rand"), (8, 2, "extreme"), (4, 2, "zeros"),
                                         (32, 1, "rand"), (1, 1, "rand")])
def test_quant(L, nseq, kind):
    from fpgallm.engine.rtl import x_quant
    seed = 100 + L + nseq
    print("seed", seed)
    rng = np.random.default_rng(seed)
    p = small_params(L)
    n = 96 if L > 1 else 64
    regs = {(3, s): rand_vec(rng, p.vreg_elems, kind) for s in range(nseq)}
    cmd = cmd_dict(p, Op.QUANT, dst=3, a=3, n=n, frac_a=10, nseq=nseq)
    v, e, _, cyc = run_unit(x_quant.Unit(p), p, cmd, regs, seed=seed)
    for s in range(nseq):
        q, ex = G.quant_u.golden(G.quant_params(C.ACT_GROUP), regs[(3, s)][:n])
        first_mismatch(v[(3, s)][:n], q, f"QUANT seq {s} values")
        first_mismatch(e[(3, s)][:n // 32], ex, f"QUANT seq {s} exponents")
    print("cycles", cyc)


def _ew_golden(op, a, b, fa, fb, fd):
    if op is Op.EWADD:
        return G.ew_add(G.Reg(a, fa), G.Reg(b, fb), fd)
    sh = fa + fb - fd
    y = G.ew_u.golden(G.EW_MUL, a, b, 1, 0, max(sh, 0))
    return y if sh >= 0 else G.shift_to(y, -sh)


EW_CASES = [(Op.EWADD, 10, 12, 11), (Op.EWADD, 4, 22, 8), (Op.EWADD, 20, 3, 22), (Op.EWADD, 5, 5, 0),
            (Op.EWADD, 0, 0, 16), (Op.EWMUL, 10, 12, 11), (Op.EWMUL, 2, 3, 12), (Op.EWMUL, 20, 20, 1)]


@pytest.mark.parametrize("case", range(len(EW_CASES)))
@pytest.mark.parametrize("L,nseq,kind", [(8, 2, "rand"), (4, 1, "extreme")])
def test_ew(case, L, nseq, kind):
    from fpgallm.engine.rtl import x_ew
    op, fa, fb, fd = EW_CASES[case]
    seed = 200 + case * 10 + L + nseq
    print("seed", seed)
    rng = np.random.default_rng(seed)
    p = small_params(L)
    n = 60
    regs = {}
    for s in range(nseq):
        regs[(1, s)] = rand_vec(rng, p.vreg_elems, kind)
        regs[(2, s)] = rand_vec(rng, p.vreg_elems, kind)
    cmd = cmd_dict(p, op, dst=1, a=1, b=2, n=n, imm=fd, frac_a=fa, frac_b=fb, nseq=nseq)
    v, _, _, cyc = run_unit(x_ew.Unit(p), p, cmd, regs, seed=seed)
    for s in range(nseq):
        want = _ew_golden(op, regs[(1, s)][:n], regs[(2, s)][:n], fa, fb, fd)
        first_mismatch(v[(1, s)][:n], want, f"{op.name} seq {s}")
        first_mismatch(v[(1, s)][n:], regs[(1, s)][n:], f"{op.name} seq {s} beyond n")


@pytest.mark.parametrize("L,nseq,n,kind", [(8, 2, 77, "rand"), (8, 1, 512, "extreme"),
                                           (4, 2, 9, "zeros"), (1, 1, 5, "rand")])
def test_argmax(L, nseq, n, kind):
    from fpgallm.engine.rtl import x_argmax
    seed = 300 + L + n
    print("seed", seed)
    rng = np.random.default_rng(seed)
    p = small_params(L)
    regs = {(15, s): rand_vec(rng, p.max_vocab, kind) for s in range(nseq)}
    if kind == "rand":
        regs[(15, 0)][n - 1] = LIM - 1          # maximum on the last (partial) beat
        regs[(15, 0)][n - 2] = LIM - 1          # ... tied: the first one wins
    cmd = cmd_dict(p, Op.ARGMAX, dst=1, a=15, n=n, nseq=nseq)
    _, _, sres, cyc = run_unit(x_argmax.Unit(p), p, cmd, regs, seed=seed)
    for s in range(nseq):
        want = G.argmax_u.golden(G.argmax_u.ArgmaxParams(lanes=1, in_width=W, max_length=max(n, 2)),
                                 regs[(15, s)][:n])[0]
        assert sres[s] == want, f"ARGMAX seq {s}: rtl {sres[s]} golden {want}"


@pytest.mark.parametrize("L,nseq,style,hd,heads,kind,ports,mhd", [
    (8, 2, C.ROPE_HALVES, 32, 3, "rand", 2, 256), (8, 2, C.ROPE_ADJACENT, 32, 3, "rand", 2, 48),
    (4, 1, C.ROPE_HALVES, 16, 2, "extreme", 3, 16), (2, 2, C.ROPE_ADJACENT, 64, 2, "extreme", 1, 256),
    (8, 1, C.ROPE_ADJACENT, 8, 4, "rand", 3, 8)])
def test_rope(L, nseq, style, hd, heads, kind, ports, mhd):
    # mhd: EngineParams.max_head_dim (the pair buffer; 8 with 8 lanes: one beat of pairs)
    from fpgallm.engine.rtl import x_rope
    seed = 400 + L + hd + style
    print("seed", seed)
    rng = np.random.default_rng(seed)
    p = EngineParams(max_dim=256, max_ffn=256, max_vocab=512, max_context=64, batch=2,
                     vector_lanes=L, mem_ports=ports, port_width=64, max_head_dim=mhd)
    ctx = 20
    lim = 1 << C.ROPE_FRAC
    tab = {"cos": rng.integers(-lim, lim + 1, (ctx, hd // 2)), "sin": rng.integers(-lim, lim + 1, (ctx, hd // 2))}
    if kind == "extreme":
        tab["cos"][:] = rng.choice([-lim, lim], tab["cos"].shape)
        tab["sin"][:] = rng.choice([-lim, lim], tab["sin"].shape)
    sb = p.mem_ports * p.port_width // 8
    addr = 3 * sb
    img = x_rope.rope_image(tab, p)
    assert len(img) == x_rope.region_bytes(p, ctx, hd)
    mem = bytes(addr) + img
    pos = [int(x) for x in rng.integers(0, ctx, p.batch)]
    regs = {(2, s): rand_vec(rng, p.vreg_elems, kind) for s in range(nseq)}
    n_el = hd * heads
    cmd = cmd_dict(p, Op.ROPE, dst=2, a=2, mode=style, n=hd, m=heads, addr=addr, nseq=nseq, pos=pos)
    v, _, _, cyc = run_unit(x_rope.Unit(p), p, cmd, regs, mem=mem, seed=seed)
    x = np.stack([regs[(2, s)][:n_el] for s in range(nseq)])
    want = G.rope(x, np.array(pos[:nseq]), heads, hd, style, tab)
    for s in range(nseq):
        first_mismatch(v[(2, s)][:n_el], want[s], f"ROPE seq {s}")
        first_mismatch(v[(2, s)][n_el:], regs[(2, s)][n_el:], f"ROPE seq {s} beyond")
    print("cycles", cyc)


@pytest.mark.parametrize("kind,fa,fo", [(C.ACT_SILU, 16, 18), (C.ACT_GELU, 16, 18), (C.ACT_SILU, 22, 10),
                                         (C.ACT_SILU, 4, 23), (C.ACT_GELU, 19, 22), (C.ACT_SILU, 0, 0)])
@pytest.mark.parametrize("L,nseq,vk", [(8, 2, "rand"), (4, 1, "extreme")])
def test_act(kind, fa, fo, L, nseq, vk):
    from fpgallm.engine.rtl import x_act
    seed = 500 + kind * 7 + fa + fo + L
    print("seed", seed)
    rng = np.random.default_rng(seed)
    p = small_params(L)
    n = 72
    regs = {(2, s): rand_vec(rng, p.vreg_elems, vk) for s in range(nseq)}
    if vk == "rand":   # values around the table range edge (|x| ~ 16) too
        regs[(2, 0)][:16] = np.array([15, 16, -16, -15, 17, -17, 0, 31] * 2) << fa
        regs[(2, 0)][:16] = np.clip(regs[(2, 0)][:16] + rng.integers(-2, 3, 16), -LIM, LIM - 1)
    cmd = cmd_dict(p, Op.ACT, dst=2, a=2, mode=kind, n=n, imm=fo, frac_a=fa, nseq=nseq)
    v, _, _, cyc = run_unit(x_act.Unit(p), p, cmd, regs, seed=seed)
    for s in range(nseq):
        want = G.act(kind, regs[(2, s)][:n], fa, fo)
        first_mismatch(v[(2, s)][:n], want, f"ACT seq {s}")


@pytest.mark.parametrize("kind,fa,of,gf,bf,eps", [
    (C.NORM_RMS, 12, 16, 12, 0, 1e-5), (C.NORM_LAYER, 12, 16, 12, 10, 1e-5),
    (C.NORM_RMS, 22, 20, 14, 0, 1e-6), (C.NORM_LAYER, 4, 10, 8, 6, 1e-5), (C.NORM_RMS, 0, 18, 14, 0, 0.01)])
@pytest.mark.parametrize("L,nseq,vk,ports", [(8, 2, "rand", 2), (4, 1, "extreme", 3), (8, 1, "zeros", 2)])
def test_norm(kind, fa, of, gf, bf, eps, L, nseq, vk, ports):
    from fpgallm.engine.rtl import x_norm
    seed = 600 + kind * 7 + fa + of + L + ports
    print("seed", seed)
    rng = np.random.default_rng(seed)
    p = EngineParams(max_dim=256, max_ffn=256, max_vocab=512, max_context=64, batch=2,
                     vector_lanes=L, mem_ports=ports, port_width=64)
    n = 96
    regs = {(0, s): rand_vec(rng, p.vreg_elems, vk) for s in range(nseq)}
    if vk == "rand" and nseq > 1:
        regs[(0, 1)] >>= 12                      # a small vector: exponent 0, eps matters
    gamma = rng.integers(-32768, 32768, n)
    beta = rng.integers(-32768, 32768, n) if kind == C.NORM_LAYER else None
    sb = p.mem_ports * p.port_width // 8
    addr = 5 * sb
    img = x_norm.norm_image({"gamma": gamma, "beta": beta}, p)
    assert len(img) == 2 * n * (2 if beta is not None else 1)
    mem = bytes(addr) + img + bytes(3 * sb)
    m_eps = C.norm_eps_field(eps)
    cmd = cmd_dict(p, Op.NORM, dst=1, a=0, mode=kind, n=n, m=m_eps, addr=addr,
                   imm=of | gf << 8 | bf << 16, frac_a=fa, nseq=nseq)
    v, _, _, cyc = run_unit(x_norm.Unit(p), p, cmd, regs, mem=mem, seed=seed)
    for s in range(nseq):
        want = G.norm(kind, regs[(0, s)][:n], fa, gamma, beta, m_eps, of, gf, bf)
        first_mismatch(v[(1, s)][:n], want, f"NORM seq {s}")


@pytest.mark.parametrize("L,nseq,ports", [(8, 1, 2), (4, 2, 2), (8, 2, 3)])
def test_cycles_match_model(L, nseq, ports):
    """Without port gaps (register file and memory answering at once) every vector unit takes
    exactly the cycles its ``cycles()`` (and so ``CycleModel.cost``) predicts."""
    from fpgallm.engine.rtl import x_act, x_argmax, x_ew, x_norm, x_quant, x_rope
    rng = np.random.default_rng(7)
    p = EngineParams(max_dim=256, max_ffn=256, max_vocab=512, max_context=64, batch=2,
                     vector_lanes=L, mem_ports=ports, port_width=64)
    regs = {(r, s): rng.integers(-2 ** 20, 2 ** 20, 512) for r in (0, 1, 2, 15) for s in range(2)}
    n = 192
    runs = [
        (x_quant, cmd_dict(p, Op.QUANT, dst=1, a=1, n=n, nseq=nseq), b"", x_quant.cycles(p, n, nseq)),
        (x_ew, cmd_dict(p, Op.EWMUL, dst=1, a=1, b=2, n=n, imm=10, frac_a=10, frac_b=12, nseq=nseq), b"",
         x_ew.cycles(p, n, nseq)),
        (x_act, cmd_dict(p, Op.ACT, dst=1, a=1, n=n, imm=10, frac_a=10, nseq=nseq), b"", x_act.cycles(p, n, nseq)),
        (x_argmax, cmd_dict(p, Op.ARGMAX, dst=1, a=15, n=n, nseq=nseq), b"", x_argmax.cycles(p, n, nseq)),
    ]
    tab = {"cos": rng.integers(-2 ** 14, 2 ** 14, (20, 32)), "sin": rng.integers(-2 ** 14, 2 ** 14, (20, 32))}
    for mode in (C.ROPE_HALVES, C.ROPE_ADJACENT):
        runs.append((x_rope, cmd_dict(p, Op.ROPE, dst=1, a=1, n=64, m=3, mode=mode, nseq=nseq, pos=[3, 5]),
                     x_rope.rope_image(tab, p), x_rope.cycles(p, 64, 3, nseq, mode)))
    g = rng.integers(-2 ** 15, 2 ** 15, n)
    for mode in (C.NORM_RMS, C.NORM_LAYER):
        mem = x_norm.norm_image({"gamma": g, "beta": g if mode else None}, p) + bytes(64)
        runs.append((x_norm, cmd_dict(p, Op.NORM, dst=1, a=0, n=n, mode=mode, m=C.norm_eps_field(1e-5),
                                      imm=16 | 12 << 8, frac_a=12, nseq=nseq), mem,
                     x_norm.cycles(p, n, nseq, mode == C.NORM_LAYER)))
    for mod, cmd, mem, want in runs:
        _, _, _, got = run_unit(mod.Unit(p), p, cmd, regs, mem=mem, gaps=0)
        print(mod.__name__, Op(cmd["ins"]["op"]).name, got, want)
        assert got == want, f"{mod.__name__} mode {cmd['ins']['mode']}: RTL {got} cycles, model {want}"


@pytest.mark.parametrize("gaps", [0.0, 0.1])
def test_rope_high_half_fifo_of_exactly_one_half_head(gaps):
    # max_head_dim = head_dim = 32 with 8 lanes: the high-half FIFO holds exactly one half
    # head (2 beats); a low beat must not be written while its high beat finds the FIFO
    # full (it was written twice and the unit hung, `fpgallm run --engine rtl`, session 7)
    from fpgallm.engine.rtl import x_rope
    seed = 470
    print("seed", seed)
    rng = np.random.default_rng(seed)
    p = EngineParams(mem_ports=4, port_width=256, max_dim=128, max_ffn=256, max_vocab=258, max_context=32,
                     vector_lanes=8, max_head_dim=32)
    hd, heads, ctx, lim = 32, 4, 20, 1 << C.ROPE_FRAC
    tab = {"cos": rng.integers(-lim, lim + 1, (ctx, hd // 2)), "sin": rng.integers(-lim, lim + 1, (ctx, hd // 2))}
    addr = 3 * 128
    regs = {(2, 0): rand_vec(rng, p.vreg_elems, "rand")}
    cmd = cmd_dict(p, Op.ROPE, dst=2, a=2, mode=C.ROPE_HALVES, n=hd, m=heads, addr=addr, nseq=1, pos=[5])
    v, _, _, cyc = run_unit(x_rope.Unit(p), p, cmd, regs, mem=bytes(addr) + x_rope.rope_image(tab, p),
                            seed=seed, gaps=gaps, max_cycles=5000)
    want = G.rope(np.stack([regs[(2, 0)][:hd * heads]]), np.array([5]), heads, hd, C.ROPE_HALVES, tab)
    first_mismatch(v[(2, 0)][:hd * heads], want[0], "ROPE")
    print("cycles", cyc)
