"""Execution unit of ``ACT``: ``V[dst] = act(V[a][0:n])``, ``mode`` SiLU 0 / GELU-tanh 1,
output ``imm[7:0]`` fraction bits.

Arithmetic: exactly ``golden.act``: two fixed :class:`~fpgallm.units.activation.Activation`
units (``golden.act_params(mode)``: 24-bit input with ``ACT_IN_FRAC`` = 18 fraction bits,
32-bit output with ``ACT_OUT_FRAC`` = 22) between run-time shifts from ``fa = frac_a`` and
``fo = imm[7:0]``; per element

- ``|x| < 2**(fa + 4)`` (inside the table): ``shift_to(unit(shift_to(x, 18 - fa)), fo - 22)``;
- else (the unit would give ``relu(x)``): ``shift_to(max(x, 0), fo - fa)``, carried beside
  the unit in a small FIFO.

Ports: ``vra`` reads ``V[a]``, ``vw`` writes ``V[dst]`` (``dst == a`` allowed); ``L =
vector_lanes`` elements per cycle, sequences back to back.  Timing: :func:`cycles`.
"""

from __future__ import annotations

import dataclasses

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO

from fpgallm.engine import compiler as C
from fpgallm.engine.isa import Op
from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl import iface
from fpgallm.engine.rtl.vecutil import CmdLatch, beats_of, issue_requests, lanes_log2
from fpgallm.hdl.requant import shift_to
from fpgallm.units import activation as act_u

OPS = (Op.ACT,)

W = iface.REG_BITS
FIXED_CYCLES = 8   # command latch, first request, the activation unit's 5 stages


def cycles(p: EngineParams, n: int, nseq: int) -> int:
    """Cycles of one ``ACT`` of ``n`` elements for ``nseq`` sequences (no stalls)."""
    return nseq * (-(-n // p.vector_lanes)) + FIXED_CYCLES


def unit_params(p: EngineParams, kind: int) -> act_u.ActivationParams:
    from fpgallm.engine import golden as G
    return dataclasses.replace(G.act_params(kind), lanes=p.vector_lanes)


class Unit(wiring.Component):
    """The ``ACT`` execution unit (contract in the module docstring)."""

    def __init__(self, params: EngineParams):
        self.params = params
        lanes_log2(params, "x_act")
        self.silu = unit_params(params, C.ACT_SILU)
        self.gelu = unit_params(params, C.ACT_GELU)
        super().__init__(iface.exec_signature(params))

    def elaborate(self, platform):
        p = self.params
        L = p.vector_lanes
        lk = lanes_log2(p, "x_act")
        m = Module()
        m.submodules.silu = silu = act_u.Activation(self.silu)
        m.submodules.gelu = gelu = act_u.Activation(self.gelu)
        ip = self.silu

        cl = CmdLatch(m, self.cmd, p)
        c = cl.c
        n = c.ins.n
        is_gelu = Signal(name="is_gelu")
        m.d.comb += is_gelu.eq(c.ins.mode == C.ACT_GELU)
        nbeats = Signal(iface.ELEM_BITS, name="nbeats")
        m.d.comb += nbeats.eq(beats_of(n, lk))

        fa = Signal(signed(10), name="fa")
        fo = Signal(signed(10), name="fo")
        m.d.comb += [fa.eq(c.frac_a), fo.eq(c.ins.imm[:8])]
        sh_in = Signal(signed(11), name="sh_in")       # ACT_IN_FRAC - fa
        sh_byp = Signal(signed(11), name="sh_bypass")  # fo - fa
        sh_out = Signal(signed(11), name="sh_out")     # fo - ACT_OUT_FRAC
        lim_bits = Signal(range(64), name="big_bits")  # |x| >= 2**(fa + range_log2): bypass
        with m.If(cl.start):
            m.d.sync += [sh_in.eq(ip.in_frac - fa), sh_byp.eq(fo - fa), sh_out.eq(fo - ip.out_frac),
                         lim_bits.eq(Mux(fa + ip.range_log2 > 40, 40, fa + ip.range_log2))]

        issue_requests(m, self.vra.req, cl.start, c.nseq, c.ins.a, 0, n, "ra")
        issue_requests(m, self.vw.req, cl.start, c.nseq, c.ins.dst, 0, n, "wr")

        # ---- input: shift into the units' format; bypass values to the side FIFO ----
        m.submodules.side = side = SyncFIFO(width=L * (W + 1), depth=8)
        in_valid = Signal(name="in_valid")
        in_ready = Signal(name="in_ready")
        m.d.comb += [in_valid.eq(self.vra.data.valid & cl.busy & side.w_rdy),
                     in_ready.eq(Mux(is_gelu, gelu.i.ready, silu.i.ready)),
                     silu.i.valid.eq(in_valid & ~is_gelu), gelu.i.valid.eq(in_valid & is_gelu),
                     self.vra.data.ready.eq(in_valid & in_ready),
                     side.w_en.eq(in_valid & in_ready)]
        side_in = []
        for k in range(L):
            x = self.vra.data.payload.data[k]
            ax = Mux(x < 0, -x, x)
            big = Signal(name=f"big{k}")
            m.d.comb += big.eq((ax >> lim_bits) != 0)
            xin = Signal(signed(W), name=f"xin{k}")
            m.d.comb += xin.eq(shift_to(m, Mux(big, 0, x), sh_in, W, f"in{k}"))
            byp = Signal(signed(W), name=f"bypass{k}")
            m.d.comb += byp.eq(shift_to(m, Mux(x > 0, x, 0), sh_byp, W, f"byp{k}"))
            m.d.comb += [silu.i.payload[k].eq(xin), gelu.i.payload[k].eq(xin)]
            side_in += [byp, big]
        m.d.comb += side.w_data.eq(Cat(*side_in))

        # ---- output: unit result shifted to fo, or the bypass value ----
        wb = Signal(iface.ELEM_BITS, name="beat")
        sq = Signal(4, name="seq")
        o_valid = Signal(name="o_valid")
        vwd = self.vw.data
        m.d.comb += [o_valid.eq(Mux(is_gelu, gelu.o.valid, silu.o.valid)),
                     vwd.valid.eq(o_valid),
                     silu.o.ready.eq(vwd.ready & ~is_gelu),
                     gelu.o.ready.eq(vwd.ready & is_gelu),
                     side.r_en.eq(vwd.valid & vwd.ready),
                     vwd.payload.last.eq(wb == nbeats - 1)]
        for k in range(L):
            y = Mux(is_gelu, gelu.o.payload[k], silu.o.payload[k])
            base = k * (W + 1)
            byp = side.r_data[base:base + W].as_signed()
            big = side.r_data[base + W]
            m.d.comb += vwd.payload.data[k].eq(Mux(big, byp, shift_to(m, y, sh_out, W, f"out{k}")))

        m.d.sync += self.done.eq(0)
        with m.If(cl.start):
            m.d.sync += [wb.eq(0), sq.eq(0)]
        with m.Elif(vwd.valid & vwd.ready):
            m.d.sync += wb.eq(wb + 1)
            with m.If(wb == nbeats - 1):
                m.d.sync += [wb.eq(0), sq.eq(sq + 1)]
                with m.If(sq + 1 == c.nseq):
                    m.d.sync += [self.done.eq(1)] + cl.finish()
        return m
