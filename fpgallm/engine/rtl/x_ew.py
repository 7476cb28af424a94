"""Execution unit of ``EWADD`` and ``EWMUL``: ``V[dst] = V[a] + V[b]`` / ``V[a] * V[b]`` over
``n`` elements, requantized to ``imm[7:0]`` fraction bits.

Arithmetic: exactly ``golden.ew_add`` / ``golden.op_EWMUL``, i.e.
:func:`fpgallm.units.elementwise.golden` (``EW_ADD``: 16-bit power-of-two multipliers;
``EW_MUL``) between two run-time shifts, all derived from the tags ``fa = frac_a``,
``fb = frac_b`` and ``fd = imm[7:0]``:

- ``EWADD``: ``fm = min(max(fa, fb, fd), min(fa, fb) + 15)``; an input finer than ``fm`` is
  first rounded to ``fm`` (``shift_to``); ``mult_x = 2**(fm - min(fx, fm))``; the unit shifts
  right by ``fm - fd`` when ``fd <= fm``, else its output is shifted left by ``fd - fm`` with
  saturation.
- ``EWMUL``: ``sh = fa + fb - fd``; the unit (``mult_a = 1``) shifts right by ``sh >= 0``,
  else its output is shifted left by ``-sh`` with saturation.

Ports: ``vra`` reads ``V[a]``, ``vrb`` reads ``V[b]`` (in lockstep), ``vw`` writes ``V[dst]``
(``dst`` may equal ``a`` or ``b``).  ``L = vector_lanes`` elements per cycle; sequences back
to back.  Timing: :func:`cycles`.
"""

from __future__ import annotations

import dataclasses

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring

from fpgallm.engine.isa import Op
from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl import iface
from fpgallm.engine.rtl.vecutil import CmdLatch, beats_of, issue_requests, lanes_log2
from fpgallm.hdl.requant import shift_left_sat, shift_right_sat
from fpgallm.units import elementwise as ew_u

OPS = (Op.EWADD, Op.EWMUL)

W = iface.REG_BITS
PRE_MAX = 31     # right pre-shifts beyond 25 give 0 for 24-bit inputs: capped here
POST_MAX = 24    # left post-shifts beyond 23 saturate every non-zero value: capped here
FIXED_CYCLES = 6  # command latch, first request, the elementwise unit's 3 stages, done


