"""Execution unit of ``NORM``: ``V[dst] = norm(V[a][0:n])`` with the weights at ``addr``;
``mode`` RMS 0 / LAYER 1; ``imm`` = out frac | gamma frac << 8 | beta frac << 16; ``m`` =
eps (:func:`fpgallm.engine.compiler.norm_eps_field`).

Arithmetic: exactly ``golden.norm``: :func:`~fpgallm.engine.golden.norm_input` (the whole
vector's exponent ``e`` brings the 24-bit register to 18 bits, ``in_frac = frac_a - e``),
then one fixed :class:`~fpgallm.units.norm.Norm` (``golden.norm_params``, ``runtime=True``)
with ``rms = (mode == RMS)``, ``eps_q = golden.norm_eps_q(m, in_frac)``, ``out_shift = 16 +
gamma_frac - out_frac``, ``beta_shift = out_frac - beta_frac``.

Per sequence (serially): pass 0 reads ``V[a]`` for ``max |x|`` -> ``e``, ``eps_q``; pass 1
reads ``V[a]`` again, shifted and rounded into the norm unit (which buffers it); the unit's
pass 2 takes the weights, read from memory (``mr``) through a byte gearbox, and its output
goes to ``V[dst]`` (``dst == a`` allowed: every element is read in pass 1 before pass 2
writes).

Weights (:func:`norm_image`): RMS: ``gamma`` as int16 little-endian; LAYER: ``(gamma,
beta)`` int16 pairs per element.  Requirements: ``vector_lanes`` a power of two; ``n`` a
multiple of it (the compiler's d_model is a multiple of 32).  Timing: :func:`cycles`.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring

from fpgallm.engine import compiler as C
from fpgallm.engine.isa import Op
from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl import iface
from fpgallm.engine.rtl.vecutil import CmdLatch, lanes_log2
from fpgallm.hdl.fixed import hdl_round_shift
from fpgallm.hdl.requant import shift_right_sat
from fpgallm.hdl.shift import step_shift
from fpgallm.units import norm as norm_u

OPS = (Op.NORM,)

W = iface.REG_BITS
IN_BITS = 18


def norm_image(data: dict, params: EngineParams) -> bytes:
    """Bytes of a norm weight region: int16 gamma (RMS) or (gamma, beta) pairs (LAYER)."""
    g = np.asarray(data["gamma"], np.int64)
    if data.get("beta") is None:
        return g.astype("<i2").tobytes()
    out = np.empty(2 * g.size, np.int64)
    out[0::2], out[1::2] = g, np.asarray(data["beta"], np.int64)
    return out.astype("<i2").tobytes()


def unit_params(p: EngineParams) -> norm_u.NormParams:
    from fpgallm.engine import golden as G
    L = p.vector_lanes
    return dataclasses.replace(G.norm_params(-(-p.max_dim // L) * L), lanes=L)


def cycles(p: EngineParams, n: int, nseq: int, layer: bool = False, mem_latency: int = 0) -> int:
    """Cycles of one ``NORM`` of ``n`` elements for ``nseq`` sequences (no stalls; the
    weights' first word ``mem_latency`` cycles after the request, hidden behind pass 1 and
    the statistics when shorter)."""
    L = p.vector_lanes
    from fpgallm.engine import golden as G
    up = G.norm_params(max(n, 1))    # stat_cycles does not depend on lanes or max_len
    beats = -(-n // L)
    words = -(-(n * (4 if layer else 2)) // (iface.stripe_bits(p) // 8))
    hidden = beats + up.stat_cycles
    # pass 2 takes a beat a cycle unless the weights' words are the limit; the gearbox has
    # 4L // SB words (and the one arriving) ahead when pass 2 starts
    pass2 = max(beats, words - (4 * L) // (iface.stripe_bits(p) // 8))
    per_seq = 2 * beats + up.stat_cycles + pass2 + SEQ_CYCLES + max(0, mem_latency - hidden)
    return nseq * per_seq + FIXED_CYCLES


SEQ_CYCLES = 10   # per sequence: requests, exponent / eps, the unit's pass-2 pipeline
FIXED_CYCLES = 2  # command latch, done


class Unit(wiring.Component):
    """The ``NORM`` execution unit (contract in the module docstring)."""

    def __init__(self, params: EngineParams):
        self.params = params
        lanes_log2(params, "x_norm")
        self.nparams = unit_params(params)
        super().__init__(iface.exec_signature(params))

    def elaborate(self, platform):
        p = self.params
        L = p.vector_lanes
        lk = lanes_log2(p, "x_norm")
        SB = iface.stripe_bits(p) // 8
        GMAX = 4 * L
        m = Module()
        m.submodules.norm = nu = norm_u.Norm(self.nparams)

        cl = CmdLatch(m, self.cmd, p)
        c = cl.c
        n = c.ins.n
        layer = Signal(name="layer")
        m.d.comb += layer.eq(c.ins.mode == C.NORM_LAYER)
        nbeats = Signal(iface.ELEM_BITS, name="nbeats")
        m.d.comb += nbeats.eq(n >> lk)

        # ---- words of weights per sequence: ceil(n * (2 or 4) / SB), by subtraction ----
        wbeats = Signal(iface.ELEM_BITS + 3, name="w_words")
        wrem = Signal(signed(iface.ELEM_BITS + 4), name="w_rem")
        calc = Signal(name="calc")
        with m.If(cl.start):
            m.d.sync += [wbeats.eq(0), wrem.eq(Mux(layer, n << 2, n << 1)), calc.eq(1)]
        with m.Elif(calc):
            with m.If(wrem > 0):
                m.d.sync += [wrem.eq(wrem - SB), wbeats.eq(wbeats + 1)]
            with m.Else():
                m.d.sync += calc.eq(0)

        # ---- sequencing: pass 0 (absmax), exponent, pass 1 (into the unit), output ----
        seq = Signal(4, name="seq")
        st_p0 = Signal(name="st_p0")
        st_exp = Signal(name="st_exp")
        st_p1 = Signal(name="st_p1")
        st_out = Signal(name="st_out")
        ra_pend = Signal(name="ra_pending")
        wr_pend = Signal(name="wr_pending")
        mr_pend = Signal(name="mr_pending")
        next_seq = Signal(name="next_seq")
        with m.If(cl.start):
            m.d.sync += [seq.eq(0), st_p0.eq(1), ra_pend.eq(1)]
        with m.If(next_seq):
            m.d.sync += [seq.eq(seq + 1), st_p0.eq(1), ra_pend.eq(1)]

        m.d.comb += [self.vra.req.valid.eq(ra_pend), self.vra.req.payload.reg.eq(c.ins.a),
                     self.vra.req.payload.seq.eq(seq), self.vra.req.payload.start.eq(0),
                     self.vra.req.payload.count.eq(n)]
        with m.If(self.vra.req.valid & self.vra.req.ready):
            m.d.sync += ra_pend.eq(0)
        m.d.comb += [self.vw.req.valid.eq(wr_pend), self.vw.req.payload.reg.eq(c.ins.dst),
                     self.vw.req.payload.seq.eq(seq), self.vw.req.payload.start.eq(0),
                     self.vw.req.payload.count.eq(n)]
        with m.If(self.vw.req.valid & self.vw.req.ready):
            m.d.sync += wr_pend.eq(0)
        m.d.comb += [self.mr.req.valid.eq(mr_pend & ~calc), self.mr.req.payload.addr.eq(c.ins.addr),
                     self.mr.req.payload.beats.eq(wbeats)]
        with m.If(self.mr.req.valid & self.mr.req.ready):
            m.d.sync += mr_pend.eq(0)

        # pass 0: running max |x|
        amax = Signal(unsigned(W), name="amax")
        rd = self.vra.data
        beat_max = Signal(unsigned(W), name="beat_max")
        absv = []
        for k in range(L):
            x = rd.payload.data[k]
            a = Signal(unsigned(W), name=f"abs{k}")
            m.d.comb += a.eq(Mux(x < 0, -x, x))
            absv.append(a)
        while len(absv) > 1:
            nxt = [Mux(absv[i] > absv[i + 1], absv[i], absv[i + 1]) for i in range(0, len(absv) - 1, 2)]
            if len(absv) % 2:
                nxt.append(absv[-1])
            absv = nxt
        m.d.comb += beat_max.eq(absv[0])
        with m.If(cl.start | next_seq):
            m.d.sync += amax.eq(0)
        with m.If(st_p0 & rd.valid & rd.ready):
            m.d.sync += amax.eq(Mux(beat_max > amax, beat_max, amax))
            with m.If(rd.payload.last):
                m.d.sync += [st_p0.eq(0), st_exp.eq(1)]

        # exponent, in_frac, eps_q, output shifts (registered, two cycles)
        bitlen = Signal(range(W + 1), name="bitlen")
        for b in range(W):
            with m.If(amax[b]):
                m.d.comb += bitlen.eq(b + 1)
        frac = Signal(signed(10), name="frac")
        m.d.comb += frac.eq(c.frac_a)
        e0 = Signal(signed(10), name="e0")
        m.d.comb += e0.eq(Mux(bitlen > IN_BITS - 1, bitlen - (IN_BITS - 1), 0))
        e = Signal(unsigned(9), name="e")
        in_frac = Signal(signed(10), name="in_frac")
        exp_step = Signal(name="exp_step")
        with m.If(st_exp & ~exp_step):
            m.d.sync += exp_step.eq(1)
            with m.If(frac - e0 < 0):
                m.d.sync += [e.eq(frac), in_frac.eq(0)]
            with m.Elif(frac - e0 > 24):
                m.d.sync += [e.eq(frac - 24), in_frac.eq(24)]
            with m.Else():
                m.d.sync += [e.eq(e0), in_frac.eq(frac - e0)]
        mant = c.ins.m[:C.NORM_EPS_MANT_BITS]
        ex = c.ins.m[C.NORM_EPS_MANT_BITS:C.NORM_EPS_MANT_BITS + 8]
        sh = Signal(signed(11), name="eps_sh")
        m.d.comb += sh.eq(2 * in_frac - ex)
        lft = (mant << Mux(sh > 40, 40, sh)[:6])
        rgt = hdl_round_shift(mant, Mux(-sh > 13, 13, -sh)[:4], 13)
        epsv = Mux(sh >= 0, lft, rgt)
        eps_max = (1 << norm_u.RUNTIME_EPS_BITS) - 1
        eps_q = Signal(unsigned(norm_u.RUNTIME_EPS_BITS), name="eps_q")
        out_shift = Signal(unsigned(6), name="out_shift")
        beta_shift = Signal(unsigned(5), name="beta_shift")
        of = c.ins.imm[:8]
        gf = c.ins.imm[8:16]
        bf = c.ins.imm[16:24]
        with m.If(st_exp & exp_step):
            m.d.sync += [exp_step.eq(0), st_exp.eq(0), st_p1.eq(1), ra_pend.eq(1), wr_pend.eq(1),
                         mr_pend.eq(1),
                         eps_q.eq(Mux(epsv > eps_max, eps_max, Mux(epsv < 1, 1, epsv))),
                         out_shift.eq(self.nparams.norm_frac + gf - of),
                         beta_shift.eq(of - bf)]
        m.d.comb += [nu.rms.eq(~layer), nu.eps_q.eq(eps_q), nu.out_shift.eq(out_shift),
                     nu.beta_shift.eq(beta_shift)]

        # pass 1: shifted, rounded, saturated to 18 bits into the unit
        e_c = Signal(range(32), name="e_capped")
        m.d.comb += e_c.eq(Mux(e > 31, 31, e))
        for k in range(L):
            m.d.comb += nu.i.payload.x[k].eq(shift_right_sat(m, rd.payload.data[k], e_c, IN_BITS, f"in{k}"))
        m.d.comb += [nu.i.payload.last.eq(rd.payload.last),
                     nu.i.valid.eq(st_p1 & rd.valid),
                     rd.ready.eq(st_p0 | (st_p1 & nu.i.ready))]
        with m.If(st_p1 & rd.valid & rd.ready & rd.payload.last):
            m.d.sync += [st_p1.eq(0), st_out.eq(1)]

        # weights: stripe words -> gearbox -> unit.w (gamma[L], beta[L])
        BUFB = SB + GMAX
        buf = Signal(8 * BUFB, name="gear_buf")
        cnt = Signal(range(BUFB + 1), name="gear_cnt")
        G = Signal(range(GMAX + 1), name="granule")
        m.d.comb += G.eq(Mux(layer, 4 * L, 2 * L))
        take_out = Signal(name="gear_out")
        take_in = Signal(name="gear_in")
        after = Mux(take_out, Mux(layer, buf[8 * 4 * L:], buf[8 * 2 * L:]), buf)   # buf >> 8G
        cnt_after = Signal.like(cnt, name="gear_cnt_after")
        m.d.comb += cnt_after.eq(Mux(take_out, cnt - G, cnt))
        m.d.comb += [nu.w.valid.eq(cnt >= G),
                     self.mr.data.ready.eq(cnt_after <= GMAX),
                     take_out.eq(nu.w.valid & nu.w.ready),
                     take_in.eq(self.mr.data.valid & self.mr.data.ready)]
        for k in range(L):
            g_l = Mux(layer, buf[32 * k:32 * k + 16], buf[16 * k:16 * k + 16])
            m.d.comb += [nu.w.payload.gamma[k].eq(g_l.as_signed()),
                         nu.w.payload.beta[k].eq(Mux(layer, buf[32 * k + 16:32 * k + 32], 0).as_signed())]
        # cnt moves by SB and -G (2L or 4L bytes): a multiple of their common power of two,
        # at most GMAX when a word is taken
        gb = math.gcd(SB, 2 * L)
        word_in = step_shift(m, self.mr.data.payload.data, cnt_after >> (gb.bit_length() - 1), 8 * gb,
                             GMAX // gb + 1, 8 * BUFB, "gear_word", left=True)
        with m.If(take_in):
            m.d.sync += [buf.eq(after | word_in),
                         cnt.eq(cnt_after + SB)]
        with m.Else():
            m.d.sync += [buf.eq(after), cnt.eq(cnt_after)]
        with m.If(cl.start | next_seq):
            m.d.sync += cnt.eq(0)

        # output to V[dst]
        ob = Signal(iface.ELEM_BITS, name="out_beat")
        vwd = self.vw.data
        m.d.comb += [vwd.valid.eq(nu.o.valid), nu.o.ready.eq(vwd.ready),
                     vwd.payload.last.eq(ob == nbeats - 1)]
        for k in range(L):
            m.d.comb += vwd.payload.data[k].eq(nu.o.payload[k])
        m.d.sync += self.done.eq(0)
        with m.If(cl.start):
            m.d.sync += ob.eq(0)
        with m.Elif(vwd.valid & vwd.ready):
            m.d.sync += ob.eq(ob + 1)
            with m.If(ob == nbeats - 1):
                m.d.sync += [ob.eq(0), st_out.eq(0)]
                with m.If(seq + 1 == c.nseq):
                    m.d.sync += [self.done.eq(1)] + cl.finish()
                with m.Else():
                    m.d.comb += next_seq.eq(1)
        return m
