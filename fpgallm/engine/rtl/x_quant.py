"""Execution unit of ``QUANT``: ``V[dst] = quantize(V[a][0:n])`` to the block-scaled INT8
activation format (group :data:`~fpgallm.engine.rtl.iface.ACT_GROUP` = 32, 24 -> 8 bits).

Arithmetic: exactly :func:`fpgallm.units.quantize.golden` (``golden.op_QUANT``): one
:class:`~fpgallm.units.quantize.Quantize` with ``lanes = vector_lanes``, ``group = 32``,
``in_width = 24``, ``out_width = 8``.

Ports: ``vra`` reads ``V[a]`` (``n`` elements, one request per sequence), ``vw`` writes the
INT8 values sign-extended to 24 bits into ``V[dst]``, ``ew`` writes the ``n / 32`` group
exponents of ``V[dst]`` (the controller marks ``dst`` block-scaled, frac = ``frac_a``).
``n`` is a multiple of 32 (the compiler checks).  ``dst == a`` is allowed (every element
is read before it is written).

Timing (no backpressure, register file answering at once): ``n / L`` beats per sequence,
sequences back to back, plus the quantizer's latency; :data:`FIXED_CYCLES` models the rest
(command latch, request, pipeline), see :func:`cycles`.

Requires ``vector_lanes`` a power of two dividing 32 (``ValueError`` naming the field).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring

from fpgallm.engine.isa import Op
from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl import iface
from fpgallm.engine.rtl.vecutil import CmdLatch, fork, issue_requests, lanes_log2
from fpgallm.units.quantize import Quantize, QuantizeParams

OPS = (Op.QUANT,)

# cycles beyond n/L beats per sequence: the command latch, the first request, the
# quantizer's group fill -> first output (latency 3 after the group's last beat), done
FIXED_CYCLES = 5


def quant_params(p: EngineParams) -> QuantizeParams:
    lanes_log2(p, "x_quant")
    if iface.ACT_GROUP % p.vector_lanes:
        raise ValueError(f"x_quant: EngineParams.vector_lanes must divide the activation group "
                         f"{iface.ACT_GROUP}, got {p.vector_lanes}")
    return QuantizeParams(lanes=p.vector_lanes, group=iface.ACT_GROUP, in_width=iface.REG_BITS,
                          out_width=8)


def cycles(p: EngineParams, n: int, nseq: int) -> int:
    """Cycles of one ``QUANT`` of ``n`` elements for ``nseq`` sequences (no stalls)."""
    L = p.vector_lanes
    return nseq * (-(-n // L)) + max(1, iface.ACT_GROUP // L) + FIXED_CYCLES


class Unit(wiring.Component):
    """The ``QUANT`` execution unit (contract in the module docstring)."""

    def __init__(self, params: EngineParams):
        self.params = params
        self.qparams = quant_params(params)
        super().__init__(iface.exec_signature(params))

    def elaborate(self, platform):
        p = self.params
        L = p.vector_lanes
        lk = lanes_log2(p, "x_quant")
        gk = iface.ACT_GROUP.bit_length() - 1
        m = Module()
        m.submodules.quant = q = Quantize(self.qparams)

        cl = CmdLatch(m, self.cmd, p)
        c = cl.c
        n = c.ins.n
        nbeats = Signal(iface.ELEM_BITS, name="nbeats")
        ngroups = Signal(iface.ELEM_BITS, name="ngroups")
        m.d.comb += [nbeats.eq(n >> lk), ngroups.eq(n >> gk)]

        issue_requests(m, self.vra.req, cl.start, c.nseq, c.ins.a, 0, n, "ra")
        issue_requests(m, self.vw.req, cl.start, c.nseq, c.ins.dst, 0, n, "wr")
        issue_requests(m, self.ew.req, cl.start, c.nseq, c.ins.dst, 0, ngroups, "er")

        # register-file beats into the quantizer
        m.d.comb += [q.i.valid.eq(self.vra.data.valid & cl.busy),
                     q.i.payload.eq(self.vra.data.payload.data),
                     self.vra.data.ready.eq(q.i.ready & cl.busy)]

        # quantizer beats to the register and (first beat of a group) the exponent file
        gb = Signal(range(max(2, iface.ACT_GROUP // L)), name="group_beat")
        wb = Signal(iface.ELEM_BITS, name="beat")
        gc = Signal(iface.ELEM_BITS, name="group")
        sq = Signal(4, name="seq")
        first = Signal(name="first_of_group")
        m.d.comb += first.eq(~gb.any())  # (gb == 0 comes out as "!gb", which -Wall flags)
        for k in range(L):
            m.d.comb += self.vw.data.payload.data[k].eq(q.o.payload.q[k])
        m.d.comb += [self.vw.data.payload.last.eq(wb == nbeats - 1),
                     self.ew.data.payload.exp.eq(q.o.payload.exp),
                     self.ew.data.payload.last.eq(gc == ngroups - 1)]
        fork(m, q.o.valid, q.o.ready,
             [(self.vw.data.valid, self.vw.data.ready, 1),
              (self.ew.data.valid, self.ew.data.ready, first)], "out")

        m.d.sync += self.done.eq(0)
        with m.If(cl.start):
            m.d.sync += [gb.eq(0), wb.eq(0), gc.eq(0), sq.eq(0)]
        with m.Elif(q.o.valid & q.o.ready):
            if iface.ACT_GROUP // L > 1:
                m.d.sync += gb.eq(gb + 1)  # wraps at the group size (a power of two)
            with m.If(first):
                m.d.sync += gc.eq(gc + 1)
            m.d.sync += wb.eq(wb + 1)
            with m.If(wb == nbeats - 1):
                m.d.sync += [wb.eq(0), gc.eq(0), sq.eq(sq + 1)]
                with m.If(sq + 1 == c.nseq):
                    m.d.sync += [self.done.eq(1)] + cl.finish()
        return m