def cycles(p: EngineParams, n: int, nseq: int) -> int:
    """Cycles of one ``EWADD`` / ``EWMUL`` of ``n`` elements for ``nseq`` sequences."""
    return nseq * (-(-n // p.vector_lanes)) + FIXED_CYCLES


def unit_params(p: EngineParams):
    from fpgallm.engine import golden as G
    add = dataclasses.replace(G.EW_ADD, lanes=p.vector_lanes)
    mul = dataclasses.replace(G.EW_MUL, lanes=p.vector_lanes)
    return add, mul


def _min(a, b):
    return Mux(a < b, a, b)


def _max(a, b):
    return Mux(a > b, a, b)


class Unit(wiring.Component):
    """The ``EWADD`` / ``EWMUL`` execution unit (contract in the module docstring)."""

    def __init__(self, params: EngineParams):
        self.params = params
        lanes_log2(params, "x_ew")
        self.add_params, self.mul_params = unit_params(params)
        super().__init__(iface.exec_signature(params))

    def elaborate(self, platform):
        p = self.params
        L = p.vector_lanes
        lk = lanes_log2(p, "x_ew")
        m = Module()
        m.submodules.add = add = ew_u.Elementwise(self.add_params)
        m.submodules.mul = mul = ew_u.Elementwise(self.mul_params)

        cl = CmdLatch(m, self.cmd, p)
        c = cl.c
        n = c.ins.n
        is_mul = Signal(name="is_mul")
        m.d.comb += is_mul.eq(c.ins.op == int(Op.EWMUL))
        nbeats = Signal(iface.ELEM_BITS, name="nbeats")
        m.d.comb += nbeats.eq(beats_of(n, lk))

        # ---- run-time requantization from the tags (registered once per command) ----
        fa = Signal(signed(10), name="fa")
        fb = Signal(signed(10), name="fb")
        fd = Signal(signed(10), name="fd")
        m.d.comb += [fa.eq(c.frac_a), fb.eq(c.frac_b), fd.eq(c.ins.imm[:8])]
        fm = Signal(signed(11), name="fm")
        m.d.comb += fm.eq(_min(_max(_max(fa, fb), fd), _min(fa, fb) + 15))
        pre_a = Signal(range(PRE_MAX + 1), name="pre_a")
        pre_b = Signal(range(PRE_MAX + 1), name="pre_b")
        mult_a = Signal(unsigned(16), name="mult_a")
        mult_b = Signal(unsigned(16), name="mult_b")
        shift = Signal(unsigned(6), name="shift")
        post = Signal(range(POST_MAX + 1), name="post")
        sh_mul = Signal(signed(12), name="sh_mul")
        m.d.comb += sh_mul.eq(fa + fb - fd)

        def cap(x, hi):
            return Mux(x > hi, hi, x)

        with m.If(cl.start):
            with m.If(is_mul):
                m.d.sync += [pre_a.eq(0), pre_b.eq(0), mult_a.eq(1), mult_b.eq(0),
                             shift.eq(Mux(sh_mul > 0, cap(sh_mul, 62), 0)),
                             post.eq(Mux(sh_mul < 0, cap(-sh_mul, POST_MAX), 0))]
            with m.Else():
                m.d.sync += [pre_a.eq(Mux(fa > fm, cap(fa - fm, PRE_MAX), 0)),
                             pre_b.eq(Mux(fb > fm, cap(fb - fm, PRE_MAX), 0)),
                             mult_a.eq(1 << Mux(fa < fm, fm - fa, 0)[:4]),
                             mult_b.eq(1 << Mux(fb < fm, fm - fb, 0)[:4]),
                             shift.eq(Mux(fd <= fm, cap(fm - fd, 62), 0)),
                             post.eq(Mux(fd > fm, cap(fd - fm, POST_MAX), 0))]
        for u in (add, mul):
            m.d.comb += [u.mult_a.eq(mult_a), u.mult_b.eq(mult_b), u.shift.eq(shift)]

        issue_requests(m, self.vra.req, cl.start, c.nseq, c.ins.a, 0, n, "ra")
        issue_requests(m, self.vrb.req, cl.start, c.nseq, c.ins.b, 0, n, "rb")
        issue_requests(m, self.vw.req, cl.start, c.nseq, c.ins.dst, 0, n, "wr")

        # ---- join A and B, pre-round, into the active unit ----
        both = Signal(name="both_valid")
        m.d.comb += both.eq(self.vra.data.valid & self.vrb.data.valid & cl.busy)
        in_ready = Signal(name="in_ready")
        m.d.comb += [in_ready.eq(Mux(is_mul, mul.i.ready, add.i.ready)),
                     add.i.valid.eq(both & ~is_mul), mul.i.valid.eq(both & is_mul),
                     self.vra.data.ready.eq(both & in_ready),
                     self.vrb.data.ready.eq(both & in_ready)]
        for k in range(L):
            a = self.vra.data.payload.data[k]
            b = self.vrb.data.payload.data[k]
            m.d.comb += [add.i.payload.a[k].eq(shift_right_sat(m, a, pre_a, W, f"pre_a{k}")),
                         add.i.payload.b[k].eq(shift_right_sat(m, b, pre_b, W, f"pre_b{k}")),
                         mul.i.payload.a[k].eq(a), mul.i.payload.b[k].eq(b)]

        # ---- active unit out, saturating left post-shift, to V[dst] ----
        wb = Signal(iface.ELEM_BITS, name="beat")
        sq = Signal(4, name="seq")
        o_valid = Signal(name="o_valid")
        m.d.comb += [o_valid.eq(Mux(is_mul, mul.o.valid, add.o.valid)),
                     self.vw.data.valid.eq(o_valid),
                     add.o.ready.eq(self.vw.data.ready & ~is_mul),
                     mul.o.ready.eq(self.vw.data.ready & is_mul),
                     self.vw.data.payload.last.eq(wb == nbeats - 1)]
        for k in range(L):
            y = Mux(is_mul, mul.o.payload[k], add.o.payload[k])
            m.d.comb += self.vw.data.payload.data[k].eq(shift_left_sat(m, y, post, W, f"post{k}"))

        m.d.sync += self.done.eq(0)
        with m.If(cl.start):
            m.d.sync += [wb.eq(0), sq.eq(0)]
        with m.Elif(self.vw.data.valid & self.vw.data.ready):
            m.d.sync += wb.eq(wb + 1)
            with m.If(wb == nbeats - 1):
                m.d.sync += [wb.eq(0), sq.eq(sq + 1)]
                with m.If(sq + 1 == c.nseq):
                    m.d.sync += [self.done.eq(1)] + cl.finish()
        return m
