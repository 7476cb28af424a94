"""Instruction fetch and control of the decode engine.

Contract:

- Idle until ``start``; then copies the host's ``POS``/``TOKEN`` of every sequence into
  ``S0``/``S1``, clears the cycle counter and runs the program at byte address ``prog``
  (16-byte instructions, docs/ISA.md) from ``pc = 0``.
- Fetch: the stripe word(s) holding ``pc`` are read through ``mr`` (the controller owns
  the memory read port only while ``fetching`` is high); the instructions of a fetched
  word run without further reads.
- ``NOP``/``SYNC``: nothing (execution is in order, one instruction at a time);
  ``PREFETCH``: with a prefetch buffer (``EngineParams.prefetch_words``), one ``pf`` beat
  (address, ``n | m << 20`` stripe words) once the buffer takes it; without, nothing;
  ``SETS``/``ADDS``: the scalar registers of every sequence; ``HALT``: ``done``, idle.
- Any other opcode present in ``ops`` goes to the execution units as one ``cmd`` beat
  (:func:`~fpgallm.engine.rtl.iface.exec_cmd_layout`: the instruction, the source tags,
  ``nseq``, ``S0``/``S1`` per sequence); the controller waits for ``unit_done``, then sets
  the destination's format tag (fraction bits ``imm[7:0]``; ``ROPE`` and ``QUANT`` keep the
  source's) and, for ``ARGMAX``, ``S[dst]`` of each sequence from ``sres``.
- An opcode without a unit stops the run with ``error`` and ``error_op``.
- ``cycles`` counts the cycles from ``start`` to ``done``.

Timing (no stalls; :func:`run_cycles`): a fetch takes ``FETCH + mem_latency + beats``
cycles (``mem_latency``: the memory system's read latency, request to first word);
``NOP``/``SYNC``/``SETS``/``ADDS`` ``SCALAR_CYCLES``; ``PREFETCH``
:func:`prefetch_cycles`; an instruction with a unit its
unit's cycles (``cmd`` accepted to ``done``) plus ``DISPATCH_CYCLES``; ``HALT`` one cycle.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from fpgallm.engine.isa import INSTRUCTION_BYTES, Op
from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl import iface
from fpgallm.engine.rtl.iface import FRAC_BITS, SCALAR_BITS
from fpgallm.engine.rtl.prefetch import prefetch_cmd_layout

KEEP_SOURCE_TAG = (Op.ROPE, Op.QUANT)
SCALAR_OPS = (Op.NOP, Op.SYNC, Op.SETS, Op.ADDS)
SCALAR_CYCLES = 2      # DECODE, NEXT
DISPATCH_CYCLES = 2    # DECODE, NEXT around ISSUE (cmd accepted) .. done
FETCH = 2              # FETCH (request accepted), the cycle after the last word


def prefetch_cycles(p: EngineParams) -> int:
    """Cycles of ``PREFETCH`` (DECODE, PREFETCH handed over, NEXT; a NOP without a buffer)."""
    return SCALAR_CYCLES + 1 if p.prefetch_words else SCALAR_CYCLES


def fetch_geometry(p: EngineParams) -> tuple[int, int]:
    """``(stripe words per fetch, instructions per fetch)``."""
    stripe = p.mem_ports * p.port_width // 8
    wbytes = max(stripe, INSTRUCTION_BYTES)
    return wbytes // stripe, wbytes // INSTRUCTION_BYTES


def fetch_cycles(p: EngineParams, mem_latency: int) -> int:
    """Cycles of one instruction fetch."""
    return FETCH + mem_latency + fetch_geometry(p)[0]


def run_cycles(p: EngineParams, unit_cycles: list, mem_latency: int) -> tuple[int, int]:
    """``(control cycles, fetches)`` of a run whose instructions before ``HALT`` have the
    unit cycles ``unit_cycles`` (None for a scalar instruction): fetches, dispatch and
    ``HALT``; the run's cycles are these plus the units' cycles."""
    per_word = fetch_geometry(p)[1]
    n = len(unit_cycles) + 1                      # with HALT
    fetches = -(-n // per_word)
    ctrl = fetches * fetch_cycles(p, mem_latency) + 1
    ctrl += sum(SCALAR_CYCLES if u is None else DISPATCH_CYCLES for u in unit_cycles)
    return ctrl, fetches
NO_DEST = (Op.STOREV, Op.KVAPPEND, Op.ARGMAX)


class Controller(wiring.Component):
    def __init__(self, params: EngineParams, ops: tuple[Op, ...]):
        self.params = params
        self.ops = tuple(sorted(set(ops)))
        B = params.batch
        sig = {}
        if params.prefetch_words:
            sig["pf"] = Out(stream.Signature(prefetch_cmd_layout()))
        super().__init__(sig | {
            "start": In(1), "prog": In(40), "nseq": In(4), "chunk": In(1),
            "pos": In(data.ArrayLayout(SCALAR_BITS, B)),
            "token": In(data.ArrayLayout(SCALAR_BITS, B)),
            "busy": Out(1), "done": Out(1), "error": Out(1), "error_op": Out(6),
            "cycles": Out(64), "pc": Out(20),
            "s1": Out(data.ArrayLayout(SCALAR_BITS, B)),
            "fetching": Out(1),
            "mr": Out(iface.mem_read_signature(params)),
            "cmd": Out(stream.Signature(iface.exec_cmd_layout(params))),
            "unit_done": In(1),
            "sres": In(data.ArrayLayout(SCALAR_BITS, B)),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        B = p.batch
        stripe = p.mem_ports * p.port_width // 8
        wbytes = max(stripe, INSTRUCTION_BYTES)
        beats = wbytes // stripe                      # stripe words per fetch
        per_word = wbytes // INSTRUCTION_BYTES        # instructions per fetch
        S = [Array(Signal(signed(SCALAR_BITS), name=f"s{b}_{r}") for r in range(16)) for b in range(B)]
        frac = Array(Signal(FRAC_BITS, name=f"frac{r}") for r in range(16))
        fbuf = Signal(8 * wbytes)
        pc = self.pc
        nseq = Signal(4)
        chunk = Signal()
        m.d.comb += [self.s1[b].eq(S[b][1]) for b in range(B)]

        ins = Signal(iface.instruction_layout())
        slot = Signal(range(max(per_word, 2)))
        m.d.comb += slot.eq(pc % per_word if per_word > 1 else 0)
        words = Array(fbuf[i * 128:(i + 1) * 128] for i in range(per_word))
        m.d.comb += ins.as_value().eq(words[slot])
        op = ins.op
        imm_s = Signal(signed(SCALAR_BITS))
        m.d.comb += imm_s.eq(ins.imm)

        # command beat
        cp = self.cmd.payload
        m.d.comb += [cp.ins.eq(ins), cp.frac_a.eq(frac[ins.a]), cp.frac_b.eq(frac[ins.b]),
                     cp.nseq.eq(nseq), cp.chunk.eq(chunk)]
        for b in range(B):
            m.d.comb += [cp.pos[b].eq(S[b][0]), cp.token[b].eq(S[b][1])]

        with m.If(self.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)

        fetch_addr = Signal(40)
        got = Signal(range(beats + 1))
        m.d.comb += fetch_addr.eq(self.prog + (pc // per_word) * wbytes)

        has_unit = Signal()
        m.d.comb += has_unit.eq(Cat(*[op == int(o) for o in self.ops]).any() if self.ops else 0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [self.busy.eq(1), self.done.eq(0), self.error.eq(0),
                                 self.cycles.eq(0), pc.eq(0), nseq.eq(self.nseq), chunk.eq(self.chunk)]
                    for b in range(B):
                        m.d.sync += [S[b][0].eq(self.pos[b]), S[b][1].eq(self.token[b])]
                    m.next = "FETCH"
            with m.State("FETCH"):
                m.d.comb += [self.fetching.eq(1), self.mr.req.valid.eq(1),
                             self.mr.req.payload.addr.eq(fetch_addr),
                             self.mr.req.payload.beats.eq(beats)]
                with m.If(self.mr.req.ready):
                    m.d.sync += got.eq(0)
                    m.next = "FETCH_DATA"
            with m.State("FETCH_DATA"):
                m.d.comb += [self.fetching.eq(1), self.mr.data.ready.eq(1)]
                with m.If(self.mr.data.valid):
                    if beats == 1:
                        m.d.sync += fbuf.eq(self.mr.data.payload.data)
                    else:
                        m.d.sync += fbuf.eq(Cat(fbuf[8 * stripe:], self.mr.data.payload.data))
                    m.d.sync += got.eq(got + 1)
                    with m.If(self.mr.data.payload.last):
                        m.next = "DECODE"
            with m.State("DECODE"):
                with m.Switch(op):
                    with m.Case(Op.NOP, Op.SYNC):
                        m.next = "NEXT"
                    with m.Case(Op.PREFETCH):
                        m.next = "PREFETCH" if p.prefetch_words else "NEXT"
                    with m.Case(Op.HALT):
                        m.d.sync += [self.busy.eq(0), self.done.eq(1)]
                        m.next = "IDLE"
                    with m.Case(Op.SETS):
                        for b in range(B):
                            m.d.sync += S[b][ins.dst].eq(imm_s)
                        m.next = "NEXT"
                    with m.Case(Op.ADDS):
                        for b in range(B):
                            m.d.sync += S[b][ins.dst].eq(S[b][ins.a] + imm_s)
                        m.next = "NEXT"
                    with m.Default():
                        with m.If(has_unit):
                            m.next = "ISSUE"
                        with m.Else():
                            m.d.sync += [self.busy.eq(0), self.done.eq(1), self.error.eq(1),
                                         self.error_op.eq(op)]
                            m.next = "IDLE"
            if p.prefetch_words:
                with m.State("PREFETCH"):
                    m.d.comb += [self.pf.valid.eq(1), self.pf.payload.addr.eq(ins.addr),
                                 self.pf.payload.words.eq(Cat(ins.n, ins.m))]
                    with m.If(self.pf.ready):
                        m.next = "NEXT"
            with m.State("ISSUE"):
                m.d.comb += self.cmd.valid.eq(1)
                with m.If(self.cmd.ready):
                    m.next = "WAIT"
            with m.State("WAIT"):
                with m.If(self.unit_done):
                    with m.If(op == Op.ARGMAX):
                        for b in range(B):
                            with m.If(b < nseq):
                                m.d.sync += S[b][ins.dst].eq(self.sres[b])
                    with m.Elif((op == Op.ROPE) | (op == Op.QUANT)):
                        m.d.sync += frac[ins.dst].eq(frac[ins.a])
                    with m.Elif((op != Op.STOREV) & (op != Op.KVAPPEND)):
                        m.d.sync += frac[ins.dst].eq(ins.imm[:8])
                    m.next = "NEXT"
            with m.State("NEXT"):
                m.d.sync += pc.eq(pc + 1)
                if per_word > 1:
                    with m.If((pc + 1) % per_word == 0):
                        m.next = "FETCH"
                    with m.Else():
                        m.next = "DECODE"
                else:
                    m.next = "FETCH"
        return m
