"""UART host bridge: a PC on a serial line reads and writes the engine's memory (AXI4 master)
and its control registers (AXI4-Lite master), for boards without a vendor shell (the ULX3S's
FT231X USB serial port).

Contract
--------
Serial: 8 data bits, no parity, 1 stop bit, LSB first, at ``baud`` (``clock_mhz * 1e6 /
baud`` cycles per bit, at least 4 and within 2 % of an integer).  ``rx`` is synchronised
(two flip-flops); ``tx`` idles high.

Commands (host -> bridge; multi-byte fields little endian):

==========  ==========================  ==============================================
byte        then                        reply
==========  ==========================  ==============================================
``0x01``    addr (4), n (4), n bytes    ``0x06`` when every byte is written (B seen)
``0x02``    addr (4), n (4)             the n bytes
``0x03``    reg (1), value (4)          ``0x06`` after the register write's B
``0x04``    reg (1)                     the register's value (4 bytes)
``0x05``    (none)                      ``0x06`` (ping)
other       (none)                      ``0x15``
==========  ==========================  ==============================================

The protocol is half duplex: the host sends a command once the previous one's reply has
arrived (bytes that arrive while a reply is being sent are dropped).  Received bytes wait in
a one-byte buffer, so a write's data bytes may follow each other back to back as long as a
byte's memory write finishes within a byte time.

Memory accesses are single-beat AXI4 bursts (``arlen``/``awlen`` 0, full-width ``size``),
one per byte: a write strobes the byte's lane, a read returns the byte's lane; ids 0.
Register offsets are byte offsets of the engine's AXI4-Lite block (``reg`` is the offset).
Throughput: one byte per UART byte time (10 bit times) in both directions.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fpgallm.hdl.axi import axi4_manager, axil_manager
from fpgallm.hdl.check import check_int
from fpgallm.hdl.emit import Emitted, to_verilog

ACK, NAK = 0x06, 0x15
CMD_WRITE, CMD_READ, CMD_REG_WRITE, CMD_REG_READ, CMD_PING = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class HostBridgeParams:
    """Parameters of :class:`HostBridge`; validated on construction."""

    clock_mhz: float = 25.0
    baud: int = 1_000_000
    addr_width: int = 32
    data_width: int = 64
    reg_addr_bits: int = 8

    def __post_init__(self):
        o = "HostBridgeParams"
        if not isinstance(self.clock_mhz, (int, float)) or not 1 <= self.clock_mhz <= 1000:
            raise ValueError(f"{o}.clock_mhz must be a number in [1, 1000], got {self.clock_mhz!r}")
        for name, lo, hi in (("baud", 1200, 100_000_000), ("addr_width", 16, 64),
                             ("data_width", 8, 1024), ("reg_addr_bits", 2, 16)):
            check_int(o, name, getattr(self, name), lo, hi)
        if self.data_width & (self.data_width - 1):
            raise ValueError(f"{o}.data_width must be a power of two, got {self.data_width}")
        exact = self.clock_mhz * 1e6 / self.baud
        if exact < 4 or abs(round(exact) - exact) > 0.02 * exact:
            raise ValueError(f"{o}.baud {self.baud} at {self.clock_mhz:g} MHz is {exact:.2f} cycles per "
                             f"bit: needs at least 4, within 2 % of an integer")

    @property
    def divider(self) -> int:
        """Clock cycles per bit."""
        return round(self.clock_mhz * 1e6 / self.baud)


class HostBridge(wiring.Component):
    """The bridge (contract in the module docstring)."""

    def __init__(self, params: HostBridgeParams):
        self.params = params
        super().__init__({
            "rx": In(1), "tx": Out(1, init=1),
            "mem": Out(axi4_manager(params.addr_width, params.data_width)),
            "csr": Out(axil_manager(params.reg_addr_bits)),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        div = p.divider
        bb = p.data_width // 8
        lg_bb = (bb - 1).bit_length()

        # ---- receiver ---------------------------------------------------------------------
        rx1 = Signal(init=1)
        rx2 = Signal(init=1)
        m.d.sync += [rx1.eq(self.rx), rx2.eq(rx1)]
        r_cnt = Signal(range(div * 3 // 2 + 1))
        r_bit = Signal(range(10))
        r_sh = Signal(8)
        r_busy = Signal()
        rx_valid = Signal()           # a received byte waits in rx_byte (one-byte buffer)
        rx_take = Signal()            # the command engine consumes it
        rx_byte = Signal(8)
        with m.If(rx_take):
            m.d.sync += rx_valid.eq(0)
        with m.If(~r_busy):
            with m.If(~rx2):          # start bit: sample the data bits in their middles
                m.d.sync += [r_busy.eq(1), r_cnt.eq(div + div // 2 - 1), r_bit.eq(0)]
        with m.Elif(r_cnt != 0):
            m.d.sync += r_cnt.eq(r_cnt - 1)
        with m.Elif(r_bit == 8):      # stop bit
            m.d.sync += r_busy.eq(0)
            with m.If(rx2):
                m.d.sync += [rx_valid.eq(1), rx_byte.eq(r_sh)]
        with m.Else():
            m.d.sync += [r_sh.eq(Cat(r_sh[1:], rx2)), r_bit.eq(r_bit + 1), r_cnt.eq(div - 1)]

        # ---- transmitter ------------------------------------------------------------------
        t_sh = Signal(10, init=0x3FF)
        t_bit = Signal(range(11))
        t_cnt = Signal(range(div + 1))
        tx_go = Signal()
        tx_data = Signal(8)
        tx_busy = Signal()
        m.d.comb += [tx_busy.eq(t_bit != 0), self.tx.eq(t_sh[0])]
        with m.If(tx_go & ~tx_busy):
            m.d.sync += [t_sh.eq(Cat(Const(0, 1), tx_data, Const(1, 1))), t_bit.eq(10), t_cnt.eq(div - 1)]
        with m.Elif(tx_busy):
            with m.If(t_cnt != 0):
                m.d.sync += t_cnt.eq(t_cnt - 1)
            with m.Else():
                m.d.sync += [t_sh.eq(Cat(t_sh[1:], Const(1, 1))), t_bit.eq(t_bit - 1), t_cnt.eq(div - 1)]

        # ---- command engine ---------------------------------------------------------------
        op = Signal(8)
        field = Signal(32)            # a multi-byte field being received
        k = Signal(3)                 # its bytes so far
        addr = Signal(32)
        n = Signal(32)
        reg = Signal(p.reg_addr_bits)
        val = Signal(32)
        byte = Signal(8)
        outb = Signal(32)             # bytes to send (register value)
        nout = Signal(3)
        mem, csr = self.mem, self.csr
        m.d.comb += [mem.awid.eq(0), mem.arid.eq(0), mem.awlen.eq(0), mem.arlen.eq(0),
                     mem.awsize.eq(lg_bb), mem.arsize.eq(lg_bb), mem.awburst.eq(1), mem.arburst.eq(1),
                     mem.awaddr.eq(addr), mem.araddr.eq(addr), mem.wlast.eq(1),
                     mem.wdata.eq(Cat(*([byte] * bb))),
                     mem.wstrb.eq(Const(1, bb) << addr[:lg_bb] if bb > 1 else 1),
                     csr.awaddr.eq(reg), csr.araddr.eq(reg), csr.wdata.eq(val), csr.wstrb.eq(0xF)]
        aw_done = Signal()
        w_done = Signal()

        def take_field(nbytes: int, then: str, store):
            """Collect ``nbytes`` little-endian bytes into ``store``, then go to ``then``."""
            with m.If(rx_valid):
                m.d.comb += rx_take.eq(1)
                m.d.sync += [field.eq(Cat(field[8:], rx_byte)), k.eq(k + 1)]
                with m.If(k == nbytes - 1):
                    v = Cat(field[8:], rx_byte)[32 - 8 * nbytes:]
                    m.d.sync += [store.eq(v), k.eq(0)]
                    m.next = then

        def address_and_data(bus, then: str):
            """AW and W of one write on ``bus`` (AXI4 or AXI4-Lite), in either order or
            together; then go to ``then`` with both flags clear again."""
            m.d.comb += [bus.awvalid.eq(~aw_done), bus.wvalid.eq(~w_done)]
            with m.If(bus.awvalid & bus.awready):
                m.d.sync += aw_done.eq(1)
            with m.If(bus.wvalid & bus.wready):
                m.d.sync += w_done.eq(1)
            with m.If((aw_done | bus.awready) & (w_done | bus.wready)):
                m.d.sync += [aw_done.eq(0), w_done.eq(0)]
                m.next = then

        def send(value, nbytes: int, then: str):
            m.d.sync += [outb.eq(value), nout.eq(nbytes)]
            m.next = then

        with m.FSM():
            with m.State("CMD"):
                with m.If(rx_valid):
                    m.d.comb += rx_take.eq(1)
                    m.d.sync += [op.eq(rx_byte), k.eq(0)]
                    with m.Switch(rx_byte):
                        with m.Case(CMD_WRITE, CMD_READ):
                            m.next = "ADDR"
                        with m.Case(CMD_REG_WRITE, CMD_REG_READ):
                            m.next = "REG"
                        with m.Case(CMD_PING):
                            send(ACK, 1, "SEND")
                        with m.Default():
                            send(NAK, 1, "SEND")
            with m.State("ADDR"):
                take_field(4, "LEN", addr)
            with m.State("LEN"):
                take_field(4, "LEN_DONE", n)
            with m.State("LEN_DONE"):
                with m.If(n == 0):
                    with m.If(op == CMD_WRITE):
                        send(ACK, 1, "SEND")
                    with m.Else():
                        m.next = "CMD"
                with m.Elif(op == CMD_WRITE):
                    m.next = "WBYTE"
                with m.Else():
                    m.next = "RADDR"
            with m.State("WBYTE"):
                with m.If(rx_valid):
                    m.d.comb += rx_take.eq(1)
                    m.d.sync += byte.eq(rx_byte)
                    m.next = "WAXI"
            with m.State("WAXI"):
                address_and_data(mem, "WRESP")
            with m.State("WRESP"):
                m.d.comb += mem.bready.eq(1)
                with m.If(mem.bvalid):
                    m.d.sync += [addr.eq(addr + 1), n.eq(n - 1)]
                    with m.If(n == 1):
                        send(ACK, 1, "SEND")
                    with m.Else():
                        m.next = "WBYTE"
            with m.State("RADDR"):
                m.d.comb += mem.arvalid.eq(1)
                with m.If(mem.arready):
                    m.next = "RDATA"
            with m.State("RDATA"):
                m.d.comb += mem.rready.eq(1)
                with m.If(mem.rvalid):
                    if bb > 1:
                        with m.Switch(addr[:lg_bb]):       # the byte's lane
                            for i in range(bb):
                                with m.Case(i):
                                    m.d.sync += outb.eq(mem.rdata[8 * i:8 * i + 8])
                    else:
                        m.d.sync += outb.eq(mem.rdata[:8])
                    m.d.sync += [nout.eq(1), addr.eq(addr + 1), n.eq(n - 1)]
                    m.next = "RSEND"
            with m.State("RSEND"):
                with m.If(~tx_busy):
                    m.d.comb += tx_go.eq(1)
                    m.d.comb += tx_data.eq(outb[:8])
                    with m.If(n == 0):
                        m.next = "CMD"
                    with m.Else():
                        m.next = "RADDR"
            with m.State("REG"):
                take_field(1, "REG_DONE", reg)
            with m.State("REG_DONE"):
                with m.If(op == CMD_REG_WRITE):
                    m.next = "VAL"
                with m.Else():
                    m.next = "CSR_AR"
            with m.State("VAL"):
                take_field(4, "CSR_AW", val)
            with m.State("CSR_AW"):
                address_and_data(csr, "CSR_B")
            with m.State("CSR_B"):
                m.d.comb += csr.bready.eq(1)
                with m.If(csr.bvalid):
                    send(ACK, 1, "SEND")
            with m.State("CSR_AR"):
                m.d.comb += csr.arvalid.eq(1)
                with m.If(csr.arready):
                    m.next = "CSR_R"
            with m.State("CSR_R"):
                m.d.comb += csr.rready.eq(1)
                with m.If(csr.rvalid):
                    send(csr.rdata, 4, "SEND")
            with m.State("SEND"):
                with m.If(~tx_busy):
                    m.d.comb += [tx_go.eq(1), tx_data.eq(outb[:8])]
                    m.d.sync += [outb.eq(outb >> 8), nout.eq(nout - 1)]
                    with m.If(nout == 1):
                        m.next = "CMD"
        return m


def generate(p: HostBridgeParams, name: str = "fpgallm_host_bridge") -> Emitted:
    return to_verilog(HostBridge(p), name, {"host_bridge": p})
