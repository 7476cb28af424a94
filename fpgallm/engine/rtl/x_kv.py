"""KVAPPEND execution unit: quantize K = ``V[a]`` and V = ``V[b]`` per head vector and write
them at position ``S[POS]`` of the layer's KV region (``golden.Machine.op_KVAPPEND``).

Instruction: ``n`` = kv_dim (``kv_heads * head_dim``), ``m`` = head_dim, ``addr`` = the
layer's KV region (layout: :mod:`fpgallm.engine.kvlayout`).  For each sequence ``s <
nseq`` and kv-head ``kh`` (``kh * head_dim < n``) (with ``cmd.chunk`` every lane is a
prompt position of sequence 0 and writes sequence 0's head blocks):

1. read ``head_dim`` elements at ``kh * head_dim`` of ``V[a]`` (port ``vra``) and ``V[b]``
   (``vrb``) into two head buffers, tracking ``max |x|``;
2. exponent ``e = max(0, bit_length(max) - (kv bits - 1))`` (the quantize unit's rule with
   group = head_dim), ``q = sat(round_shift(x, e))``;
3. write (port ``mw``, byte strobes) K's and V's words at ``pos * stride`` of the head
   block, then the two exponent bytes; the writes' completions (``wdone``) are counted and
   ``done`` pulses when all have returned.

Timing (no stalls): see :func:`cycles`.  Requires ``head_dim % vector_lanes == 0`` when
kv_heads > 1 (register reads start on a beat).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring

from fpgallm.engine.isa import Op
from fpgallm.engine.kvlayout import kv_layout
from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl import iface
from fpgallm.engine.rtl.iface import ADDR_BITS, ELEM_BITS, REG_BITS, SCALAR_BITS
from fpgallm.engine.rtl.kvhdl import (
    Geometry,
    OneHot,
    bitlen,
    clog2,
    head_banks,
    head_rows,
    is_,
    select,
)
from fpgallm.hdl.requant import shift_right_sat

OPS = (Op.KVAPPEND,)


def head_banked(p: EngineParams) -> bool:
    """Whether the K and V head buffers are LUT-RAM banks (a head spans several stripe
    words and a word's elements are whole beats) rather than registers."""
    rows, elems = head_rows(p)
    return rows > 1 and elems % p.vector_lanes == 0

SETUP = 1     # cycles from accepting the command to the first head's read requests


def cycles(p: EngineParams, kv_dim: int, head_dim: int, nseq: int, vread_latency: int,
           wdone_latency: int, serial_writes: bool = True) -> int:
    """Cycles from ``cmd`` accepted to ``done`` with ports that never stall: the register
    read's first beat comes ``vread_latency`` cycles after the request is accepted, a
    write's ``wdone`` ``wdone_latency`` cycles after its last data beat.  ``serial_writes``:
    the memory system accepts a write request only after the previous one's ``wdone``
    (the engine's :mod:`~fpgallm.engine.rtl.memsys`); an approximation there (within ~3%
    of the measured cycles), exact without it (tests/engine/rtl/portsim.py)."""
    lay = kv_layout(p, head_dim)
    beats = -(-head_dim // p.vector_lanes)
    heads = -(-kv_dim // head_dim)
    # HEAD (requests, beats), EXP, 3 writes (request, beats, next), NEXT
    per_head = (1 + vread_latency + beats) + 1 + (2 * (lay.rows + 2) + 3) + 1
    if serial_writes:           # the V and exponent writes wait for the previous wdone
        per_head += 2 * max(0, wdone_latency - 1)
    return SETUP + nseq * heads * per_head + max(wdone_latency, 2) - 3


class Unit(wiring.Component):
    """The KVAPPEND execution unit (contract in the module docstring)."""

    def __init__(self, params: EngineParams):
        self.params = params
        super().__init__(iface.exec_signature(params))

    def elaborate(self, platform):
        p = self.params
        m = Module()
        Lv = p.vector_lanes
        bits = p.kv_format.bits

        ins = Signal(iface.instruction_layout())
        nseq = Signal(4)
        chunk = Signal()                         # lanes share sequence 0's KV cache
        pos = Signal(iface.exec_cmd_layout(p).members["pos"])
        hd = Signal(range(p.max_head_dim + 1))
        g = Geometry(m, p, hd)
        wb, E = g.wb, g.elems
        W = wb * 8
        # head buffer lanes: whole stripe words when a head spans several, else the longest
        # head (lanes past head_dim quantize to zero bytes, which the strobes never write)
        nl = g.nl if g.max_rows > 1 else min(E, p.max_head_dim)
        Eq = min(E, nl)                          # elements of one quantized row

        seq = Signal(3)
        start = Signal(ELEM_BITS + 1)            # kh * head_dim
        base = Signal(ADDR_BITS)                 # head block address
        cur_pos = Signal(SCALAR_BITS)
        m.d.comb += cur_pos.eq(select(m, [pos[b] for b in range(p.batch)], seq, SCALAR_BITS, "pos_sel"))

        # ---- head buffers (flat, nl lanes; lanes >= head_dim are zero) ------------------
        # Several rows: Eq banks of LUT-RAM per buffer (bank j holds lanes j, j + Eq, ... at
        # the lane's row), written by lane j % Lv of a beat and read a whole row at a time.
        # One row (or beats wider than a row): registers.
        banked = head_banked(p)
        raws = None if banked else [[Signal(signed(REG_BITS), name=f"raw{t}_{i}") for i in range(nl)]
                                    for t in range(2)]
        bank_w = []
        amax = [Signal(REG_BITS, name=f"amax{t}") for t in range(2)]
        exps = [Signal(5, name=f"exp{t}") for t in range(2)]
        beat = [Signal(range(nl // Lv + 2), name=f"beat{t}") for t in range(2)]
        got = [Signal(name=f"got{t}") for t in range(2)]
        reqd = [Signal(name=f"reqd{t}") for t in range(2)]
        ports = [self.vra, self.vrb]
        clear = Signal()
        exp_next = []

        for t in range(2):
            port = ports[t]
            acc = port.data.valid & port.data.ready
            lane_abs = []
            for j in range(Lv):
                x = port.data.payload.data[j]
                ok = (beat[t] * Lv + j) < hd
                a = Signal(REG_BITS, name=f"abs{t}_{j}")
                m.d.comb += a.eq(Mux(ok, Mux(x < 0, -x, x), 0))
                lane_abs.append(a)
                if not banked:
                    for i in range(j, nl, Lv):
                        with m.If(acc & is_(beat[t], i // Lv)):
                            m.d.sync += raws[t][i].eq(Mux(ok, x, 0))
            if banked:
                bank_w.append((acc, [Mux((beat[t] * Lv + j) < hd, port.data.payload.data[j], 0)
                                     for j in range(Lv)]))
            mx = amax[t]
            for a in lane_abs:
                nm = Signal(REG_BITS)
                m.d.comb += nm.eq(Mux(a > mx, a, mx))
                mx = nm
            with m.If(acc):
                m.d.sync += [amax[t].eq(mx), beat[t].eq(beat[t] + 1)]
                with m.If(port.data.payload.last):
                    m.d.sync += got[t].eq(1)
            bl = bitlen(m, amax[t], REG_BITS, f"bitlen{t}")
            with m.If(clear):
                m.d.sync += [amax[t].eq(0), beat[t].eq(0), got[t].eq(0), reqd[t].eq(0)]
                if not banked:       # (banked: lanes past head_dim hold stale values, which
                    for i in range(nl):   # no strobe writes and no maximum reads)
                        m.d.sync += raws[t][i].eq(0)
            exp_next.append(Mux(bl > bits - 1, bl - (bits - 1), 0))

        # ---- memory writes: K words, V words, exponent word --------------------------------
        item = Signal(2)      # 0 K, 1 V, 2 exponents
        row = Signal(range(g.max_rows + 1))
        pos_bytes = Signal(ADDR_BITS)
        m.d.comb += pos_bytes.eq(cur_pos * g.stride)
        off = Signal(range(wb))
        m.d.comb += off.eq(Mux(g.case_a, pos_bytes[:g.lg_wb], 0))
        e_addr = Signal(ADDR_BITS)
        m.d.comb += e_addr.eq(base + ((cur_pos << 1) >> g.lg_wb << g.lg_wb))
        e_off = Signal(range(wb))
        m.d.comb += e_off.eq((cur_pos << 1)[:g.lg_wb])
        d_addr = Signal(ADDR_BITS)
        m.d.comb += d_addr.eq(base + g.exp_bytes + Mux(item[0], g.data_bytes, 0)
                              + (pos_bytes >> g.lg_wb << g.lg_wb))

        # the data word of (item, row): quantized row, shifted to the position's offset
        rowsel = []
        for t in range(2):
            rv = Signal(Eq * REG_BITS, name=f"rowsel{t}")
            if banked:
                acc_t, lanes_t = bank_w[t]
                m.d.comb += rv.eq(Cat(*head_banks(m, f"head{t}_", lanes_t, beat[t], acc_t, row, Eq,
                                                  g.max_rows)))
            else:
                rows_t = [Cat(*raws[t][r * Eq:(r + 1) * Eq]) for r in range(g.max_rows)]
                with m.Switch(row):
                    for r in range(g.max_rows):
                        with m.Case(r):
                            m.d.comb += rv.eq(rows_t[r])
                    with m.Default():
                        m.d.comb += rv.eq(0)
            rowsel.append(rv)
        qrow = Signal(Eq * bits)
        for i in range(Eq):
            x = Mux(item[0], rowsel[1], rowsel[0]).word_select(i, REG_BITS).as_signed()
            e = Mux(item[0], exps[1], exps[0])
            m.d.comb += qrow.word_select(i, bits).eq(shift_right_sat(m, x, e, bits, f"q{i}"))
        nbytes = Signal(range(wb + 1))
        rem = Signal(signed(ADDR_BITS))
        m.d.comb += rem.eq(g.vb - (row << g.lg_wb))
        m.d.comb += nbytes.eq(Mux(rem > wb, wb, rem))
        # The strobes pick the bytes written, so a word may carry its data at every place it
        # could go.  A position's bytes lie inside one aligned block of P bytes (the stride
        # is a power of two <= P that divides P): the row shifted within a block, repeated.
        P = 1 << clog2(Eq * g.eb)
        blk = Signal(8 * P)
        m.d.comb += blk.eq(qrow << (off[:clog2(P)] * 8))
        dword = Signal(W)
        dstrb = Signal(wb)
        end = Signal(range(2 * wb + 1))      # strobes: bytes off .. end - 1 (off <= wb - 1)
        m.d.comb += [dword.eq(Cat(*[blk] * (wb // P))), end.eq(off + nbytes),
                     dstrb.eq(Cat(*[(off <= j if j < wb - 1 else 1) & (end > j) for j in range(wb)]))]
        eword = Signal(W)            # the exponent pair at every even byte (e_off is even)
        m.d.comb += eword.eq(Cat(*[Cat(exps[0], Const(0, 3), exps[1], Const(0, 3))] * (wb // 2)))

        outstanding = Signal(8)
        inc = self.mw.req.valid & self.mw.req.ready
        m.d.sync += outstanding.eq(outstanding + inc - self.mw.wdone)

        with OneHot(m, ['IDLE', 'HEAD', 'EXP', 'WREQ', 'WDATA', 'WNEXT', 'NEXT', 'WAIT'], "IDLE") as fsm:
            self.fsm = fsm   # (debug: state flags)
            with fsm.state("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    c = self.cmd.payload
                    m.d.sync += [ins.eq(c.ins), nseq.eq(c.nseq), pos.eq(c.pos), hd.eq(c.ins.m), chunk.eq(c.chunk),
                                 seq.eq(0), start.eq(0), base.eq(c.ins.addr)]
                    m.d.comb += clear.eq(1)
                    fsm.go("IDLE", "HEAD")
            with fsm.state("HEAD"):
                for t, (port, reg) in enumerate(((self.vra, ins.a), (self.vrb, ins.b))):
                    m.d.comb += [port.req.valid.eq(~reqd[t]), port.req.payload.reg.eq(reg),
                                 port.req.payload.seq.eq(seq), port.req.payload.start.eq(start),
                                 port.req.payload.count.eq(hd)]
                    with m.If(port.req.valid & port.req.ready):
                        m.d.sync += reqd[t].eq(1)
                    m.d.comb += port.data.ready.eq(reqd[t] & ~got[t])
                with m.If(got[0] & got[1]):
                    fsm.go("HEAD", "EXP")
            with fsm.state("EXP"):
                m.d.sync += [exps[0].eq(exp_next[0]), exps[1].eq(exp_next[1]),
                             item.eq(0), row.eq(0)]
                fsm.go("EXP", "WREQ")
            with fsm.state("WREQ"):
                m.d.comb += [self.mw.req.valid.eq(1),
                             self.mw.req.payload.addr.eq(Mux(item[1], e_addr, d_addr)),
                             self.mw.req.payload.beats.eq(Mux(item[1], 1, g.rows))]
                with m.If(self.mw.req.ready):
                    fsm.go("WREQ", "WDATA")
            with fsm.state("WDATA"):
                m.d.comb += [self.mw.data.valid.eq(1),
                             self.mw.data.payload.data.eq(Mux(item[1], eword, dword)),
                             self.mw.data.payload.strb.eq(Mux(item[1], Const(3, wb) << e_off, dstrb))]
                with m.If(self.mw.data.ready):
                    with m.If(item[1] | (row == g.rows - 1)):
                        m.d.sync += [row.eq(0), item.eq(item + 1)]
                        fsm.go("WDATA", "WNEXT")
                    with m.Else():
                        m.d.sync += row.eq(row + 1)
            with fsm.state("WNEXT"):
                with m.If(item == 3):
                    fsm.go("WNEXT", "NEXT")
                with m.Else():
                    fsm.go("WNEXT", "WREQ")
            with fsm.state("NEXT"):
                m.d.comb += clear.eq(1)
                m.d.sync += base.eq(base + g.head_bytes)
                with m.If(start + hd < ins.n):
                    m.d.sync += start.eq(start + hd)
                    fsm.go("NEXT", "HEAD")
                with m.Elif(seq + 1 < nseq):
                    m.d.sync += [start.eq(0), seq.eq(seq + 1)]
                    with m.If(chunk):                # a prompt chunk: sequence 0's head blocks
                        m.d.sync += base.eq(ins.addr)
                    fsm.go("NEXT", "HEAD")
                with m.Else():
                    fsm.go("NEXT", "WAIT")
            with fsm.state("WAIT"):
                with m.If(~outstanding.any()):
                    m.d.comb += self.done.eq(1)
                    fsm.go("WAIT", "IDLE")
        return m
