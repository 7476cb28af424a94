"""Vector register file and exponent file of the decode engine.

Contract (the port protocol is in :mod:`fpgallm.engine.rtl.iface`):

- ``vra``, ``vrb``: read servers.  A request ``{reg, seq, start, count}`` (``start`` a
  multiple of ``L = vector_lanes``) returns ``ceil(count / L)`` beats of ``L`` signed 24-bit
  elements, ``last`` on the final beat; the next request is accepted once the previous one's
  reads are issued.  Latency: the first beat is valid two cycles after the request is
  accepted; then one beat a cycle while ``data.ready`` is high.
- ``vw``: write server.  A request is followed by ``ceil(count / L)`` data beats, accepted one
  a cycle; lanes past ``count`` are not written.  A beat is in the register when accepted.
- ``era`` / ``ew``: the same for exponents (one :data:`~iface.EXP_BITS`-bit exponent per
  group of 32 elements, one per beat; ``start``/``count`` in groups), registers
  ``0..vregs-1`` only.

Geometry: registers ``0..vregs-1`` hold ``vreg_elems`` elements, register 15 (the logits)
``max_vocab``; every sequence of the batch has its own set.  Storage is one memory per lane
(``batch * (vregs * ceil(vreg_elems / L) + ceil(max_vocab / L))`` rows of 24 bits), so a
partial last beat is a per-lane write enable; registers ``vregs..14`` alias register 0.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import fifo, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In

from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl import iface
from fpgallm.engine.rtl.iface import ACT_GROUP, EXP_BITS, LOGITS_REG, REG_BITS


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


class Geometry:
    """Row addresses of the register file for ``params``."""

    def __init__(self, p: EngineParams):
        L = p.vector_lanes
        self.lanes = L
        self.rows_reg = _ceil(p.vreg_elems, L)
        self.rows_logits = _ceil(p.max_vocab, L)
        self.rows_seq = p.vregs * self.rows_reg + self.rows_logits
        self.depth = p.batch * self.rows_seq
        self.groups_reg = _ceil(p.vreg_elems, ACT_GROUP)
        self.exp_depth = p.batch * p.vregs * self.groups_reg
        self.vregs = p.vregs

    def base(self, reg, seq):
        """Row of element 0 of ``reg`` of ``seq`` (HDL values)."""
        off = Mux(reg == LOGITS_REG, self.vregs * self.rows_reg,
                  Mux(reg < self.vregs, reg * self.rows_reg, 0))
        return seq * self.rows_seq + off

    def exp_base(self, reg, seq):
        return (seq * self.vregs + Mux(reg < self.vregs, reg, 0)) * self.groups_reg


def _read_server(m: Module, name: str, port, rps, lanes: int, per_beat, base_fn, depth: int,
                 elem_shape):
    """Serve ``port`` (flipped read signature) from read ports ``rps`` (one per lane)."""
    abits = max(1, (depth - 1).bit_length())
    addr = Signal(abits, name=f"{name}_addr")
    left = Signal(iface.ELEM_BITS + 1, name=f"{name}_left")
    inflight = Signal(name=f"{name}_inflight")
    in_last = Signal(name=f"{name}_in_last")
    q = fifo.SyncFIFO(width=len(port.data.payload.as_value()), depth=4)
    m.submodules[f"{name}_q"] = q
    req = port.req
    m.d.comb += req.ready.eq(left == 0)
    with m.If(req.valid & req.ready):
        m.d.sync += [addr.eq(base_fn(req.payload.reg, req.payload.seq)
                             + req.payload.start // per_beat),
                     left.eq((req.payload.count + (per_beat - 1)) // per_beat)]
    issue = Signal(name=f"{name}_issue")
    m.d.comb += issue.eq((left != 0) & (q.level + inflight < q.depth))
    for rp in rps:
        m.d.comb += [rp.addr.eq(addr), rp.en.eq(issue)]
    with m.If(issue):
        m.d.sync += [addr.eq(addr + 1), left.eq(left - 1)]
    m.d.sync += [inflight.eq(issue), in_last.eq(issue & (left == 1))]
    beat = Signal(port.data.payload.shape(), name=f"{name}_beat")
    if lanes > 1 or elem_shape is not None:
        for i, rp in enumerate(rps):
            m.d.comb += beat.data[i].eq(rp.data)
    else:
        m.d.comb += beat.exp.eq(rps[0].data)
    m.d.comb += [beat.last.eq(in_last), q.w_data.eq(beat.as_value()), q.w_en.eq(inflight),
                 port.data.valid.eq(q.r_rdy), port.data.payload.eq(q.r_data),
                 q.r_en.eq(port.data.ready)]


def _write_server(m: Module, name: str, port, wps, lanes: int, per_beat, base_fn, depth: int,
                  exps: bool):
    abits = max(1, (depth - 1).bit_length())
    addr = Signal(abits, name=f"{name}_addr")
    left = Signal(iface.ELEM_BITS + 1, name=f"{name}_left")      # elements (or groups) left
    req = port.req
    m.d.comb += req.ready.eq(left == 0)
    with m.If(req.valid & req.ready):
        m.d.sync += [addr.eq(base_fn(req.payload.reg, req.payload.seq)
                             + req.payload.start // per_beat),
                     left.eq(req.payload.count)]
    d = port.data
    m.d.comb += d.ready.eq(left != 0)
    take = d.valid & d.ready
    for i, wp in enumerate(wps):
        m.d.comb += [wp.addr.eq(addr), wp.en.eq(take & (left > i))]
        m.d.comb += wp.data.eq(d.payload.exp if exps else d.payload.data[i])
    with m.If(take):
        m.d.sync += [addr.eq(addr + 1),
                     left.eq(Mux(left > per_beat, left - per_beat, 0))]


class VectorFile(wiring.Component):
    """The vector register file and exponent file (see the module docstring)."""

    def __init__(self, params: EngineParams):
        self.params = params
        self.geo = Geometry(params)
        sig = {
            "vra": In(iface.vec_read_signature(params)),
            "vrb": In(iface.vec_read_signature(params)),
            "vw": In(iface.vec_write_signature(params)),
            "era": In(iface.exp_read_signature(params)),
            "ew": In(iface.exp_write_signature(params)),
        }
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        p, g = self.params, self.geo
        L = p.vector_lanes
        ra, rb, wv = [], [], []
        for i in range(L):
            mem = Memory(shape=unsigned(REG_BITS), depth=g.depth, init=[])
            m.submodules[f"lane{i}"] = mem
            wv.append(mem.write_port())
            ra.append(mem.read_port(domain="sync", transparent_for=()))
            rb.append(mem.read_port(domain="sync", transparent_for=()))
        emem = Memory(shape=unsigned(EXP_BITS), depth=g.exp_depth, init=[])
        m.submodules.exps = emem
        ew = emem.write_port()
        er = emem.read_port(domain="sync", transparent_for=())
        _read_server(m, "vra", self.vra, ra, L, L, g.base, g.depth, True)
        _read_server(m, "vrb", self.vrb, rb, L, L, g.base, g.depth, True)
        _write_server(m, "vw", self.vw, wv, L, L, g.base, g.depth, False)
        _read_server(m, "era", self.era, [er], 1, 1, g.exp_base, g.exp_depth, None)
        _write_server(m, "ew", self.ew, [ew], 1, 1, g.exp_base, g.exp_depth, True)
        return m
