"""Execution unit for ``LOADV`` and ``STOREV``: int32 vectors between off-chip memory and the
vector registers.

Contract (docs/ISA.md):

- ``LOADV dst n addr mode``: for each sequence ``b < nseq``, ``V[dst][0:n]`` = the ``n``
  int32 little-endian words at ``addr`` (``mode`` 0) or at ``addr + S[POS] * row_bytes(n)``
  (``mode`` 1, a table of rows, one per position), each truncated to 24 bits (the compiler
  writes values that fit).
- ``STOREV a n addr``: for each sequence ``b < nseq``, the ``n`` elements of ``V[a]``
  sign-extended to int32 at ``addr + b * row_bytes(n)``; ``done`` after the last write
  response.
- ``row_bytes(n) = ceil(4 n / stripe) * stripe`` (rows start on a stripe boundary).

Timing (:func:`cycles`): per sequence, the row's stripe words and register beats one after
the other (``ceil(n/E) + ceil(n/L)`` cycles, ``E = stripe / 4`` elements per word, ``L``
lanes) plus the memory read latency (``LOADV``) or the write response (``STOREV``).
Requires ``E % L == 0`` or ``L % E == 0``.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Mux, Signal
from amaranth.lib import wiring

from fpgallm.engine.compiler import row_bytes  # noqa: F401  (the row layout, documented above)
from fpgallm.engine.isa import Op
from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl import iface
from fpgallm.engine.rtl.iface import REG_BITS
from fpgallm.hdl.shift import step_shift

OPS = (Op.LOADV, Op.STOREV)
LOADV_POSROW = 1


LOAD_SEQ = 3       # L_REQ, L_NEXT, the word register
STORE_SEQ = 5      # S_REQ, the write response, S_WAIT
DONE = 2


def cycles(p: EngineParams, op: Op, n: int, nseq: int, mem_latency: int) -> int:
    """Cycles from ``cmd`` accepted to ``done`` (no stalls; ``mem_latency``: read request to
    first word)."""
    E = p.mem_ports * p.port_width // 32
    row = -(-n // E) + -(-n // p.vector_lanes)
    seq = (mem_latency + LOAD_SEQ) if op is Op.LOADV else STORE_SEQ
    return nseq * (row + seq) + DONE


def check(p: EngineParams) -> None:
    E, L = p.mem_ports * p.port_width // 32, p.vector_lanes
    if E % L and L % E:
        raise ValueError(f"EngineParams: vector_lanes {L} and the {E} int32 words of a stripe "
                         f"word must divide one another")


class Unit(wiring.Component):
    def __init__(self, params: EngineParams):
        check(params)
        self.params = params
        super().__init__(iface.exec_signature(params))

    def elaborate(self, platform):
        m = Module()
        p = self.params
        L = p.vector_lanes
        stripe = p.mem_ports * p.port_width // 8
        E = stripe // 4
        c = self.cmd.payload
        ins = Signal.like(c.ins)
        nseq = Signal(4)
        pos = Signal.like(c.pos)
        seq = Signal(3)
        n = Signal(iface.ELEM_BITS)
        words = Signal(iface.BEATS_BITS)          # stripe words per row
        nbeats = Signal(iface.ELEM_BITS + 1)      # register beats per row
        stride = Signal(iface.ADDR_BITS)
        m.d.comb += [words.eq((n + (E - 1)) // E), nbeats.eq((n + (L - 1)) // L),
                     stride.eq(words * stripe)]
        row_addr = Signal(iface.ADDR_BITS)
        m.d.comb += row_addr.eq(Mux(ins.op == Op.STOREV, ins.addr + seq * stride,
                                    Mux(ins.mode == LOADV_POSROW,
                                        ins.addr + Array(pos)[seq] * stride, ins.addr)))

        # ---------------- LOADV gearbox: stripe words -> register beats
        mr, vw = self.mr, self.vw
        word = Signal(8 * stripe)
        have = Signal()
        lastword = Signal()
        part = Signal(range(max(E // L, L // E, 1) + 1))
        sent = Signal(iface.ELEM_BITS + 1)        # beats written in this row
        beat = Signal.like(vw.data.payload)
        if E >= L:
            r = E // L
            chunks = Array(word[i * 32 * L:(i + 1) * 32 * L] for i in range(r))
            cur = chunks[part]
            for i in range(L):
                m.d.comb += beat.data[i].eq(cur[32 * i:32 * i + REG_BITS])
        else:
            r = L // E
            acc = Signal(32 * L)
            for i in range(L):
                m.d.comb += beat.data[i].eq(acc[32 * i:32 * i + REG_BITS])

        # ---------------- STOREV gearbox: register beats -> stripe words
        vra, mw = self.vra, self.mw
        obuf = Signal(8 * stripe)
        ofill = Signal(range(max(E // L, L // E, 1) + 1))
        owords = Signal(iface.BEATS_BITS)        # words written in this row
        oelems = Signal(iface.ELEM_BITS + 1)     # elements still to write in this row
        ext = Signal(32 * L)
        for i in range(L):
            m.d.comb += ext[32 * i:32 * (i + 1)].eq(vra.data.payload.data[i].as_signed())
        strb = Signal(stripe)
        m.d.comb += strb.eq(Cat(*[oelems > (i // 4) for i in range(stripe)]))

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += [ins.eq(c.ins), nseq.eq(c.nseq), pos.eq(c.pos), seq.eq(0),
                                 n.eq(c.ins.n)]
                    with m.If(c.ins.op == Op.STOREV):
                        m.next = "S_REQ"
                    with m.Else():
                        m.next = "L_REQ"
            # ---- LOADV
            with m.State("L_REQ"):
                m.d.comb += [mr.req.valid.eq(1), mr.req.payload.addr.eq(row_addr),
                             mr.req.payload.beats.eq(words),
                             vw.req.valid.eq(1), vw.req.payload.reg.eq(ins.dst),
                             vw.req.payload.seq.eq(seq), vw.req.payload.start.eq(0),
                             vw.req.payload.count.eq(n)]
                # both servers are idle here: their ready is high together
                with m.If(mr.req.ready & vw.req.ready):
                    m.d.sync += [have.eq(0), part.eq(0), sent.eq(0)]
                    m.next = "L_DATA"
            with m.State("L_DATA"):
                m.d.comb += [mr.data.ready.eq(~have), vw.data.payload.data.eq(beat.data),
                             vw.data.payload.last.eq(sent + 1 == nbeats)]
                if E >= L:
                    with m.If(mr.data.valid & ~have):
                        m.d.sync += [word.eq(mr.data.payload.data), have.eq(1), part.eq(0),
                                     lastword.eq(mr.data.payload.last)]
                    m.d.comb += vw.data.valid.eq(have)
                    with m.If(vw.data.valid & vw.data.ready):
                        m.d.sync += [sent.eq(sent + 1), part.eq(part + 1)]
                        with m.If((part == r - 1) | (sent + 1 == nbeats)):
                            m.d.sync += have.eq(0)
                            with m.If(lastword):
                                m.next = "L_NEXT"
                else:
                    with m.If(mr.data.valid & ~have):
                        m.d.sync += [acc.eq(Cat(acc[32 * E:], mr.data.payload.data)),
                                     part.eq(part + 1)]
                        with m.If((part == r - 1) | mr.data.payload.last):
                            m.d.sync += have.eq(1)
                        with m.If(mr.data.payload.last & (part != r - 1)):
                            # a partial last beat: bring its words down to lane 0
                            down = Signal(range(r), name="down")
                            m.d.comb += down.eq(r - 1 - part)
                            m.d.sync += acc.eq(Cat(acc[32 * E:], mr.data.payload.data) >> (down * (32 * E)))
                    m.d.comb += vw.data.valid.eq(have)
                    with m.If(vw.data.valid & vw.data.ready):
                        m.d.sync += [have.eq(0), part.eq(0), sent.eq(sent + 1)]
                        with m.If(sent + 1 == nbeats):
                            m.next = "L_NEXT"
            with m.State("L_NEXT"):
                m.d.sync += seq.eq(seq + 1)
                with m.If(seq + 1 >= nseq):
                    m.next = "DONE"
                with m.Else():
                    m.next = "L_REQ"
            # ---- STOREV
            with m.State("S_REQ"):
                m.d.comb += [vra.req.valid.eq(1), vra.req.payload.reg.eq(ins.a),
                             vra.req.payload.seq.eq(seq), vra.req.payload.start.eq(0),
                             vra.req.payload.count.eq(n),
                             mw.req.valid.eq(1), mw.req.payload.addr.eq(row_addr),
                             mw.req.payload.beats.eq(words)]
                with m.If(vra.req.ready & mw.req.ready):
                    m.d.sync += [ofill.eq(0), owords.eq(0), oelems.eq(n), sent.eq(0)]
                    m.next = "S_DATA"
            with m.State("S_DATA"):
                full = Signal()
                m.d.comb += [mw.data.payload.data.eq(obuf), mw.data.payload.strb.eq(strb)]
                if E >= L:
                    r2 = E // L
                    # collect r2 beats (or the last) into obuf, then write it
                    m.d.comb += full.eq((ofill == r2) | ((sent == nbeats) & (ofill != 0)))
                    m.d.comb += vra.data.ready.eq(~full & (sent < nbeats))
                    with m.If(vra.data.valid & vra.data.ready):
                        m.d.sync += [obuf.eq(Cat(obuf[32 * L:], ext)), ofill.eq(ofill + 1),
                                     sent.eq(sent + 1)]
                    fill_shift = Signal(range(r2 + 1))
                    m.d.comb += fill_shift.eq(r2 - ofill)
                    m.d.comb += mw.data.payload.data.eq(step_shift(m, obuf, fill_shift, 32 * L, r2 + 1,
                                                                   len(mw.data.payload.data), "obuf_out"))
                    m.d.comb += mw.data.valid.eq(full)
                    with m.If(mw.data.valid & mw.data.ready):
                        m.d.sync += [ofill.eq(0), owords.eq(owords + 1),
                                     oelems.eq(Mux(oelems > E, oelems - E, 0))]
                        with m.If(owords + 1 == words):
                            m.next = "S_WAIT"
                else:
                    r2 = L // E
                    # one beat gives r2 words
                    m.d.comb += vra.data.ready.eq(ofill == 0)
                    with m.If(vra.data.valid & vra.data.ready):
                        m.d.sync += ofill.eq(r2)
                    hold = Signal(32 * L)
                    with m.If(vra.data.valid & vra.data.ready):
                        m.d.sync += hold.eq(ext)
                    chunks = Array(hold[i * 32 * E:(i + 1) * 32 * E] for i in range(r2))
                    m.d.comb += [mw.data.valid.eq(ofill != 0),
                                 mw.data.payload.data.eq(chunks[r2 - ofill])]
                    with m.If(mw.data.valid & mw.data.ready):
                        m.d.sync += [ofill.eq(Mux(owords + 1 == words, 0, ofill - 1)),
                                     owords.eq(owords + 1),
                                     oelems.eq(Mux(oelems > E, oelems - E, 0))]
                        with m.If(owords + 1 == words):
                            m.next = "S_WAIT"
            with m.State("S_WAIT"):
                # drain any beats of the register read past the last word
                m.d.comb += vra.data.ready.eq(1)
                with m.If(mw.wdone):
                    m.d.sync += seq.eq(seq + 1)
                    with m.If(seq + 1 >= nseq):
                        m.next = "DONE"
                    with m.Else():
                        m.next = "S_REQ"
            with m.State("DONE"):
                m.d.comb += self.done.eq(1)
                m.next = "IDLE"
        return m
