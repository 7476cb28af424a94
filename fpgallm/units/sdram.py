"""SDR SDRAM controller: AXI4 subordinate ports onto one 16-bit single-data-rate SDRAM (the
ULX3S's 32 MB MT48LC16M16A2 / IS42S16160G; the 64 MB AS4C32M16 is used as 32 MB).

Contract
--------
Ports ``s0 .. s{ports-1}``: AXI4 subordinates (:func:`axi4_subordinate_signature`), data
``data_width`` = 16 x BL bits (BL = 1, 2, 4 or 8: one AXI beat is one SDRAM burst), INCR
bursts of full-width beats (``arsize``/``awsize`` = the data width), 1..256 beats inside a
4 KiB page (AXI4's rules; the engine's memory system keeps them).  IDs are echoed; every
response is OKAY.  Bursts are served one at a time, whole: when idle the controller takes
the lowest-numbered port with a write (AW) or read (AR) request, writes first; read data
goes through a FIFO of ``read_fifo`` beats (R may be back-pressured at will), a write's B
response is held until taken, and the next burst starts after it.

Memory: byte address ``a`` is halfword ``h = a >> 1``; column ``h mod 2**col_bits``, bank
``(h >> col_bits) mod 4``, row ``(h >> (col_bits + 2)) mod 2**row_bits`` (higher address bits
are ignored).  Byte strobes become DQM.

SDRAM side (all outputs registered; ``dq_i`` registered on entry): ``cke``, ``cs_n``,
``ras_n``, ``cas_n``, ``we_n``, ``ba``, ``a``, ``dqm``, ``dq_o``/``dq_oe``/``dq_i``.  A
command decided in cycle ``k`` is on the pins in cycle ``k+1``; the SDRAM clock is the
controller clock inverted (it samples mid-cycle), so a READ's halfword ``j`` is on the pins
in cycle ``k + 1 + CL + j`` and in the controller in ``k + 2 + CL + j``; a WRITE's halfword
``j`` is driven in cycle ``k + 1 + j``.  :func:`timing_cycles` converts the chip's timings
(ns) at ``clock_mhz`` to cycles.

Sequence: ``init_us`` of NOPs after reset, PRECHARGE ALL, two AUTO REFRESH, LOAD MODE
(burst length BL, sequential, CAS latency CL); then an AUTO REFRESH every ``refresh_ns`` on
average (between bursts, or inside a long one: precharge, refresh, re-activate).  A burst
opens its row (ACTIVE, tRCD), issues one READ/WRITE per beat every BL cycles while beats and
the read FIFO's room last, opens the next row where the burst crosses one (tRAS, tWR, tRP
respected), and precharges all banks at its end.

Throughput: a burst of ``n`` beats inside one row takes about ``n * BL + tRCD + CL + tRP + 4``
cycles, i.e. close to the SDRAM's 2 bytes per cycle for long bursts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, fifo, wiring
from amaranth.lib.wiring import In, Out

from fpgallm.hdl.axi import ID_BITS, axi4_manager
from fpgallm.hdl.check import check_int
from fpgallm.hdl.emit import Emitted, to_verilog


# (cs_n, ras_n, cas_n, we_n)
CMD_NOP, CMD_ACT, CMD_READ, CMD_WRITE, CMD_PRE, CMD_REF, CMD_MRS = (
    0b0111, 0b0011, 0b0101, 0b0100, 0b0010, 0b0001, 0b0000)


@dataclass(frozen=True)
class SdramParams:
    """Parameters of :class:`SdramController`; validated on construction.  Timings of the
    chip in ns (defaults: MT48LC16M16A2-75 / IS42S16160G-7)."""

    data_width: int = 64
    addr_width: int = 32
    ports: int = 2
    clock_mhz: float = 25.0
    cas_latency: int = 2
    row_bits: int = 13
    col_bits: int = 9
    t_rcd_ns: float = 20.0
    t_rp_ns: float = 20.0
    t_ras_ns: float = 44.0
    t_rfc_ns: float = 66.0
    t_wr_ns: float = 15.0
    refresh_ns: float = 7812.5
    init_us: float = 200.0
    read_fifo: int = 16

    def __post_init__(self):
        o = "SdramParams"
        if self.data_width not in (16, 32, 64, 128):
            raise ValueError(f"{o}.data_width must be 16, 32, 64 or 128 (16 x burst length), got {self.data_width!r}")
        for name, lo, hi in (("addr_width", 16, 64), ("ports", 1, 4), ("cas_latency", 2, 3),
                             ("row_bits", 11, 13), ("col_bits", 8, 10), ("read_fifo", 4, 256)):
            check_int(o, name, getattr(self, name), lo, hi)
        if not isinstance(self.clock_mhz, (int, float)) or not 1 <= self.clock_mhz <= 200:
            raise ValueError(f"{o}.clock_mhz must be a number in [1, 200], got {self.clock_mhz!r}")
        for name in ("t_rcd_ns", "t_rp_ns", "t_ras_ns", "t_rfc_ns", "t_wr_ns", "refresh_ns", "init_us"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not v > 0:
                raise ValueError(f"{o}.{name} must be a positive number, got {v!r}")

    @property
    def burst_length(self) -> int:
        return self.data_width // 16

    @property
    def capacity_bytes(self) -> int:
        return 2 << (self.row_bits + self.col_bits + 2)


def timing_cycles(p: SdramParams) -> dict[str, int]:
    """The chip's timings in controller cycles at ``p.clock_mhz`` (rounded up, at least 1):
    ``rcd``, ``rp``, ``ras``, ``rfc``, ``wr``, ``mrd`` (2), ``refi`` (refresh interval),
    ``init``."""
    ns = 1000.0 / p.clock_mhz

    def cyc(t):
        return max(1, math.ceil(t / ns - 1e-9))

    return {"rcd": cyc(p.t_rcd_ns), "rp": cyc(p.t_rp_ns), "ras": cyc(p.t_ras_ns),
            "rfc": cyc(p.t_rfc_ns), "wr": cyc(p.t_wr_ns), "mrd": 2,
            "refi": max(16, int(p.refresh_ns / ns)), "init": cyc(p.init_us * 1000.0)}


def mode_register(p: SdramParams) -> int:
    """LOAD MODE value: burst length BL, sequential, CAS latency, programmed write bursts."""
    return {1: 0, 2: 1, 4: 2, 8: 3}[p.burst_length] | (p.cas_latency << 4)


def axi4_subordinate_signature(addr_width: int, data_width: int) -> wiring.Signature:
    """AXI4 subordinate (memory) side; the flip of the engine's master ports."""
    return axi4_manager(addr_width, data_width, ID_BITS).flip()


