"""Amaranth helpers shared by the KVAPPEND (``x_kv``) and ATTN (``x_attn``) units: the KV
layout's run-time geometry (:mod:`fpgallm.engine.kvlayout`) and fixed-point shifts."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned

from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl.iface import ADDR_BITS, stripe_bits
from fpgallm.hdl.fixed import smax, smin


def clog2(x: int) -> int:
    return max(0, (x - 1).bit_length())


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
        self.elems = wb // eb                       # elements of a stripe word
        self.max_rows = max(1, -(-p.max_head_dim * eb // wb))
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


def shift_to(m: Module, x, sh, width: int, name: str, max_left: int | None = None) -> Signal:
    """``golden.shift_to``: ``x * 2**sh`` rounded half up (right shifts) and saturated to
    ``width`` bits; ``sh`` is a signed run-time shift."""
    x_len = len(x)
    max_right = x_len + 1          # any larger right shift also gives 0
    if max_left is None:
        max_left = width
    out = Signal(signed(width), name=name)
    lo, hi = smin(width), smax(width)
    # left: clip to +-2**(width-1), shift by min(sh, width) (any larger shift saturates too)
    xc = Signal(signed(width + 1), name=f"{name}_clip")
    m.d.comb += xc.eq(Mux(x > (1 << (width - 1)), 1 << (width - 1),
                          Mux(x < -(1 << (width - 1)), -(1 << (width - 1)), x)))
    la = Signal(range(max_left + 1), name=f"{name}_la")
    m.d.comb += la.eq(Mux(sh > max_left, max_left, sh))
    left = Signal(signed(2 * width + max_left + 1), name=f"{name}_l")
    m.d.comb += left.eq(xc << la)
    ra = Signal(range(max_right + 1), name=f"{name}_ra")
    m.d.comb += ra.eq(Mux(-sh > max_right, max_right, -sh))
    bias = (Const(1, unsigned(max_right + 1)) << ra) >> 1
    right = Signal(signed(x_len + 2), name=f"{name}_r")
    m.d.comb += right.eq((x + bias) >> ra)
    v = Signal(signed(max(len(left), len(right))), name=f"{name}_v")
    m.d.comb += v.eq(Mux(sh >= 0, left, right))
    m.d.comb += out.eq(Mux(v > hi, hi, Mux(v < lo, lo, v)))
    return out


def sat(x, width: int):
    lo, hi = smin(width), smax(width)
    return Mux(x > hi, Const(hi, signed(width)), Mux(x < lo, Const(lo, signed(width)), x[:width].as_signed()))


def round_shift(x, sh, max_shift: int):
    bias = (Const(1, unsigned(max_shift + 1)) << sh) >> 1
    return (x + bias) >> sh


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
