"""The golden decode engine: executes a compiled program bit-exactly in NumPy.

The arithmetic of every instruction is the golden model of the hardware unit that runs it
(:mod:`fpgallm.units`); where the engine needs something a unit's golden does not offer, the
adaptation is a small, documented function here (see "Adaptations" below) that the engine
RTL implements the same way.

Machine state per sequence ``b`` of the batch: vector registers (``int64`` arrays with a
format tag: fixed point with ``frac`` fraction bits, or block-scaled INT8 with per-group
exponents), scalar registers ``S[b]``, and the KV cache regions of the memory image.

Prefill runs the program once per prompt token (token by token, as the ISA allows); the
argmax of the last prompt token is the first generated token.

Adaptations (what the engine adds around the units' goldens)
--------------------------------------------------------------------
* GEMV with block-scaled activations: the GEMV unit takes the exponent stream beside ``x``
  and shifts each 32-column partial dot product (and, for Q4_1, the partial activation
  sum) left by its group's exponent before the weight group's scale multiply
  (``GemvParams.act_exp_max``, :func:`fpgallm.units.gemv.golden_blocked`; with all
  exponents 0 it equals ``golden_acc``); :func:`gemv_blocked` calls it.
* NORM: the norm unit's statistics limit its input to about 18 bits for 4096-element
  vectors; the 24-bit register is first brought to 18 bits by the quantize unit's exponent
  rule with the whole vector as one group (:func:`norm_input`), the input fraction bits
  drop by that exponent.  One fixed unit (``NormParams.runtime``) serves every NORM: the
  input is taken as an integer, ``eps`` (the ``m`` field, :func:`fpgallm.engine.compiler.norm_eps_field`) is scaled
  to the input's units at run time (:func:`norm_eps_q`), RMS is LAYER with S1 = beta = 0,
  the output and beta shifts come from the tags (:func:`norm`).
* ACT: one fixed activation unit per kind with shifts around it and a relu bypass outside
  the table range (:func:`act`).
* EWADD: the elementwise unit's multipliers are 16 bits, so scale ratios above 2**15 are
  handled by pre-rounding the finer input (:func:`ew_add`).
* ROPE: the cos/sin come from a table in memory (any model's theta and head size on one
  engine), so :func:`rope` uses the rope unit's rotation with given sin/cos
  (:func:`fpgallm.units.rope.golden_table`) instead of its phase tables.
* ATTN: q is quantized to INT16 per head (quantize unit, group = head_dim), K and V are INT8
  (``kv_format``) per head vector with a power-of-two exponent (quantize unit, group =
  head_dim); scores are exact integer dot products, scaled by ``round(2**16/sqrt(head_dim))``
  and shifted per position by the exponents into the softmax unit's Q.10 input, and the
  probabilities (Q.15) weight V exactly.  The fraction bits of the cached K and V travel
  in the instruction (``imm[15:8]``, ``imm[23:16]``); KVAPPEND's ``m`` is head_dim.  RTL:
  ``fpgallm/engine/rtl/x_kv.py``, ``x_attn.py``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from fpgallm.engine import compiler as C
from fpgallm.engine.formats import Q_BITS, SCORE_FRAC, SCORE_MULT_BITS, score_mult
from fpgallm.engine.isa import Op, Sreg
from fpgallm.engine.params import EngineParams
from fpgallm.hdl.fixed import round_shift, saturate
from fpgallm.units import activation as act_u
from fpgallm.units import argmax as argmax_u
from fpgallm.units import elementwise as ew_u
from fpgallm.units import norm as norm_u
from fpgallm.units import quantize as quant_u
from fpgallm.units import rope as rope_u
from fpgallm.units import softmax as softmax_u
from fpgallm.units import gemv as gemv_u
from fpgallm.units.gemv import PackedMatrix

W = C.REG_BITS
NORM_IN_BITS = 18


@dataclass
class Reg:
    v: np.ndarray            # (B, n) int64
    frac: int                # value = v * 2**(exps) * 2**-frac
    exps: np.ndarray | None = None   # (B, n // 32) for block-scaled INT8


def shift_to(x, sh: int, width: int = W) -> np.ndarray:
    """``x * 2**sh`` rounded half up and saturated to ``width`` bits."""
    x = np.asarray(x, dtype=np.int64)
    if sh >= 0:
        lim = 1 << (width - 1)
        return saturate(np.clip(x, -lim, lim) << min(sh, 40), width)
    return saturate(round_shift(x, -sh), width)


def shift_by(x, sh) -> np.ndarray:
    """Elementwise :func:`shift_to` with a per-element shift array."""
    x = np.asarray(x, dtype=np.int64)
    sh = np.asarray(sh, dtype=np.int64)
    lim = 1 << (W - 1)
    left = np.clip(x, -lim, lim) << np.clip(sh, 0, 40)
    right = round_shift(x, np.maximum(-sh, 0))
    return saturate(np.where(sh >= 0, left, right), W)


# --- unit parameter objects (cached) --------------------------------------------------------

@functools.lru_cache(maxsize=None)
def quant_params(group: int, out_width: int = 8, lanes: int = 1) -> quant_u.QuantizeParams:
    return quant_u.QuantizeParams(lanes=lanes, group=group, in_width=W, out_width=out_width)


# NORM: one fixed norm unit per engine (NormParams.runtime): the input's scale, eps and the
# output shifts are run-time values
NORM_EPS_MANT_BITS = C.NORM_EPS_MANT_BITS
norm_eps_field = C.norm_eps_field


def norm_eps_q(m: int, in_frac: int) -> int:
    """The unit's ``eps_q`` (units of the squared 18-bit input, ``2**-2*in_frac``) from the
    ``m`` field: ``mant * 2**(2*in_frac - exp)`` rounded half up, clamped to
    ``[1, 2**RUNTIME_EPS_BITS - 1]``."""
    mant, ex = m & ((1 << NORM_EPS_MANT_BITS) - 1), m >> NORM_EPS_MANT_BITS
    sh = 2 * in_frac - ex
    q = mant << min(sh, 40) if sh >= 0 else (mant + ((1 << -sh) >> 1)) >> -sh
    return int(min(max(q, 1), (1 << norm_u.RUNTIME_EPS_BITS) - 1))


@functools.lru_cache(maxsize=None)
def norm_params(max_len: int) -> norm_u.NormParams:
    """The engine's norm unit: 18-bit integer input (in_frac 0, eps_frac 0), rsqrt 18 bits,
    normalized value Q.16, run-time RMS/LAYER, eps, output shifts (``max_len`` only bounds
    the lengths; the arithmetic does not depend on it)."""
    return norm_u.NormParams(kind=norm_u.NormKind.LAYER, lanes=1, max_len=max_len,
                             in_width=NORM_IN_BITS, in_frac=0, gamma_width=16, gamma_frac=0,
                             beta_width=16, beta_frac=0, out_width=W, out_frac=0, eps=1.0,
                             eps_frac=0, norm_frac=16, rsqrt_frac=18, runtime=True)


def norm(kind: int, x: np.ndarray, frac: int, gamma, beta, m: int, out_frac: int, gf: int,
         bf: int) -> np.ndarray:
    """``NORM`` of one register row ``x`` (``frac`` fraction bits): :func:`norm_input`, then
    the fixed unit with ``eps_q = norm_eps_q(m, in_frac)``, ``out_shift = 16 + gf -
    out_frac``, ``beta_shift = out_frac - bf``."""
    xi, in_frac = norm_input(x, frac)
    p = norm_params(max(x.size, 1))
    out_shift, beta_shift = p.norm_frac + gf - out_frac, out_frac - bf
    if not 0 <= out_shift <= 62 or not 0 <= beta_shift <= 31:
        raise EngineError(f"NORM: output shift {out_shift} / beta shift {beta_shift} outside "
                          f"[0, 62] / [0, 31] (out frac {out_frac}, gamma frac {gf}, beta frac {bf})")
    return norm_u.golden(p, xi, gamma, beta if beta is not None else np.zeros_like(xi),
                         rms=kind != C.NORM_LAYER, eps_q=norm_eps_q(m, in_frac),
                         out_shift=out_shift, beta_shift=beta_shift)


# ACT: one fixed activation unit per engine; the run-time formats are shifts around it
ACT_IN_FRAC = 18      # the unit's input: 24 bits, |x| < 32 (the table covers |x| < 16)
ACT_OUT_FRAC = 22     # the unit's output = its table's fraction bits (no rounding inside)


@functools.lru_cache(maxsize=None)
def act_params(kind: int) -> act_u.ActivationParams:
    """The engine's activation unit (``kind`` = ``mode``): fixed formats, see :func:`act`."""
    return act_u.ActivationParams(
        kind=act_u.ActivationKind.GELU_TANH if kind == C.ACT_GELU else act_u.ActivationKind.SILU,
        lanes=1, in_width=W, in_frac=ACT_IN_FRAC, out_width=32, out_frac=ACT_OUT_FRAC,
        range_log2=4, seg_log2=9, tab_frac=ACT_OUT_FRAC)


