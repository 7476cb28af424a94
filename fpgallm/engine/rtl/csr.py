"""AXI4-Lite control and status registers of the decode engine.

Register map (32-bit registers, byte offsets; docs/ISA.md "Host interface"):

======  ====  ============================================================================
offset  acc   meaning
======  ====  ============================================================================
0x00    R     ``MAGIC`` = 0x4650474C ("FPGL")
0x04    R     ``INFO``: batch [3:0], mem_ports [11:4], vector_lanes [19:12], vregs [23:20]
0x08    W     ``CTRL``: bit 0 start (self-clearing); ignored while busy
0x0C    R     ``STATUS``: bit 0 busy, bit 1 done (since the last start), bit 2 error
0x10    R     ``ERROR``: the opcode that stopped the engine (unknown instruction)
0x14    RW    ``PROG_LO``: byte address of the program, bits 31:0
0x18    RW    ``PROG_HI``: bits 39:32
0x1C    RW    ``NSEQ``: sequences in the next run (1..batch) [3:0]; bit 8 ``CHUNK``: the
              run's lanes are consecutive prompt positions of *one* sequence (prefill
              in chunks of up to batch tokens): every lane reads and appends the KV
              cache of sequence 0, at its own ``POS``
0x20    R     ``CYCLES_LO``: cycles of the current / last run, bits 31:0
0x24    R     ``CYCLES_HI``: bits 63:32
0x28    R     ``PC``: index of the instruction executing (or halted at)
0x40+8b RW    ``POS[b]``: position of sequence ``b`` for the next run
0x44+8b RW    ``TOKEN[b]``: write the input token of sequence ``b``; read: ``S1`` of
              sequence ``b`` (after a run: the argmax of its logits, the next token)
======  ====  ============================================================================

Write and read channels each complete in two cycles; writes to read-only registers are
acknowledged and ignored; responses are always OKAY.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl.iface import SCALAR_BITS
from fpgallm.hdl.axi import axil_manager

MAGIC = 0x4650474C
REG_MAGIC, REG_INFO, REG_CTRL, REG_STATUS, REG_ERROR = 0x00, 0x04, 0x08, 0x0C, 0x10
REG_PROG_LO, REG_PROG_HI, REG_NSEQ, REG_CYCLES_LO, REG_CYCLES_HI, REG_PC = 0x14, 0x18, 0x1C, 0x20, 0x24, 0x28
REG_SEQ = 0x40
ADDR_BITS = 8


def axil_signature() -> wiring.Signature:
    """AXI4-Lite subordinate side (inputs are the host's outputs)."""
    return axil_manager(ADDR_BITS).flip()


def info_word(p: EngineParams) -> int:
    return p.batch | (p.mem_ports << 4) | ((p.vector_lanes & 0xFF) << 12) | ((p.vregs & 0xF) << 20)


class Csr(wiring.Component):
    """The register block.  Engine side: ``start`` pulse, ``prog``, ``nseq``, ``pos``/``token``
    (host values); ``busy``, ``done``, ``error``, ``error_op``, ``cycles``, ``pc``, ``s1``
    (the engine's ``S1`` per sequence) in."""

    def __init__(self, params: EngineParams):
        self.params = params
        B = params.batch
        super().__init__({
            "axil": Out(axil_signature()),
            "start": Out(1),
            "prog": Out(40),
            "nseq": Out(4, init=1),
            "chunk": Out(1),
            "pos": Out(data.ArrayLayout(SCALAR_BITS, B)),
            "token": Out(data.ArrayLayout(SCALAR_BITS, B)),
            "busy": In(1), "done": In(1), "error": In(1), "error_op": In(6),
            "cycles": In(64), "pc": In(20),
            "s1": In(data.ArrayLayout(SCALAR_BITS, B)),
        })

    def elaborate(self, platform):
        m = Module()
        p, ax = self.params, self.axil
        B = p.batch
        # ---- writes: take AW and W together
        take_w = Signal()
        m.d.comb += take_w.eq(ax.awvalid & ax.wvalid & ~ax.bvalid)
        m.d.comb += [ax.awready.eq(take_w), ax.wready.eq(take_w), ax.bresp.eq(0)]
        m.d.sync += self.start.eq(0)
        with m.If(ax.bvalid & ax.bready):
            m.d.sync += ax.bvalid.eq(0)
        with m.If(take_w):
            m.d.sync += ax.bvalid.eq(1)
            a, w = ax.awaddr, ax.wdata
            with m.Switch(a[2:]):
                with m.Case(REG_CTRL >> 2):
                    m.d.sync += self.start.eq(w[0] & ~self.busy)
                with m.Case(REG_PROG_LO >> 2):
                    m.d.sync += self.prog[:32].eq(w)
                with m.Case(REG_PROG_HI >> 2):
                    m.d.sync += self.prog[32:].eq(w[:8])
                with m.Case(REG_NSEQ >> 2):
                    m.d.sync += [self.nseq.eq(w[:4]), self.chunk.eq(w[8])]
                for b in range(B):
                    with m.Case((REG_SEQ + 8 * b) >> 2):
                        m.d.sync += self.pos[b].eq(w)
                    with m.Case((REG_SEQ + 8 * b + 4) >> 2):
                        m.d.sync += self.token[b].eq(w)
        # ---- reads
        m.d.comb += [ax.arready.eq(~ax.rvalid), ax.rresp.eq(0)]
        with m.If(ax.rvalid & ax.rready):
            m.d.sync += ax.rvalid.eq(0)
        with m.If(ax.arvalid & ax.arready):
            m.d.sync += ax.rvalid.eq(1)
            r = ax.rdata
            with m.Switch(ax.araddr[2:]):
                with m.Case(REG_MAGIC >> 2):
                    m.d.sync += r.eq(MAGIC)
                with m.Case(REG_INFO >> 2):
                    m.d.sync += r.eq(info_word(p))
                with m.Case(REG_STATUS >> 2):
                    m.d.sync += r.eq(self.busy | (self.done << 1) | (self.error << 2))
                with m.Case(REG_ERROR >> 2):
                    m.d.sync += r.eq(self.error_op)
                with m.Case(REG_PROG_LO >> 2):
                    m.d.sync += r.eq(self.prog[:32])
                with m.Case(REG_PROG_HI >> 2):
                    m.d.sync += r.eq(self.prog[32:])
                with m.Case(REG_NSEQ >> 2):
                    m.d.sync += r.eq(self.nseq | (self.chunk << 8))
                with m.Case(REG_CYCLES_LO >> 2):
                    m.d.sync += r.eq(self.cycles[:32])
                with m.Case(REG_CYCLES_HI >> 2):
                    m.d.sync += r.eq(self.cycles[32:])
                with m.Case(REG_PC >> 2):
                    m.d.sync += r.eq(self.pc)
                for b in range(B):
                    with m.Case((REG_SEQ + 8 * b) >> 2):
                        m.d.sync += r.eq(self.pos[b])
                    with m.Case((REG_SEQ + 8 * b + 4) >> 2):
                        m.d.sync += r.eq(self.s1[b])
                with m.Default():
                    m.d.sync += r.eq(0)
        return m
