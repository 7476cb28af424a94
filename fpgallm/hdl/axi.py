"""AXI4 and AXI4-Lite interface signatures (``amaranth.lib.wiring``), manager side; the
subordinate side is their ``.flip()``.  One definition for the engine's memory ports and
registers, the SDRAM controller and the UART host bridge, so that ``wiring.connect`` checks
every pairing when the design is built."""

from __future__ import annotations

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

ID_BITS = 4


def axi4_manager(addr_bits: int, data_bits: int, id_bits: int = ID_BITS) -> wiring.Signature:
    """AXI4 manager (master): the five channels, INCR bursts, ``data_bits // 8`` strobes."""
    a, d, i = addr_bits, data_bits, id_bits
    return wiring.Signature({
        "awid": Out(i), "awaddr": Out(a), "awlen": Out(8), "awsize": Out(3),
        "awburst": Out(2), "awvalid": Out(1), "awready": In(1),
        "wdata": Out(d), "wstrb": Out(d // 8), "wlast": Out(1), "wvalid": Out(1), "wready": In(1),
        "bid": In(i), "bresp": In(2), "bvalid": In(1), "bready": Out(1),
        "arid": Out(i), "araddr": Out(a), "arlen": Out(8), "arsize": Out(3),
        "arburst": Out(2), "arvalid": Out(1), "arready": In(1),
        "rid": In(i), "rdata": In(d), "rresp": In(2), "rlast": In(1), "rvalid": In(1),
        "rready": Out(1),
    })


def axil_manager(addr_bits: int) -> wiring.Signature:
    """AXI4-Lite manager, 32-bit data."""
    return wiring.Signature({
        "awaddr": Out(addr_bits), "awvalid": Out(1), "awready": In(1),
        "wdata": Out(32), "wstrb": Out(4), "wvalid": Out(1), "wready": In(1),
        "bresp": In(2), "bvalid": In(1), "bready": Out(1),
        "araddr": Out(addr_bits), "arvalid": Out(1), "arready": In(1),
        "rdata": In(32), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
    })