def act(kind: int, x: np.ndarray, fa: int, fo: int) -> np.ndarray:
    """``ACT`` of register values ``x`` (``fa`` fraction bits) to ``fo`` fraction bits.

    Inside the unit's table range (``|x| < 2**range_log2``) the input is shifted to the
    unit's fixed format (``shift_to(x, ACT_IN_FRAC - fa)``, exact or rounded, never
    saturating), through :func:`fpgallm.units.activation.golden`, and its output shifted to
    ``fo`` (``shift_to``).  Outside it the unit's result is ``relu(x)`` exactly, so the
    register value bypasses the unit: ``shift_to(max(x, 0), fo - fa)`` (one rounding)."""
    p = act_params(kind)
    x = np.asarray(x, dtype=np.int64)
    big = np.abs(x) >= (1 << min(fa + p.range_log2, 40))
    y = shift_to(act_u.golden(p, shift_to(np.where(big, 0, x), p.in_frac - fa)), fo - p.out_frac)
    return np.where(big, shift_to(np.maximum(x, 0), fo - fa), y)


@functools.lru_cache(maxsize=None)
def softmax_params(max_length: int) -> softmax_u.SoftmaxParams:
    return softmax_u.SoftmaxParams(lanes=1, in_width=W, in_frac=SCORE_FRAC, max_length=max_length)


