"""Amaranth helpers shared by the KVAPPEND (``x_kv``) and ATTN (``x_attn``) units: the KV
layout's run-time geometry (:mod:`fpgallm.engine.kvlayout`), a one-hot sequencer, selects and head buffers in LUT-RAM."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib.memory import Memory

from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl.iface import ADDR_BITS, REG_BITS, stripe_bits


def clog2(x: int) -> int:
    return max(0, (x - 1).bit_length())


def head_rows(p: EngineParams) -> tuple[int, int]:
    """``(rows, elems)``: the stripe words a head of ``max_head_dim`` KV elements spans and
    the KV elements of one stripe word."""
    wb = stripe_bits(p) // 8
    eb = p.kv_format.bits // 8
    return max(1, -(-p.max_head_dim * eb // wb)), wb // eb


class Geometry:
    """Combinational KV layout numbers for a run-time ``head_dim`` (``hd``, a Signal):

    ``case_a`` (positions share words), ``lg_s`` (log2 stride, case a), ``stride`` (bytes),
    ``rows`` (words per position), ``head_bytes``, ``exp_bytes`` (constant)."""

    def __init__(self, m: Module, p: EngineParams, hd):
        self.wb = wb = stripe_bits(p) // 8
        self.lg_wb = lg_wb = clog2(wb)
        if wb != 1 << lg_wb:
            raise ValueError(f"stripe word of {wb} bytes is not a power of two")
        self.eb = eb = p.kv_format.bits // 8
        self.max_rows, self.elems = head_rows(p)    # rows of a head, elements of a word
        self.nl = self.max_rows * self.elems        # lanes of the flat head buffers (>= max_head_dim)
        ctx = p.max_context
        self.exp_bytes = -(-2 * ctx // wb) * wb
        vb = Signal(range(p.max_head_dim * eb + 1), name="kv_vb")
        m.d.comb += vb.eq(hd * eb)
        self.vb = vb
        self.case_a = Signal(name="kv_case_a")
        m.d.comb += self.case_a.eq(vb <= wb)
        self.lg_s = Signal(range(lg_wb + 1), name="kv_lg_s")
        for k in reversed(range(lg_wb + 1)):       # smallest 2**k >= vb
            with m.If(vb <= (1 << k)):
                m.d.comb += self.lg_s.eq(k)
        self.rows = Signal(range(self.max_rows + 1), name="kv_rows")
        m.d.comb += self.rows.eq(Mux(self.case_a, 1, (vb + wb - 1) >> lg_wb))
        self.stride = Signal(range(self.max_rows * wb + 1), name="kv_stride")
        m.d.comb += self.stride.eq(Mux(self.case_a, Const(1, 1) << self.lg_s, self.rows << lg_wb))
        self.lg_p = Signal(range(lg_wb + 1), name="kv_lg_p")   # log2 positions per word (case a)
        m.d.comb += self.lg_p.eq(Mux(self.case_a, lg_wb - self.lg_s, 0))
        data_bytes = Signal(ADDR_BITS, name="kv_data_bytes")
        m.d.comb += data_bytes.eq(((self.stride * ctx + wb - 1) >> lg_wb) << lg_wb)
        self.data_bytes = data_bytes
        self.head_bytes = Signal(ADDR_BITS, name="kv_head_bytes")
        m.d.comb += self.head_bytes.eq(self.exp_bytes + 2 * data_bytes)


def bitlen(m: Module, x, width: int, name: str) -> Signal:
    """Bit length of unsigned ``x`` (0 for 0)."""
    out = Signal(range(width + 1), name=name)
    for b in range(width):
        with m.If(x[b]):
            m.d.comb += out.eq(b + 1)
    return out


def is_(x, c: int):
    """``x == c`` written so that Verilator -Wall does not see a truncating ``!x``."""
    return ~x.any() if c == 0 else x == c


class OneHot:
    """A sequencer with one flag per state (no ``casez`` on an encoded state, which the
    Verilog backend emits incomplete).  ``with fsm.state(S):`` opens state S's logic;
    ``fsm.go(S, T)`` moves from S to T at the next clock edge."""

    def __init__(self, m: Module, names, init: str):
        self.m = m
        self.flags = {n: Signal(init=int(n == init), name=f"st_{n.lower()}") for n in names}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __getitem__(self, name):
        return self.flags[name]

    def state(self, name):
        return self.m.If(self.flags[name])

    def go(self, frm: str, to: str):
        if frm != to:
            self.m.d.sync += [self.flags[frm].eq(0), self.flags[to].eq(1)]


def select(m: Module, items, index, shape, name: str) -> Signal:
    """``items[index]`` as a Switch (an indexed view or a shift trips Verilator's WIDTHTRUNC)."""
    out = Signal(shape, name=name)
    with m.Switch(index):
        for i, it in enumerate(items):
            with m.Case(i):
                m.d.comb += out.eq(it)
        with m.Default():
            m.d.comb += out.eq(0)
    return out


def head_banks(m: Module, name: str, lanes, beat, we, row, elems: int, rows: int) -> list:
    """A head buffer of ``rows`` rows of ``elems`` 24-bit lanes as ``elems`` banks of LUT-RAM
    (bank ``j`` holds lanes ``j, j + elems, ...`` at the lane's row): a beat of
    ``len(lanes)`` elements (``elems`` a multiple of it) is written at beat index ``beat``
    when ``we``; returns the lanes of row ``row`` (read asynchronously)."""
    lv = len(lanes)
    bpr = elems // lv                        # beats per row
    out = []
    for j in range(elems):
        mem = Memory(shape=signed(REG_BITS), depth=rows, init=[])
        m.submodules[f"{name}{j}"] = mem
        wp = mem.write_port()
        rp = mem.read_port(domain="comb")
        m.d.comb += [wp.addr.eq(beat // bpr if bpr > 1 else beat), wp.data.eq(lanes[j % lv]),
                     wp.en.eq(we & ((beat % bpr) == j // lv if bpr > 1 else 1)),
                     rp.addr.eq(row)]
        out.append(rp.data)
    return out

