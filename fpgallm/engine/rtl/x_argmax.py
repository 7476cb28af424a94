"""Execution unit of ``ARGMAX``: ``S[dst] = argmax(V[a][0:n])`` per sequence, the first
maximum (ties to the lowest index).

Arithmetic: exactly :func:`fpgallm.units.argmax.golden` (``golden.op_ARGMAX``), one
:class:`~fpgallm.units.argmax.Argmax` with ``lanes = vector_lanes``, 24-bit inputs.

Ports: ``vra`` reads ``V[a]`` (one request of ``n`` elements per sequence, back to back);
the index of sequence ``s`` is on ``sres[s]`` in the cycle ``done`` pulses (the controller
writes ``S[dst]``).  Timing: :func:`cycles`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring

from fpgallm.engine.isa import Op
from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl import iface
from fpgallm.engine.rtl.vecutil import CmdLatch, issue_requests, lanes_log2
from fpgallm.units.argmax import Argmax, ArgmaxParams

OPS = (Op.ARGMAX,)

FIXED_CYCLES = 4  # command latch, first request, the unit's register stage, done


def argmax_params(p: EngineParams) -> ArgmaxParams:
    return ArgmaxParams(lanes=p.vector_lanes, in_width=iface.REG_BITS,
                        max_length=max(p.max_vocab, p.vreg_elems, 2))


def cycles(p: EngineParams, n: int, nseq: int) -> int:
    """Cycles of one ``ARGMAX`` over ``n`` elements for ``nseq`` sequences (no stalls)."""
    return nseq * (-(-n // p.vector_lanes)) + argmax_params(p).latency + FIXED_CYCLES - 1


class Unit(wiring.Component):
    """The ``ARGMAX`` execution unit (contract in the module docstring)."""

    def __init__(self, params: EngineParams):
        self.params = params
        lanes_log2(params, "x_argmax")
        self.aparams = argmax_params(params)
        super().__init__(iface.exec_signature(params))

    def elaborate(self, platform):
        p = self.params
        L = p.vector_lanes
        lk = lanes_log2(p, "x_argmax")
        m = Module()
        m.submodules.argmax = am = Argmax(self.aparams)

        cl = CmdLatch(m, self.cmd, p)
        c = cl.c
        n = c.ins.n
        issue_requests(m, self.vra.req, cl.start, c.nseq, c.ins.a, 0, n, "ra")

        # valid lanes of the last beat of a vector: ((n - 1) mod L) + 1
        tail = Signal(range(L + 1), name="tail")
        m.d.comb += tail.eq((n - 1)[:lk] + 1 if lk else 1)
        m.d.comb += [am.i.valid.eq(self.vra.data.valid & cl.busy),
                     self.vra.data.ready.eq(am.i.ready & cl.busy),
                     am.i.payload.data.eq(self.vra.data.payload.data),
                     am.i.payload.last.eq(self.vra.data.payload.last),
                     am.i.payload.n.eq(Mux(self.vra.data.payload.last, tail, L)),
                     am.o.ready.eq(1)]

        sq = Signal(4, name="seq")
        res = Signal.like(self.sres, name="res")
        m.d.comb += self.sres.eq(res)
        m.d.sync += self.done.eq(0)
        with m.If(cl.start):
            m.d.sync += sq.eq(0)
        with m.Elif(am.o.valid):
            for s in range(p.batch):
                with m.If((sq == s) if s else ~sq.any()):  # "!seq" would lint
                    m.d.sync += res[s].eq(am.o.payload.index)
            m.d.sync += sq.eq(sq + 1)
            with m.If(sq + 1 == c.nseq):
                m.d.sync += [self.done.eq(1)] + cl.finish()
        return m