EW_ADD = ew_u.ElementwiseParams(op=ew_u.ElementwiseOp.ADD, lanes=1, in_width=W, out_width=W,
                                mult_width=16, max_shift=62)
EW_MUL = ew_u.ElementwiseParams(op=ew_u.ElementwiseOp.MUL, lanes=1, in_width=W, out_width=W,
                                mult_width=1, max_shift=62)


# --- instruction arithmetic -------------------------------------------------------------------

def gemv_blocked(pm: PackedMatrix, q: np.ndarray, exps: np.ndarray, qf: np.ndarray | None = None) -> np.ndarray:
    """GEMV accumulators ``(B, rows)`` for block-scaled INT8 activations ``q`` ``(B, cols)``
    with exponents ``exps`` ``(B, cols // 32)``: the GEMV unit's own golden
    :func:`fpgallm.units.gemv.golden_blocked` (the RTL computes it)."""
    return gemv_u.golden_blocked(pm, q, exps, qf)


def embed_row(pm: PackedMatrix, row: int, frac: int) -> np.ndarray:
    """Row ``row`` of a packed table as fixed point with ``frac`` fraction bits (one rounding)."""
    p = pm.params
    groups = pm.dm.shape[1]
    g = pm.cols // groups
    q = pm.q[row].astype(np.int64).reshape(groups, g)
    top = p.max_shift
    t = (q * pm.dm[row][:, None]) << (top - pm.dr[row])[:, None]
    if p.fmt.has_min:
        t = t + (pm.mm[row] << (top - pm.mr[row]))[:, None]
    return shift_to(t.reshape(-1), pm.emax - top + frac)


def norm_input(x: np.ndarray, frac: int) -> tuple[np.ndarray, int]:
    """24-bit register -> (18-bit norm input, its fraction bits) with one exponent per vector."""
    # the quantize unit's exponent rule (max(0, bit_length(max|x|) - (width - 1))) at 18 bits
    e = max(0, int(np.abs(x).max()).bit_length() - (NORM_IN_BITS - 1))
    in_frac = frac - e
    if in_frac < 0:
        e, in_frac = frac, 0
    elif in_frac > 24:
        e, in_frac = frac - 24, 24
    return shift_to(x, -e, NORM_IN_BITS), in_frac


def ew_add(a: Reg, b: Reg, fd: int) -> np.ndarray:
    fa, fb = a.frac, b.frac
    fm = min(max(fa, fb, fd), min(fa, fb) + 15)
    xa = a.v if fa <= fm else shift_to(a.v, fm - fa)
    xb = b.v if fb <= fm else shift_to(b.v, fm - fb)
    ma, mb = 1 << (fm - min(fa, fm)), 1 << (fm - min(fb, fm))
    if fd <= fm:
        return ew_u.golden(EW_ADD, xa, xb, ma, mb, fm - fd)
    return shift_to(ew_u.golden(EW_ADD, xa, xb, ma, mb, 0), fd - fm)


