"""Small building blocks shared by the vector execution units (``x_quant``, ``x_ew``,
``x_act``, ``x_norm``, ``x_rope``, ``x_argmax``).

* :class:`CmdLatch`: takes one :func:`~fpgallm.engine.rtl.iface.exec_cmd_layout` beat when
  idle, holds it in ``c`` while ``busy`` and pulses ``start`` in the cycle after the accept.
* :func:`issue_requests`: sends one request per sequence (``seq = 0 .. nseq-1``) on a vector
  or exponent port, back to back (the port queues them).
* :func:`fork`: one stream beat to several sinks that may accept in different cycles.
* :func:`ceil_log2_div`: ``ceil(count / 2**k)`` as an expression.

None of these adds a cycle of latency to a stream: a vector unit's timing is its datapath's.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal

from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl import iface

__all__ = ["CmdLatch", "issue_requests", "fork", "lanes_log2", "beats_of"]


def lanes_log2(p: EngineParams, what: str) -> int:
    """log2(vector_lanes); the vector units need a power of two (beats of whole lanes)."""
    L = p.vector_lanes
    if L & (L - 1):
        raise ValueError(f"{what}: EngineParams.vector_lanes must be a power of two, got {L}")
    return L.bit_length() - 1


def beats_of(count, lk: int):
    """``ceil(count / 2**lk)`` (a count of elements -> beats of ``2**lk`` lanes)."""
    if lk == 0:
        return count
    return (count + ((1 << lk) - 1)) >> lk


class CmdLatch:
    """Command handshake: ``cmd.ready = ~busy``; on accept the payload is latched into ``c``,
    ``busy`` rises and ``start`` pulses the next cycle.  ``finish()`` (a statement list, to be
    added under the unit's completion condition) drops ``busy``; the unit raises ``done``
    itself (the registered pulse the caller builds from the same condition)."""

    def __init__(self, m: Module, cmd, p: EngineParams):
        self.c = Signal(iface.exec_cmd_layout(p), name="cmd_l")
        self.busy = Signal(name="busy")
        self.start = Signal(name="start")
        m.d.comb += cmd.ready.eq(~self.busy)
        m.d.sync += self.start.eq(0)
        with m.If(cmd.valid & ~self.busy):
            m.d.sync += [self.c.eq(cmd.payload), self.busy.eq(1), self.start.eq(1)]

    def finish(self):
        return [self.busy.eq(0)]


def issue_requests(m: Module, req, start, nseq, reg, elem_start, count, name: str,
                   per_seq: int | None = None):
    """Requests ``{reg, seq, start=elem_start, count}`` for ``seq = 0 .. nseq-1`` (``nseq``
    a signal), beginning in the cycle ``start`` pulses.  ``reg``, ``elem_start``, ``count``
    may be expressions (held constant while requests are pending).  Returns the ``pending``
    signal (requests left to send)."""
    seq = Signal(4, name=f"{name}_seq")
    pending = Signal(name=f"{name}_pending")
    m.d.comb += [req.valid.eq(pending), req.payload.reg.eq(reg), req.payload.seq.eq(seq),
                 req.payload.start.eq(elem_start), req.payload.count.eq(count)]
    with m.If(start):
        m.d.sync += [seq.eq(0), pending.eq(1)]
    with m.Elif(req.valid & req.ready):
        m.d.sync += seq.eq(seq + 1)
        with m.If(seq + 1 == nseq):
            m.d.sync += pending.eq(0)
    return pending


def fork(m: Module, valid, ready, sinks, name: str):
    """Hand one beat (``valid``/``ready`` of the source) to every sink of ``sinks``, a list of
    ``(sink_valid, sink_ready, needed)``: a sink with ``needed`` low (an expression) does not
    take this beat.  Each sink accepts in its own cycle; the source beat moves when all the
    needed sinks have it.  ``valid`` of a sink never depends on its ``ready``."""
    sent = [Signal(name=f"{name}_sent{k}") for k in range(len(sinks))]
    have = []
    for k, (sv, sr, need) in enumerate(sinks):
        m.d.comb += sv.eq(valid & need & ~sent[k])
        have.append(sent[k] | sr | ~need)
    all_have = Signal(name=f"{name}_all")
    m.d.comb += all_have.eq(valid & _and(have))
    m.d.comb += ready.eq(all_have)
    for k, (sv, sr, need) in enumerate(sinks):
        with m.If(all_have):
            m.d.sync += sent[k].eq(0)
        with m.Elif(sv & sr):
            m.d.sync += sent[k].eq(1)


def _and(xs):
    r = xs[0]
    for x in xs[1:]:
        r = r & x
    return r

