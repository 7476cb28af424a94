"""Simulation top: the engine with one fast Verilog AXI4 memory model per memory port
(``sim/models/fpgallm_axi_mem.v``), so a whole program runs at Verilator speed and the
testbench only writes the control registers, starts and waits.

Ports: ``clk``/``rst``, ``axil`` (the engine's AXI4-Lite registers), ``busy``/``done``,
``dump``/``dump_lo``/``dump_hi`` (every memory writes words ``dump_lo..dump_hi`` to
``<+fpgallm_mem<j>_dump>.<n>.hex`` on a ``dump`` pulse) and ``read_beats``/``write_beats``
of port 0.  Memory ``j`` loads its contents from the plusarg ``+fpgallm_mem<j>=<file>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import ClockSignal, Instance, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl import csr as csr_mod
from fpgallm.engine.rtl.memsys import ID_BITS, axi_addr_bits
from fpgallm.engine.rtl.top import Engine

AXI_NAMES = ("awid", "awaddr", "awlen", "awsize", "awburst", "awvalid", "awready", "wdata",
             "wstrb", "wlast", "wvalid", "wready", "bid", "bresp", "bvalid", "bready", "arid",
             "araddr", "arlen", "arsize", "arburst", "arvalid", "arready", "rid", "rdata",
             "rresp", "rlast", "rvalid", "rready")


@dataclass(frozen=True)
class MemTiming:
    """The memory models' timing: first-beat latency and beats per cycle (num/den) per port."""

    read_latency: int = 20
    rate_num: int = 1
    rate_den: int = 1

    def __post_init__(self):
        if not isinstance(self.read_latency, int) or not 2 <= self.read_latency <= 10000:
            raise ValueError(f"MemTiming.read_latency must be an integer in [2, 10000], got {self.read_latency!r}")
        if not (isinstance(self.rate_num, int) and isinstance(self.rate_den, int)
                and 1 <= self.rate_num <= self.rate_den <= 1024):
            raise ValueError(f"MemTiming.rate_num/rate_den must satisfy 1 <= num <= den <= 1024, "
                             f"got {self.rate_num}/{self.rate_den}")


ENGINE_MODULE = "fpgallm_engine"


class _ExternalEngine(wiring.Component):
    """The engine as an instance of the Verilog module ``fpgallm_engine`` from another file
    (a generated project's ``rtl/fpgallm_engine.v``): the same ports, by their flattened
    names (``axil__awaddr``, ``axi0__arvalid``, ...)."""

    def __init__(self, engine: Engine):
        engine._MustUse__silence = True      # stands for the engine; never elaborated here
        self._sig = engine.signature
        super().__init__(engine.signature)

    def elaborate(self, platform):
        m = Module()
        kw = {"i_clk": ClockSignal(), "i_rst": ResetSignal()}
        for path, member, value in self._sig.flatten(self):
            name = "__".join(str(x) for x in path)
            kw[("o_" if member.flow == Out else "i_") + name] = value
        m.submodules.engine = Instance(ENGINE_MODULE, **kw)
        return m


class SimTop(wiring.Component):
    """``external_engine``: instantiate the engine as the Verilog module ``fpgallm_engine``
    from a separate source (checking a generated project's RTL) instead of building it."""

    def __init__(self, params: EngineParams, words_log2: int, timing: MemTiming = MemTiming(),
                 units=None, external_engine: bool = False):
        self.params = params
        self.words_log2 = words_log2
        self.timing = timing
        self.engine = Engine(params, units)
        if external_engine:
            self.engine = _ExternalEngine(self.engine)
        super().__init__({
            "axil": Out(csr_mod.axil_signature()), "busy": Out(1), "done": Out(1),
            "dump": In(1), "dump_lo": In(words_log2), "dump_hi": In(words_log2),
            "read_beats": Out(64), "write_beats": Out(64),
        })

    def elaborate(self, platform):
        m = Module()
        p, t = self.params, self.timing
        m.submodules.engine = eng = self.engine
        wiring.connect(m, wiring.flipped(self.axil), eng.axil)
        m.d.comb += [self.busy.eq(eng.busy), self.done.eq(eng.done)]
        for j in range(p.mem_ports):
            ax = getattr(eng, f"axi{j}")
            kw = {}
            for name in AXI_NAMES:
                sig = getattr(ax, name)
                if name in ("bid", "bresp", "bvalid", "rid", "rdata", "rresp", "rlast", "rvalid",
                            "awready", "wready", "arready"):
                    kw[f"o_s_axi_{name}"] = sig
                else:
                    kw[f"i_s_axi_{name}"] = sig
            rb = self.read_beats if j == 0 else Signal(64, name=f"read_beats{j}")
            wb = self.write_beats if j == 0 else Signal(64, name=f"write_beats{j}")
            m.submodules[f"mem{j}"] = Instance(
                "fpgallm_axi_mem",
                p_DATA_WIDTH=p.port_width, p_ADDR_WIDTH=axi_addr_bits(p), p_ID_WIDTH=ID_BITS,
                p_WORDS_LOG2=self.words_log2, p_READ_LATENCY=t.read_latency,
                p_RATE_NUM=t.rate_num, p_RATE_DEN=t.rate_den, p_MAX_OUTSTANDING=16,
                p_PLUSARG=f"fpgallm_mem{j}",
                i_clk=ClockSignal(), i_rst=ResetSignal(),
                o_read_beats=rb, o_write_beats=wb,
                i_dump=self.dump, i_dump_lo=self.dump_lo, i_dump_hi=self.dump_hi, **kw)
        return m
