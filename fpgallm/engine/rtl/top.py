"""The decode-engine accelerator top: an Amaranth ``Component`` built from
:class:`~fpgallm.engine.params.EngineParams`.

Ports:

- ``axil``: AXI4-Lite control and status registers (:mod:`~fpgallm.engine.rtl.csr`);
- ``axi0 .. axi{mem_ports-1}``: AXI4 masters to off-chip memory (weights, tables, KV cache,
  program, logits; :mod:`~fpgallm.engine.rtl.memsys`);
- ``busy`` / ``done``: the status bits as wires (``done`` doubles as an interrupt).

Inside: the controller (:mod:`~fpgallm.engine.rtl.controller`), the vector register file
(:mod:`~fpgallm.engine.rtl.vregs`), the memory system, and one execution unit per
``fpgallm/engine/rtl/x_*.py`` module (each declares the opcodes it executes in ``OPS``).
The shared ports go to the unit executing the current instruction (and the memory read
port to the controller while it fetches).  With ``prefetch_words`` > 0 the memory read port
passes through the weight prefetch buffer (:mod:`~fpgallm.engine.rtl.prefetch`), which the
controller's ``PREFETCH`` starts.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import reduce

from amaranth.hdl import Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from fpgallm.engine.isa import Op
from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl import csr as csr_mod
from fpgallm.engine.rtl.controller import Controller
from fpgallm.engine.rtl.memsys import MemSystem, axi4_signature
from fpgallm.engine.rtl.prefetch import Prefetcher
from fpgallm.engine.rtl.vregs import VectorFile

SHARED = ("vra", "vrb", "vw", "era", "ew", "mr", "mw")
GATED = ("valid", "ready", "wdone")


def unit_modules() -> list:
    """The execution-unit modules ``fpgallm.engine.rtl.x_*``, sorted by name."""
    import fpgallm.engine.rtl as pkg

    mods = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("x_"):
            mods.append(importlib.import_module(f"fpgallm.engine.rtl.{info.name}"))
    return mods


def _get(obj, path):
    for name in path:
        obj = obj[name] if isinstance(name, int) else getattr(obj, name)
    return obj


def _share(m: Module, name: str, sig: wiring.Signature, resource, clients: list, active):
    """Connect ``clients`` (unit-side port objects of ``sig``) to ``resource`` (its flipped
    counterpart): the resource sees the active client; inactive clients see no handshakes.

    Each client's "is active" bit is one named signal: an expression would be emitted once
    per use, i.e. once per payload bit (Amaranth does not share common subexpressions)."""
    hits = []
    for i in range(len(clients)):
        hit = Signal(name=f"{name}_to_{i}")
        m.d.comb += hit.eq(active == i)
        hits.append(hit)
    for path, member, _value in sig.flatten(clients[0]):
        res = Value.cast(_get(resource, path))
        vals = [Value.cast(_get(c, path)) for c in clients]
        if member.flow == Out:
            parts = [v & hit.replicate(len(v)) for hit, v in zip(hits, vals)]
            m.d.comb += res.eq(reduce(lambda a, b: a | b, parts))
        else:
            for hit, v in zip(hits, vals):
                if path[-1] in GATED:
                    m.d.comb += v.eq(res & hit)
                else:
                    m.d.comb += v.eq(res)


class Engine(wiring.Component):
    """The accelerator.  ``units``: execution-unit modules to include (default: all)."""

    def __init__(self, params: EngineParams, units=None):
        self.params = params
        self.units = list(units) if units is not None else unit_modules()
        ops: dict[Op, str] = {}
        for mod in self.units:
            for op in mod.OPS:
                if op in ops:
                    raise ValueError(f"opcode {op.name} is executed by both {ops[op]} and {mod.__name__}")
                ops[op] = mod.__name__
        self.ops = tuple(ops)
        sig = {"axil": Out(csr_mod.axil_signature()), "busy": Out(1), "done": Out(1)}
        for j in range(params.mem_ports):
            sig[f"axi{j}"] = Out(axi4_signature(params))
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        p = self.params
        m.submodules.csr = csr = csr_mod.Csr(p)
        m.submodules.ctrl = ctrl = Controller(p, self.ops)
        m.submodules.vregs = vf = VectorFile(p)
        m.submodules.mem = ms = MemSystem(p)
        wiring.connect(m, wiring.flipped(self.axil), csr.axil)
        for j in range(p.mem_ports):
            wiring.connect(m, wiring.flipped(getattr(self, f"axi{j}")), getattr(ms, f"axi{j}"))
        m.d.comb += [ctrl.start.eq(csr.start), ctrl.prog.eq(csr.prog), ctrl.nseq.eq(csr.nseq),
                     ctrl.chunk.eq(csr.chunk),
                     ctrl.pos.eq(csr.pos), ctrl.token.eq(csr.token),
                     csr.busy.eq(ctrl.busy), csr.done.eq(ctrl.done), csr.error.eq(ctrl.error),
                     csr.error_op.eq(ctrl.error_op), csr.cycles.eq(ctrl.cycles), csr.pc.eq(ctrl.pc),
                     csr.s1.eq(ctrl.s1), self.busy.eq(ctrl.busy), self.done.eq(ctrl.done)]

        units = []
        for k, mod in enumerate(self.units):
            u = mod.Unit(p)
            m.submodules[mod.__name__.rsplit(".", 1)[1]] = u
            units.append((mod, u))
        n = len(units)
        sel = Signal(range(n + 1))
        # command routing by opcode
        op = ctrl.cmd.payload.ins.op
        readies = []
        for i, (mod, u) in enumerate(units):
            match = Signal(name=f"match_{i}")
            m.d.comb += match.eq(reduce(lambda a, b: a | b, [op == int(o) for o in mod.OPS]))
            m.d.comb += [u.cmd.payload.eq(ctrl.cmd.payload), u.cmd.valid.eq(ctrl.cmd.valid & match)]
            readies.append(u.cmd.ready & match)
            with m.If(ctrl.cmd.valid & u.cmd.ready & match):
                m.d.sync += sel.eq(i)
        m.d.comb += ctrl.cmd.ready.eq(reduce(lambda a, b: a | b, readies) if readies else 0)
        m.d.comb += ctrl.unit_done.eq(reduce(lambda a, b: a | b,
                                             [u.done & (sel == i) for i, (_m, u) in enumerate(units)])
                                      if units else 0)
        for i, (_mod, u) in enumerate(units):
            with m.If(sel == i):
                m.d.comb += ctrl.sres.eq(u.sres)
        # shared ports
        resources = {"vra": vf.vra, "vrb": vf.vrb, "vw": vf.vw, "era": vf.era, "ew": vf.ew,
                     "mr": ms.mr, "mw": ms.mw}
        if p.prefetch_words:
            m.submodules.prefetch = pf = Prefetcher(p)
            wiring.connect(m, ctrl.pf, pf.cmd)
            wiring.connect(m, pf.mem, ms.mr)
            resources["mr"] = pf.fg
        from fpgallm.engine.rtl import iface
        for name in SHARED:
            clients = [getattr(u, name) for _m, u in units]
            sig = iface.exec_signature(p).members[name].signature
            active = sel
            if name == "mr":
                clients.append(ctrl.mr)
                active = Signal(range(n + 1), name="mr_active")
                m.d.comb += active.eq(Mux(ctrl.fetching, n, sel))
            if clients:
                _share(m, name, sig, resources[name], clients, active)
        return m
