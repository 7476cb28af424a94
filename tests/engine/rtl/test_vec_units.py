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