def rope(x: np.ndarray, pos: np.ndarray, heads: int, hd: int, style: int, table: dict) -> np.ndarray:
    """RoPE of ``heads`` head vectors of ``hd`` elements per sequence at positions ``pos``:
    :func:`fpgallm.units.rope.golden_table` (the rope unit's rotation arithmetic,
    ``round(x0*c - x1*s)``, ``round(x0*s + x1*c)`` by ``ROPE_FRAC`` bits, saturated to 24
    bits) with row ``pos`` of the Q1.14 cos/sin table of the memory image."""
    B = x.shape[0]
    conv = rope_u.RopeConvention.ADJACENT if style == C.ROPE_ADJACENT else rope_u.RopeConvention.HALVES
    c = table["cos"][pos][:, None, :hd // 2]
    s = table["sin"][pos][:, None, :hd // 2]
    out = rope_u.golden_table(conv, x.reshape(B, heads, hd), c, s, C.ROPE_FRAC, W)
    return out.reshape(B, heads * hd)


# --- the engine ----------------------------------------------------------------------------------

class EngineError(RuntimeError):
    pass


class Machine:
    """Executes a :class:`~fpgallm.engine.compiler.Compiled` program for up to ``batch`` sequences."""

    def __init__(self, compiled: C.Compiled, cache_weights: bool = True):
        self.c = compiled
        self.p: EngineParams = compiled.params
        self.spec = compiled.spec
        self._qf: dict[int, np.ndarray] = {}
        self.cache_weights = cache_weights
        from fpgallm.engine.cycles import CycleModel
        self.cycle_model = CycleModel(compiled)
        self.reset()

    def reset(self):
        s, ctx, B = self.spec, self.c.context, self.p.batch
        self.S = np.zeros((B, 16), np.int64)
        self.V: dict[int, Reg] = {}
        self.kv = {}
        for r in self.c.image.regions:
            if r.kind == "kv":
                shape = (B, s.n_kv_heads, ctx, s.head_dim)
                self.kv[r.addr] = {"k": np.zeros(shape, np.int64), "v": np.zeros(shape, np.int64),
                                   "ke": np.zeros(shape[:3], np.int64), "ve": np.zeros(shape[:3], np.int64),
                                   "kf": None, "vf": None}
        self.stored: dict[int, Reg] = {}
        self.cycles = 0
        self.runs = 0
        self.B = 1
        self.chunk = False
        self.trace: dict[int, Reg] | None = None

    def _weights_f32(self, addr: int, pm: PackedMatrix):
        qf = self._qf.get(addr)
        if qf is None:
            qf = pm.q.astype(np.float32)
            if self.cache_weights:
                self._qf[addr] = qf
        return qf

    def run(self, tokens, positions, trace: bool = False, chunk: bool = False) -> np.ndarray:
        """One program run for ``len(tokens)`` sequences (rows 0..B-1); returns the next tokens.
        ``chunk``: the rows are prompt positions of one sequence, sharing sequence 0's KV cache
        (the ``CHUNK`` bit of the engine's ``NSEQ`` register)."""
        tokens = np.asarray(tokens, np.int64).reshape(-1)
        positions = np.asarray(positions, np.int64).reshape(-1)
        B = tokens.size
        if not 1 <= B <= self.p.batch or positions.size != B:
            raise EngineError(f"run: 1..{self.p.batch} sequences with one position each")
        if positions.max() >= self.c.context or positions.min() < 0:
            raise EngineError(f"position {int(positions.max())} outside the KV cache (context {self.c.context})")
        self.B = B
        self.chunk = bool(chunk)
        self.S[:B, Sreg.POS] = positions
        self.S[:B, Sreg.TOKEN] = tokens
        self.trace = {} if trace else None
        self.runs += 1
        self.cycles += self.cycle_model.run([int(x) + 1 for x in positions])[0]
        for pc, ins in enumerate(self.c.program):
            if ins.op is Op.HALT:
                break
            getattr(self, "op_" + ins.op.name)(ins)
            if self.trace is not None and ins.op not in (Op.STOREV, Op.KVAPPEND, Op.ARGMAX, Op.PREFETCH):
                self.trace[pc] = self.V[ins.dst]
        return self.S[:B, Sreg.TOKEN].copy()

    # instructions --------------------------------------------------------------------------------
    def _region(self, addr):
        return self.c.image.by_addr[addr]

    def op_NOP(self, ins):
        pass

    def op_SYNC(self, ins):
        pass

    def op_PREFETCH(self, ins):
        pass                      # a hint: only the engine's timing changes

    def op_SETS(self, ins):
        self.S[:self.B, ins.dst] = ins.imm

    def op_ADDS(self, ins):
        imm = ins.imm - (1 << 24) if ins.imm >> 23 else ins.imm
        self.S[:self.B, ins.dst] = self.S[:self.B, ins.a] + imm

    def op_EMBED(self, ins):
        pm = self._region(ins.addr).data
        rows = [embed_row(pm, int(t), ins.imm & 0xFF)[:ins.n] for t in self.S[:self.B, Sreg.TOKEN]]
        self.V[ins.dst] = Reg(np.stack(rows), ins.imm & 0xFF)

    def op_LOADV(self, ins):
        r = self._region(ins.addr)
        if ins.mode == C.LOADV_POSROW:
            v = r.data[self.S[:self.B, Sreg.POS]][:, :ins.n]
        else:
            v = np.broadcast_to(r.data[:ins.n], (self.B, ins.n))
        self.V[ins.dst] = Reg(np.array(v, np.int64), r.meta["frac"])

    def op_STOREV(self, ins):
        a = self.V[ins.a]
        self.stored[ins.addr] = Reg(a.v[:, :ins.n].copy(), a.frac)

    def op_GEMV(self, ins):
        a = self.V[ins.a]
        if a.exps is None:
            raise EngineError(f"GEMV source V{ins.a} is not in the INT8 activation format (QUANT it)")
        pm = self._region(ins.addr).data
        acc = gemv_blocked(pm, a.v[:, :ins.m], a.exps[:, :ins.m // C.ACT_GROUP],
                           self._weights_f32(ins.addr, pm))[:, :ins.n]
        self.V[ins.dst] = Reg(shift_to(acc, pm.acc_exp - a.frac + ins.imm), ins.imm)

    def op_NORM(self, ins):
        a = self.V[ins.a]
        data = self._region(ins.addr).data
        out_frac, gf, bf = ins.imm & 0xFF, (ins.imm >> 8) & 0xFF, (ins.imm >> 16) & 0xFF
        rows = [norm(ins.mode, a.v[b, :ins.n], a.frac, data["gamma"], data.get("beta"), ins.m,
                     out_frac, gf, bf) for b in range(self.B)]
        self.V[ins.dst] = Reg(np.stack(rows), out_frac)

    def op_QUANT(self, ins):
        a = self.V[ins.a]
        qp = quant_params(C.ACT_GROUP)
        q, e = quant_u.golden(qp, a.v[:, :ins.n].reshape(-1))
        self.V[ins.dst] = Reg(q.reshape(self.B, ins.n), a.frac, e.reshape(self.B, -1))

    def op_ROPE(self, ins):
        a = self.V[ins.a]
        tab = self._region(ins.addr).data
        v = rope(a.v[:, :ins.n * ins.m], self.S[:self.B, Sreg.POS], ins.m, ins.n, ins.mode, tab)
        self.V[ins.dst] = Reg(v, a.frac)

    def op_ACT(self, ins):
        a = self.V[ins.a]
        fo = ins.imm & 0xFF
        self.V[ins.dst] = Reg(act(ins.mode, a.v[:, :ins.n], a.frac, fo), fo)

    def op_EWADD(self, ins):
        a, b = self.V[ins.a], self.V[ins.b]
        n, fd = ins.n, ins.imm & 0xFF
        self.V[ins.dst] = Reg(ew_add(Reg(a.v[:, :n], a.frac), Reg(b.v[:, :n], b.frac), fd), fd)

    def op_EWMUL(self, ins):
        a, b = self.V[ins.a], self.V[ins.b]
        n, fd = ins.n, ins.imm & 0xFF
        sh = a.frac + b.frac - fd
        y = ew_u.golden(EW_MUL, a.v[:, :n], b.v[:, :n], 1, 0, max(sh, 0))
        self.V[ins.dst] = Reg(y if sh >= 0 else shift_to(y, -sh), fd)

    def op_ARGMAX(self, ins):
        a = self.V[ins.a]
        p = argmax_u.ArgmaxParams(lanes=1, in_width=W, max_length=max(ins.n, 2))
        for b in range(self.B):
            self.S[b, ins.dst] = argmax_u.golden(p, a.v[b, :ins.n])[0]

    def _kv_seq(self, b: int) -> int:
        """The sequence whose KV cache row ``b`` uses."""
        return 0 if self.chunk else b

    def op_KVAPPEND(self, ins):
        kreg, vreg = self.V[ins.a], self.V[ins.b]
        kv = self.kv[ins.addr]
        hd = ins.m
        if hd == 0 or ins.n % hd:
            raise EngineError(f"KVAPPEND: n={ins.n} (kv_dim) is not a multiple of m={hd} (head_dim)")
        kvh = ins.n // hd
        bits = self.p.kv_format.bits
        qp = quant_params(hd, bits)
        for key, reg in (("k", kreg), ("v", vreg)):
            if kv[key + "f"] is None:
                kv[key + "f"] = reg.frac
            elif kv[key + "f"] != reg.frac:
                raise EngineError("KVAPPEND: format of the cached vectors changed")
            q, e = quant_u.golden(qp, reg.v[:, :ins.n].reshape(-1))
            q, e = q.reshape(self.B, kvh, hd), e.reshape(self.B, kvh)
            for b in range(self.B):
                pos, kb = self.S[b, Sreg.POS], self._kv_seq(b)
                kv[key][kb, :kvh, pos, :hd] = q[b]
                kv[key + "e"][kb, :kvh, pos] = e[b]

    def op_ATTN(self, ins):
        kv = self.kv[ins.addr]
        hd = ins.n
        H, KVH = ins.m & 0x3FF, ins.m >> 10
        G = H // KVH
        a = self.V[ins.a]
        # imm: out frac | frac of the cached K << 8 | of the cached V << 16
        out_frac, kf, vf = ins.imm & 0xFF, (ins.imm >> 8) & 0xFF, (ins.imm >> 16) & 0xFF
        qq, qe = quant_u.golden(quant_params(hd, Q_BITS), a.v[:, :H * hd].reshape(-1))
        qq, qe = qq.reshape(self.B, H, hd), qe.reshape(self.B, H)
        mult = score_mult(hd)
        smp = softmax_params(self.c.context)
        out = np.zeros((self.B, H * hd), np.int64)
        for b in range(self.B):
            L, kb = int(self.S[b, Sreg.POS]) + 1, self._kv_seq(b)
            for kh in range(KVH):
                K, ke = kv["k"][kb, kh, :L, :hd], kv["ke"][kb, kh, :L]
                Vv, ve = kv["v"][kb, kh, :L, :hd], kv["ve"][kb, kh, :L]
                for g in range(G):
                    h = kh * G + g
                    s = K @ qq[b, h]                       # exact integers (L,)
                    # value: s * 2**(qe + ke) * 2**-(fq + fk); to Q.SCORE_FRAC with the 1/sqrt(hd) multiplier
                    sh = a.frac + kf - int(qe[b, h]) - ke + SCORE_MULT_BITS - SCORE_FRAC
                    x = shift_by(s * mult, -sh)
                    p = softmax_u.golden(smp, x)           # Q.15
                    o = (p[:, None] * np.left_shift(Vv, ve[:, None])).sum(0)
                    out[b, h * hd:(h + 1) * hd] = shift_to(o, out_frac - 15 - vf)
        self.V[ins.dst] = Reg(out, out_frac)


# the memory system's read latency of the default engine (cycles; the simulation memory
# model's default, fpgallm.engine.rtl.simtop.MemTiming, is this + 1)
DEFAULT_MEM_LATENCY = 19


def default_params(s, context: int | None = None, weight_formats=None) -> EngineParams:
    """The engine ``fpgallm run --engine golden|rtl`` compiles a model for: the default
    :class:`EngineParams` with buffers (``max_head_dim`` included) sized to the model, the memory read latency of
    :data:`DEFAULT_MEM_LATENCY`, and (``weight_formats``) only the formats the model uses."""
    kw = {"weight_formats": tuple(weight_formats)} if weight_formats else {}
    return EngineParams(max_dim=max(s.d_model, 64), max_ffn=max(s.d_ffn, 64),
                        max_vocab=max(s.vocab_size, 2), max_context=min(s.max_seq_len, context or 1024),
                        max_head_dim=s.head_dim, mem_latency=DEFAULT_MEM_LATENCY, **kw)


class GoldenEngine:
    """``fpgallm run --engine golden``: compile the model, then greedy generation on the machine."""

    def __init__(self, model, params: EngineParams | None = None, scheme=None, context: int | None = None):
        params = params or default_params(model.spec, context, C.model_weight_formats(model, scheme))
        self.compiled = C.compile_model(model, params, scheme=scheme, context=context)
        self.machine = Machine(self.compiled)
        self.spec = model.spec
        self.eos = model.spec.eos_token_id
        self.last_logits = None
        self.tokens_run = 0

    def report(self) -> dict:
        """Program runs since the last reset, cycles counted by the cycle model, cycles per
        run and the tokens/s they mean at the engine's clock (batch sequences per run)."""
        runs = max(self.machine.runs, 1)
        cpt = self.machine.cycles / runs
        p = self.compiled.params
        return {"runs": self.machine.runs, "cycles": self.machine.cycles, "cycles_per_token": cpt,
                "tokens_per_s": (self.machine.B if self.machine.runs else 1) * p.clock_mhz * 1e6 / max(cpt, 1)}

    def logits(self) -> np.ndarray:
        """Float logits ``(B, vocab)`` of the last run (from the STOREV region)."""
        r = next(iter(self.machine.stored.values()))
        return r.v.astype(np.float64) * 2.0 ** -r.frac

    def step(self, tokens, positions, chunk: bool = False, trace: bool = False) -> np.ndarray:
        nxt = self.machine.run(tokens, positions, trace, chunk)
        self.tokens_run += 1
        return nxt

    def teacher_forced(self, ids, trace_marks: bool = False):
        """Logits ``(len(ids), vocab)`` of every position, feeding ``ids`` (batch 1)."""
        self.machine.reset()
        out, traces = [], []
        for pos, t in enumerate(ids):
            self.step([t], [pos], trace=trace_marks)
            out.append(self.logits()[0])
            if trace_marks:
                traces.append({k: self.machine.trace[pc] for k, pc in self.compiled.marks.items()})
        return (np.stack(out), traces) if trace_marks else np.stack(out)

    def generate_batch(self, prompts: list[list[int]], max_new_tokens: int, stop_at_eos: bool = True):
        """Greedy generation of up to ``batch`` prompts together (prefill token by token;
        sequences still in their prompt are fed the prompt's next token); one prompt on an
        engine of batch > 1 prefills in chunks of ``batch`` positions
        (:func:`fpgallm.engine.generation.greedy_schedule`)."""
        from fpgallm.engine.generation import drive, greedy_schedule

        if not 1 <= len(prompts) <= self.compiled.params.batch:
            raise ValueError(f"generate_batch: 1..{self.compiled.params.batch} prompts")
        schedule = greedy_schedule(prompts, max_new_tokens, self.compiled.context, self.eos, stop_at_eos,
                                   chunk=self.compiled.params.batch)
        self.machine.reset()
        return drive(schedule, self.step)

    def recorded_runs(self, prompts: list[list[int]], max_new_tokens: int, stop_at_eos: bool = False,
                      chunk: int | None = None):
        """Greedy generation recorded program run by program run: ``(runs, outs)``, each run
        ``((tokens, positions, chunk), int32 logits (batch, n), next ids, cycle-model cycles)``
        (what an RTL simulation of the same schedule must reproduce); ``chunk``: prefill chunk
        of a single prompt (default the engine's batch; 1: token by token)."""
        from fpgallm.engine.generation import greedy_schedule

        sched = greedy_schedule(prompts, max_new_tokens, self.compiled.context, self.eos, stop_at_eos,
                                chunk=self.compiled.params.batch if chunk is None else chunk)
        runs = []
        self.machine.reset()
        try:
            tokens, positions, chunk = next(sched)
            while True:
                before = self.machine.cycles
                nxt = self.step(tokens, positions, chunk)
                stored = next(iter(self.machine.stored.values()))
                runs.append(((list(tokens), list(positions), chunk), stored.v.copy(), list(map(int, nxt)),
                             self.machine.cycles - before))
                tokens, positions, chunk = sched.send(nxt)
        except StopIteration as stop:
            return runs, stop.value

    def generate(self, prompt_ids, max_new_tokens):
        if max_new_tokens <= 0:
            return []
        return self.generate_batch([list(prompt_ids)], max_new_tokens)[0]