def sdram_pins_signature(p: SdramParams) -> wiring.Signature:
    return wiring.Signature({
        "cke": Out(1), "cs_n": Out(1), "ras_n": Out(1), "cas_n": Out(1), "we_n": Out(1),
        "ba": Out(2), "a": Out(p.row_bits), "dqm": Out(2),
        "dq_o": Out(16), "dq_oe": Out(1), "dq_i": In(16),
    })


class SdramController(wiring.Component):
    """The controller (contract in the module docstring)."""

    def __init__(self, params: SdramParams):
        self.params = params
        sig = {f"s{j}": Out(axi4_subordinate_signature(params.addr_width, params.data_width))
               for j in range(params.ports)}
        sig["sdram"] = Out(sdram_pins_signature(params))
        sig["ready"] = Out(1)          # initialisation done
        super().__init__(sig)

    def elaborate(self, platform):
        p = self.params
        m = Module()
        T = timing_cycles(p)
        BL = p.burst_length
        CL = p.cas_latency
        P = p.ports
        ports = [getattr(self, f"s{j}") for j in range(P)]
        cb, rb = p.col_bits, p.row_bits
        lg_beat = (p.data_width // 8 - 1).bit_length()     # byte address bits of a beat

        # ---- registered pins --------------------------------------------------------------
        pins = self.sdram
        cmd = Signal(4, init=CMD_NOP)
        ba = Signal(2)
        addr = Signal(rb)
        dqm = Signal(2)
        dq_o = Signal(16)
        dq_oe = Signal()
        # the next cycle's pin values (default NOP, keep address)
        n_cmd = Signal(4)
        n_ba = Signal(2)
        n_addr = Signal(rb)
        n_dqm = Signal(2)
        n_dq = Signal(16)
        n_oe = Signal()
        m.d.comb += [n_cmd.eq(CMD_NOP), n_ba.eq(ba), n_addr.eq(addr), n_dqm.eq(0), n_dq.eq(0), n_oe.eq(0)]
        m.d.sync += [cmd.eq(n_cmd), ba.eq(n_ba), addr.eq(n_addr), dqm.eq(n_dqm), dq_o.eq(n_dq),
                     dq_oe.eq(n_oe)]
        m.d.comb += [pins.cke.eq(1), Cat(pins.we_n, pins.cas_n, pins.ras_n, pins.cs_n).eq(cmd),
                     pins.ba.eq(ba), pins.a.eq(addr), pins.dqm.eq(dqm), pins.dq_o.eq(dq_o),
                     pins.dq_oe.eq(dq_oe)]
        dq_in = Signal(16)
        m.d.sync += dq_in.eq(pins.dq_i)

        # ---- timers -------------------------------------------------------------------------
        tmr = Signal(range(max(T.values()) + 1))       # the current state's wait
        with m.If(tmr != 0):
            m.d.sync += tmr.eq(tmr - 1)
        ras_tmr = Signal(range(max(T["ras"], 2) + 1))   # ACTIVE -> PRECHARGE (>= 2 bits: no constant compares)
        with m.If(ras_tmr != 0):
            m.d.sync += ras_tmr.eq(ras_tmr - 1)
        ref_cnt = Signal(range(T["refi"] + 1))
        ref_due = Signal()
        ref_done = Signal()
        with m.If(ref_cnt == 0):
            m.d.sync += [ref_cnt.eq(T["refi"] - 1), ref_due.eq(1)]
        with m.Else():
            m.d.sync += ref_cnt.eq(ref_cnt - 1)
        with m.If(ref_done):
            m.d.sync += ref_due.eq(0)

        # ---- the current burst ---------------------------------------------------------------
        is_wr = Signal()
        bport = Signal(range(max(2, P)))
        bid = Signal(ID_BITS)
        left = Signal(9)                     # beats still to issue
        hw = Signal(rb + cb + 2)             # halfword address of the next beat
        col = Signal(cb)
        bank = Signal(2)
        row = Signal(rb)
        m.d.comb += [col.eq(hw[:cb]), bank.eq(hw[cb:cb + 2]), row.eq(hw[cb + 2:])]
        row_end = Signal()                   # this beat is the row's last
        m.d.comb += row_end.eq(col == (1 << cb) - BL)
        new_row = Signal()                   # (after a beat) the next beat starts a row
        m.d.comb += new_row.eq(col == 0)

        # ---- read data path: tags through the command/pin/CAS delay, beat assembly -----------
        D = CL + 2
        tag = data.StructLayout({"v": 1, "last": 1, "port": range(max(2, P)), "id": ID_BITS})
        chain = [Signal(tag, name=f"rtag{i}") for i in range(D)]
        issue_rd = Signal()
        rd_last = Signal()
        m.d.sync += chain[0].eq(Cat(issue_rd, rd_last, bport, bid))
        for i in range(1, D):
            m.d.sync += chain[i].eq(chain[i - 1])
        head = chain[D - 1]                  # halfword 0 of a beat is in dq_in this cycle
        rf = fifo.SyncFIFOBuffered(width=p.data_width + 1 + len(bport) + ID_BITS, depth=p.read_fifo)
        m.submodules.rfifo = rf
        acc = Signal(p.data_width)
        cap = Signal(range(BL + 1))
        cur = Signal(tag)
        word = Signal(p.data_width)
        push = Signal()
        if BL == 1:
            m.d.comb += [word.eq(dq_in), push.eq(head.v), cur.eq(head)]
            m.d.comb += rf.w_data.eq(Cat(word, head.last, head.port, head.id))
        else:
            with m.If(head.v):
                m.d.sync += [acc.eq(dq_in), cap.eq(1), cur.eq(head)]
            with m.Elif(cap != 0):
                m.d.sync += acc.word_select(cap, 16).eq(dq_in)
                m.d.sync += cap.eq(Mux(cap == BL - 1, 0, cap + 1))
            m.d.comb += word.eq(acc)
            m.d.comb += word.word_select(BL - 1, 16).eq(dq_in)
            m.d.comb += push.eq(cap == BL - 1)
            m.d.comb += rf.w_data.eq(Cat(word, cur.last, cur.port, cur.id))
        m.d.comb += rf.w_en.eq(push)
        inflight = Signal(range(p.read_fifo + 2))
        m.d.sync += inflight.eq(inflight + issue_rd - push)
        room = Signal()
        m.d.comb += room.eq(rf.level + inflight < p.read_fifo)
        r_data = rf.r_data[:p.data_width]
        r_last = rf.r_data[p.data_width]
        r_port = rf.r_data[p.data_width + 1:p.data_width + 1 + len(bport)]
        r_id = rf.r_data[p.data_width + 1 + len(bport):]
        for j, s in enumerate(ports):
            mine = rf.r_rdy & (r_port == j)
            m.d.comb += [s.rvalid.eq(mine), s.rdata.eq(r_data), s.rlast.eq(r_last), s.rid.eq(r_id),
                         s.rresp.eq(0)]
            with m.If(mine & s.rready):
                m.d.comb += rf.r_en.eq(1)

        # ---- write data --------------------------------------------------------------------
        wbuf = Signal(p.data_width)
        wstb = Signal(p.data_width // 8)
        wcnt = Signal(range(BL + 1))
        wsel = Signal(p.data_width)
        ssel = Signal(p.data_width // 8)
        wvalid = Signal()
        for j, s in enumerate(ports):
            with m.If(bport == j):
                m.d.comb += [wsel.eq(s.wdata), ssel.eq(s.wstrb), wvalid.eq(s.wvalid)]

        # ---- B response --------------------------------------------------------------------
        b_pend = Signal()
        for j, s in enumerate(ports):
            m.d.comb += [s.bvalid.eq(b_pend & (bport == j)), s.bid.eq(bid), s.bresp.eq(0)]
            with m.If(s.bvalid & s.bready):
                m.d.sync += b_pend.eq(0)

        def issue(c, bank_=None, a_=None):
            m.d.comb += n_cmd.eq(c)
            if bank_ is not None:
                m.d.comb += n_ba.eq(bank_)
            if a_ is not None:
                m.d.comb += n_addr.eq(a_)

        col_a = Signal(rb)                   # READ/WRITE address: column, A10 = 0 (no auto precharge)
        m.d.comb += col_a.eq(col)
        init_done = Signal()
        m.d.comb += self.ready.eq(init_done)

        with m.FSM(init="INIT"):
            with m.State("INIT"):
                with m.If(tmr == 0):
                    m.d.sync += tmr.eq(T["init"])
                    m.next = "INIT_WAIT"
            with m.State("INIT_WAIT"):
                with m.If(tmr == 1):
                    issue(CMD_PRE, a_=1 << 10)
                    m.d.sync += tmr.eq(T["rp"])
                    m.next = "INIT_REF1"
            with m.State("INIT_REF1"):
                with m.If(tmr == 1):
                    issue(CMD_REF)
                    m.d.sync += tmr.eq(T["rfc"])
                    m.next = "INIT_REF2"
            with m.State("INIT_REF2"):
                with m.If(tmr == 1):
                    issue(CMD_REF)
                    m.d.sync += tmr.eq(T["rfc"])
                    m.next = "INIT_MRS"
            with m.State("INIT_MRS"):
                with m.If(tmr == 1):
                    issue(CMD_MRS, bank_=0, a_=mode_register(p))
                    m.d.sync += tmr.eq(T["mrd"])
                    m.next = "INIT_END"
            with m.State("INIT_END"):
                with m.If(tmr == 1):
                    m.d.sync += init_done.eq(1)
                    m.next = "IDLE"
            with m.State("IDLE"):
                with m.If(tmr > 1):
                    pass
                with m.Elif(ref_due):
                    issue(CMD_REF)
                    m.d.comb += ref_done.eq(1)
                    m.d.sync += tmr.eq(T["rfc"])
                with m.Elif(~b_pend):
                    # lowest port first, its write before its read
                    for j, s in enumerate(ports):
                        with (m.If if j == 0 else m.Elif)(s.awvalid | s.arvalid):
                            m.d.sync += bport.eq(j)
                            with m.If(s.awvalid):
                                m.d.comb += s.awready.eq(1)
                                m.d.sync += [is_wr.eq(1), bid.eq(s.awid), left.eq(s.awlen + 1),
                                             hw.eq(s.awaddr[lg_beat:] << (lg_beat - 1))]
                            with m.Else():
                                m.d.comb += s.arready.eq(1)
                                m.d.sync += [is_wr.eq(0), bid.eq(s.arid), left.eq(s.arlen + 1),
                                             hw.eq(s.araddr[lg_beat:] << (lg_beat - 1))]
                            m.next = "ACT"
            with m.State("ACT"):
                with m.If(tmr <= 1):
                    issue(CMD_ACT, bank_=bank, a_=row)
                    m.d.sync += [tmr.eq(T["rcd"]), ras_tmr.eq(T["ras"])]
                    m.next = "COL"
            with m.State("COL"):
                with m.If(tmr > 1):
                    pass
                with m.Elif(ref_due):
                    m.next = "PRE"
                with m.Elif(is_wr):
                    with m.If(wvalid):
                        for j, s in enumerate(ports):
                            with m.If(bport == j):
                                m.d.comb += s.wready.eq(1)
                        issue(CMD_WRITE, bank_=bank, a_=col_a)
                        m.d.comb += [n_dq.eq(wsel[:16]), n_oe.eq(1), n_dqm.eq(~ssel[:2])]
                        m.d.sync += [wbuf.eq(wsel >> 16), wstb.eq(ssel >> 2), hw.eq(hw + BL),
                                     left.eq(left - 1), wcnt.eq(BL - 1)]
                        # the last halfword leaves at +BL; tWR after it before a precharge
                        m.d.sync += tmr.eq(BL - 1 + T["wr"] + 1)
                        if BL > 1:
                            m.next = "WDATA"
                        else:
                            with m.If(row_end | (left == 1)):
                                m.next = "PRE"
                            with m.Else():
                                m.d.sync += tmr.eq(0)     # the next WRITE may follow at once
                with m.Else():
                    with m.If(room):
                        issue(CMD_READ, bank_=bank, a_=col_a)
                        m.d.comb += [issue_rd.eq(1), rd_last.eq(left == 1)]
                        m.d.sync += [hw.eq(hw + BL), left.eq(left - 1), tmr.eq(BL)]
                        with m.If(row_end | (left == 1)):
                            m.next = "PRE"
            if BL > 1:
                with m.State("WDATA"):
                    m.d.comb += [n_dq.eq(wbuf[:16]), n_oe.eq(1), n_dqm.eq(~wstb[:2])]
                    m.d.sync += [wbuf.eq(wbuf >> 16), wstb.eq(wstb >> 2), wcnt.eq(wcnt - 1)]
                    with m.If(wcnt == 1):
                        with m.If(new_row | (left == 0)):
                            m.next = "PRE"
                        with m.Else():
                            m.d.sync += tmr.eq(0)     # the next WRITE may follow at once
                            m.next = "COL"
            with m.State("PRE"):
                # reads: tmr = BL after the last READ; writes: the last data + tWR
                with m.If((tmr <= 1) & (ras_tmr <= 1)):
                    issue(CMD_PRE, a_=1 << 10)
                    m.d.sync += tmr.eq(T["rp"])
                    with m.If(left == 0):
                        m.d.sync += b_pend.eq(is_wr)
                        m.next = "IDLE"           # (a due refresh is issued from IDLE)
                    with m.Elif(ref_due):
                        m.next = "REF"
                    with m.Else():
                        m.next = "ACT"
            with m.State("REF"):
                with m.If(tmr <= 1):
                    issue(CMD_REF)
                    m.d.comb += ref_done.eq(1)
                    m.d.sync += tmr.eq(T["rfc"])
                    m.next = "ACT"
        return m


def golden_address(p: SdramParams, byte_addr: int) -> tuple[int, int, int]:
    """``(bank, row, column)`` of the halfword holding ``byte_addr`` (the address map)."""
    h = byte_addr >> 1
    return ((h >> p.col_bits) & 3, (h >> (p.col_bits + 2)) & ((1 << p.row_bits) - 1),
            h & ((1 << p.col_bits) - 1))


def generate(p: SdramParams, name: str = "fpgallm_sdram") -> Emitted:
    return to_verilog(SdramController(p), name, {"sdram": p})
