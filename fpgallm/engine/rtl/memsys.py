"""Memory system of the decode engine: the striped read/write ports of the execution units
(:func:`~fpgallm.engine.rtl.iface.mem_read_signature` / ``mem_write_signature``) onto
``mem_ports`` AXI4 master ports.

Contract:

- The flat byte space is striped: byte ``a`` lives on port ``(a // B) % P`` at local address
  ``(a // (P*B)) * B + a % B`` (``P = mem_ports``, ``B = port_width / 8``).  A stripe word
  (``P*B`` bytes at a multiple of ``P*B``) is one beat on every port at the same local address.
- Reads: a request ``{addr, beats}`` becomes, on every port, INCR bursts of at most 256
  beats that never cross a 4 KiB boundary (AXI4 rules), issued back to back (many bursts
  outstanding); the returned beats of all ports are joined into stripe words, in order.
  Up to four requests may be in flight.  Throughput: one stripe word per cycle when every
  port delivers a beat per cycle.
- Writes: one request at a time; the same bursts on AW, the data beats broadcast to every
  port's W channel (each port takes its slice and strobes), ``wdone`` pulses when every B
  response has returned; then the next request is accepted.
- IDs are 0 (responses in order); ``arsize``/``awsize`` is the full port width.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl import iface
from fpgallm.hdl.axi import ID_BITS, axi4_manager

PAGE = 4096


def axi_addr_bits(p: EngineParams) -> int:
    return max(32, (p.mem_bytes - 1).bit_length())


def axi4_signature(p: EngineParams) -> wiring.Signature:
    """AXI4 master (manager) side of one memory port."""
    return axi4_manager(axi_addr_bits(p), p.port_width, ID_BITS)


def _burst_len(m: Module, name: str, laddr, left, port_bytes: int):
    """Beats of the next burst at local byte address ``laddr`` with ``left`` beats to go."""
    max_beats = min(256, PAGE // port_bytes)
    lb = (port_bytes - 1).bit_length()
    to_page = Signal(range(PAGE // port_bytes + 1), name=f"{name}_to_page")
    m.d.comb += to_page.eq((PAGE - laddr[:12]) >> lb if port_bytes < PAGE else 1)
    n = Signal(range(max_beats + 1), name=f"{name}_len")
    cap = Signal(range(max_beats + 1), name=f"{name}_cap")
    m.d.comb += cap.eq(Mux(to_page < max_beats, to_page, max_beats))
    m.d.comb += n.eq(Mux(left < cap, left, cap))
    return n


class MemSystem(wiring.Component):
    """Striped memory ports ``mr`` / ``mw`` onto AXI4 masters ``axi0 .. axi{P-1}``."""

    def __init__(self, params: EngineParams):
        self.params = params
        sig = {"mr": In(iface.mem_read_signature(params)),
               "mw": In(iface.mem_write_signature(params))}
        for j in range(params.mem_ports):
            sig[f"axi{j}"] = Out(axi4_signature(params))
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        p = self.params
        P, B = p.mem_ports, p.port_width // 8
        stripe = P * B
        ports = [getattr(self, f"axi{j}") for j in range(P)]
        sb = (stripe - 1).bit_length() if stripe & (stripe - 1) == 0 else None
        lb = (B - 1).bit_length()
        abits = axi_addr_bits(p)

        def local(addr):
            """Local byte address of stripe-aligned flat address ``addr``."""
            if sb is not None:
                return (addr >> sb) << lb
            return (addr // stripe) << lb

        for ax in ports:
            m.d.comb += [ax.arid.eq(0), ax.awid.eq(0), ax.arsize.eq(lb), ax.awsize.eq(lb),
                         ax.arburst.eq(1), ax.awburst.eq(1), ax.bready.eq(1)]

        # ---------------- reads ----------------
        rq = fifo.SyncFIFO(width=iface.BEATS_BITS, depth=4)
        m.submodules.rq = rq
        r_left = Signal(iface.BEATS_BITS)
        r_laddr = Signal(abits)
        req = self.mr.req
        m.d.comb += req.ready.eq((r_left == 0) & rq.w_rdy)
        m.d.comb += [rq.w_data.eq(req.payload.beats), rq.w_en.eq(req.valid & req.ready & (req.payload.beats != 0))]
        with m.If(req.valid & req.ready):
            m.d.sync += [r_left.eq(req.payload.beats), r_laddr.eq(local(req.payload.addr))]
        rlen = _burst_len(m, "ar", r_laddr, r_left, B)
        ar_done = Signal(P)
        ar_hs = Signal(P)
        for j, ax in enumerate(ports):
            m.d.comb += [ax.araddr.eq(r_laddr), ax.arlen.eq(rlen - 1),
                         ax.arvalid.eq((r_left != 0) & ~ar_done[j]),
                         ar_hs[j].eq(ax.arvalid & ax.arready)]
        with m.If((r_left != 0) & ((ar_done | ar_hs) == (1 << P) - 1)):
            m.d.sync += [ar_done.eq(0), r_left.eq(r_left - rlen), r_laddr.eq(r_laddr + (rlen << lb))]
        with m.Elif(r_left != 0):
            m.d.sync += ar_done.eq(ar_done | ar_hs)
        # join the R channels
        all_valid = Signal()
        m.d.comb += all_valid.eq(Cat(*[ax.rvalid for ax in ports]).all() & rq.r_rdy)
        out = self.mr.data
        count = Signal(iface.BEATS_BITS)
        last = Signal()
        m.d.comb += [last.eq(count == rq.r_data - 1),
                     out.valid.eq(all_valid),
                     out.payload.data.eq(Cat(*[ax.rdata for ax in ports])),
                     out.payload.last.eq(last)]
        for ax in ports:
            m.d.comb += ax.rready.eq(out.ready & all_valid)
        m.d.comb += rq.r_en.eq(out.valid & out.ready & last)
        with m.If(out.valid & out.ready):
            m.d.sync += count.eq(Mux(last, 0, count + 1))

        # ---------------- writes ----------------
        wreq = self.mw.req
        busy = Signal()
        aw_left = Signal(iface.BEATS_BITS)
        aw_laddr = Signal(abits)
        w_left = Signal(iface.BEATS_BITS)
        w_laddr = Signal(abits)
        w_burst = Signal(9)                   # beats left in the current W burst (0: new burst)
        bursts = Signal(iface.BEATS_BITS)     # bursts issued on AW (every port)
        bcount = [Signal(iface.BEATS_BITS, name=f"bcount{j}") for j in range(P)]
        m.d.comb += wreq.ready.eq(~busy)
        with m.If(wreq.valid & wreq.ready):
            la = local(wreq.payload.addr)
            m.d.sync += [busy.eq(1), aw_left.eq(wreq.payload.beats), w_left.eq(wreq.payload.beats),
                         aw_laddr.eq(la), w_laddr.eq(la), w_burst.eq(0), bursts.eq(0)]
            m.d.sync += [c.eq(0) for c in bcount]
        awlen = _burst_len(m, "aw", aw_laddr, aw_left, B)
        aw_done = Signal(P)
        aw_hs = Signal(P)
        for j, ax in enumerate(ports):
            m.d.comb += [ax.awaddr.eq(aw_laddr), ax.awlen.eq(awlen - 1),
                         ax.awvalid.eq((aw_left != 0) & ~aw_done[j]),
                         aw_hs[j].eq(ax.awvalid & ax.awready)]
        with m.If((aw_left != 0) & ((aw_done | aw_hs) == (1 << P) - 1)):
            m.d.sync += [aw_done.eq(0), aw_left.eq(aw_left - awlen),
                         aw_laddr.eq(aw_laddr + (awlen << lb)), bursts.eq(bursts + 1)]
        with m.Elif(aw_left != 0):
            m.d.sync += aw_done.eq(aw_done | aw_hs)
        wlen = _burst_len(m, "w", w_laddr, w_left, B)
        cur = Signal(9)
        m.d.comb += cur.eq(Mux(w_burst == 0, wlen, w_burst))
        d = self.mw.data
        w_done = Signal(P)
        w_hs = Signal(P)
        for j, ax in enumerate(ports):
            m.d.comb += [ax.wdata.eq(d.payload.data[j * 8 * B:(j + 1) * 8 * B]),
                         ax.wstrb.eq(d.payload.strb[j * B:(j + 1) * B]),
                         ax.wlast.eq(cur == 1),
                         ax.wvalid.eq(d.valid & (w_left != 0) & ~w_done[j]),
                         w_hs[j].eq(ax.wvalid & ax.wready)]
        m.d.comb += d.ready.eq((w_left != 0) & ((w_done | w_hs) == (1 << P) - 1))
        with m.If(d.valid & d.ready):
            m.d.sync += [w_done.eq(0), w_left.eq(w_left - 1), w_burst.eq(cur - 1)]
            with m.If(w_burst == 0):
                m.d.sync += w_laddr.eq(w_laddr + (wlen << lb))
        with m.Elif(w_left != 0):
            m.d.sync += w_done.eq(w_done | w_hs)
        for j, ax in enumerate(ports):
            with m.If(ax.bvalid):
                m.d.sync += bcount[j].eq(bcount[j] + 1)
        complete = Signal()
        m.d.comb += complete.eq(busy & (aw_left == 0) & (w_left == 0)
                                & Cat(*[c == bursts for c in bcount]).all())
        m.d.comb += self.mw.wdone.eq(complete)
        with m.If(complete):
            m.d.sync += busy.eq(0)
        return m
