"""Systolic GEMM engine for prefill: output-stationary R x C array, INT8 activations x INT8 or
INT4 weights, exact integer accumulation.

Contract
--------
One *tile* computes ``Y[R x C] = A[R x k_len] @ B[k_len x C]`` (``k_len`` on a config port,
held constant while tiles are in flight, ``rows + pe_cols <= k_len <= max_k``).  Tiles follow
each other with no gap:

- stream ``a``: one beat per k of a tile, the R activations ``A[:, k]`` (int8, row 0 in the
  low bits); stream ``b``: one beat per k, the C weights ``B[k, :]`` (int8 or int4). A
  beat of ``a`` and one of ``b`` are taken together (one array step);
- stream ``o``: R beats per tile, beat ``r`` = ``Y[r, :]`` as C signed ``acc_width``-bit
  integers (exact: no rounding, no saturation; scales are applied outside).

Dataflow: output-stationary.  Activations enter row ``i`` delayed by ``i`` steps and move
right, weights enter PE column ``j`` delayed by ``j`` steps and move down; PE ``(i, j)``
multiplies (registered), accumulates, and at the tile's last k copies its sum to a ``done``
register.  When the bottom-right PE is done the whole R x C tile is copied into a shadow
bank that drains R beats while the next tile computes, so the array never waits for the
output unless ``o`` stalls.  With ``dsp_pack`` a PE serves two adjacent columns with one
multiplier: ``((b1 << 18) + b0) * a`` for columns 0, 1 of the pair (the two products share the activation; DSP48E2 27x18).

A job of ``M x K`` by ``K x N`` runs as ``(M/R) * (N/C)`` tiles (:func:`tile_streams`);
:meth:`GemmParams.cycles` gives its cycles from the first beat in to the last beat out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from fpgallm.hdl.check import check_int
from fpgallm.hdl.emit import Emitted, to_verilog


class GemmWeights(enum.Enum):
    INT8 = "int8"
    INT4 = "int4"

    @property
    def bits(self) -> int:
        return 8 if self is GemmWeights.INT8 else 4


@dataclass(frozen=True)
class GemmParams:
    """Parameters of :class:`Gemm`; validated on construction."""

    rows: int = 4
    cols: int = 4
    weights: GemmWeights = GemmWeights.INT8
    max_k: int = 4096
    dsp_pack: bool = False

    def __post_init__(self):
        c = "GemmParams"
        if not isinstance(self.weights, GemmWeights):
            raise ValueError(f"{c}.weights must be a GemmWeights, got {self.weights!r}")
        for name, lo, hi in (("rows", 1, 64), ("cols", 1, 64), ("max_k", 2, 1 << 20)):
            check_int(c, name, getattr(self, name), lo, hi)
        if not isinstance(self.dsp_pack, bool):
            raise ValueError(f"{c}.dsp_pack must be a bool, got {self.dsp_pack!r}")
        if self.dsp_pack and self.cols % 2:
            raise ValueError(f"{c}: dsp_pack needs an even number of cols, got {self.cols}")
        if self.max_k < self.min_k:
            raise ValueError(f"{c}: max_k {self.max_k} is below the smallest tile k {self.min_k}")

    @property
    def pe_cols(self) -> int:
        return self.cols // 2 if self.dsp_pack else self.cols

    @property
    def min_k(self) -> int:
        """Smallest ``k_len``: a PE's next sum must not land before the shadow copy."""
        return self.rows + self.pe_cols

    @property
    def acc_width(self) -> int:
        return (self.max_k * 128 * (1 << (self.weights.bits - 1))).bit_length() + 1

    @property
    def k_width(self) -> int:
        return self.max_k.bit_length()

    @property
    def latency(self) -> int:
        """Cycles after a tile's last step to its last output beat (inclusive, no stall)."""
        return 2 * self.rows + self.pe_cols

    def tiles(self, m: int, n: int) -> int:
        return (m // self.rows) * (n // self.cols)

    def cycles(self, m: int, k: int, n: int) -> int:
        """First input beat accepted to last output beat accepted, inclusive, no stalls."""
        return self.tiles(m, n) * k + self.latency

    def utilization(self, m: int, k: int, n: int, cycles: int) -> float:
        return m * k * n / (self.rows * self.cols * cycles)

    def check_shape(self, m: int, k: int, n: int) -> None:
        if m <= 0 or m % self.rows:
            raise ValueError(f"M must be a positive multiple of {self.rows}, got {m}")
        if n <= 0 or n % self.cols:
            raise ValueError(f"N must be a positive multiple of {self.cols}, got {n}")
        if not self.min_k <= k <= self.max_k:
            raise ValueError(f"K must be in [{self.min_k}, {self.max_k}], got {k}")

    def a_layout(self) -> data.ArrayLayout:
        return data.ArrayLayout(signed(8), self.rows)

    def b_layout(self) -> data.ArrayLayout:
        return data.ArrayLayout(signed(self.weights.bits), self.cols)

    def out_layout(self) -> data.ArrayLayout:
        return data.ArrayLayout(signed(self.acc_width), self.cols)


def golden(p: GemmParams, a, b) -> np.ndarray:
    """Bit-exact result ``A @ B`` (int64) with range checks of the operands."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    p.check_shape(a.shape[0], a.shape[1], b.shape[1])
    if b.shape[0] != a.shape[1]:
        raise ValueError(f"golden: A is {a.shape}, B is {b.shape}")
    if a.min() < -128 or a.max() > 127:
        raise ValueError("golden: A must be int8")
    lo, hi = -(1 << (p.weights.bits - 1)), (1 << (p.weights.bits - 1)) - 1
    if b.min() < lo or b.max() > hi:
        raise ValueError(f"golden: B must be in [{lo}, {hi}]")
    return a @ b


def tile_streams(p: GemmParams, a, b):
    """``(a_beats, b_beats, out_rows)`` of a job, tile by tile (row tiles outer).

    ``a_beats[t*K + k]`` = ``A[ti*R:(ti+1)*R, k]``, ``b_beats[t*K + k]`` = ``B[k, tj*C:...]``
    for tile ``t = ti * (N/C) + tj``; ``out_rows`` lists the expected output beats (C values).
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    y = golden(p, a, b)
    m, k = a.shape
    n = b.shape[1]
    R, C = p.rows, p.cols
    a_beats, b_beats, out = [], [], []
    for ti in range(m // R):
        for tj in range(n // C):
            for kk in range(k):
                a_beats.append(a[ti * R:(ti + 1) * R, kk])
                b_beats.append(b[kk, tj * C:(tj + 1) * C])
            out.extend(y[ti * R:(ti + 1) * R, tj * C:(tj + 1) * C])
    return a_beats, b_beats, out


class Gemm(wiring.Component):
    """The RTL of :mod:`fpgallm.units.gemm` (see the module docstring for the contract)."""

    def __init__(self, params: GemmParams):
        self.params = params
        p = params
        super().__init__({
            "a": In(stream.Signature(p.a_layout())),
            "b": In(stream.Signature(p.b_layout())),
            "o": Out(stream.Signature(p.out_layout())),
            "k_len": In(unsigned(p.k_width)),
        })

    def elaborate(self, platform):
        p = self.params
        R, C, G = p.rows, p.cols, p.pe_cols
        per = 2 if p.dsp_pack else 1
        aw = p.acc_width
        m = Module()

        count = Signal(range(R + 1))
        pending = Signal()
        can_load = Signal()
        adv = Signal()
        fire = Signal()
        m.d.comb += [
            can_load.eq(~count.any() | ((count == 1) & self.o.ready)),
            adv.eq(~pending | can_load),
            fire.eq(adv & self.a.valid & self.b.valid),
            self.a.ready.eq(adv & self.b.valid),
            self.b.ready.eq(adv & self.a.valid),
        ]
        kc = Signal(p.k_width)
        first = ~kc.any()
        last = kc == self.k_len - 1
        with m.If(fire):
            m.d.sync += kc.eq(Mux(last, 0, kc + 1))

        def delay(value, n, name):
            for d in range(n):
                r = Signal.like(value, name=f"{name}_d{d}")
                with m.If(adv):
                    m.d.sync += r.eq(value)
                value = r
            return value

        # edge skew: row i of a (with its token flags) by i steps, PE column j of b by j steps
        a_in = [[None] * G for _ in range(R)]
        b_in = [[None] * G for _ in range(R)]
        for i in range(R):
            tok = Signal(11, name=f"tok{i}")
            m.d.comb += tok.eq(Cat_(self.a.payload[i], fire, first, last))
            a_in[i][0] = delay(tok, i, f"arow{i}")
        for j in range(G):
            bv = Signal(p.weights.bits * per, name=f"bcol{j}")
            m.d.comb += bv.eq(Cat_(*[self.b.payload[j * per + e] for e in range(per)]))
            b_in[0][j] = delay(bv, j, f"bcol{j}")

        done = [[None] * C for _ in range(R)]
        for i in range(R):
            for j in range(G):
                tok, bv = a_in[i][j], b_in[i][j]
                tok_o = Signal(11, name=f"pe{i}_{j}_tok")
                b_o = Signal(len(bv), name=f"pe{i}_{j}_b")
                av = tok[:8].as_signed()
                bw = p.weights.bits
                if p.dsp_pack:
                    hi, lo = bv[bw:2 * bw].as_signed(), bv[:bw].as_signed()
                    pk = Signal(signed(bw + 19), name=f"pe{i}_{j}_pk")
                    m.d.comb += pk.eq((hi << 18) + lo)
                    prod = Signal(signed(bw + 19 + 8), name=f"pe{i}_{j}_prod")
                    mult = pk * av
                else:
                    prod = Signal(signed(bw + 8), name=f"pe{i}_{j}_prod")
                    mult = bv.as_signed() * av
                with m.If(adv):
                    m.d.sync += [tok_o.eq(tok), b_o.eq(bv), prod.eq(mult)]
                if p.dsp_pack:
                    plo = prod[:18].as_signed()
                    phi = (prod >> 18) + plo[17]
                    products = [plo, phi]  # columns 2j (low field), 2j+1 (high field)
                else:
                    products = [prod]
                v1, f1, l1 = tok_o[8], tok_o[9], tok_o[10]
                for e, pr in enumerate(products):
                    acc = Signal(signed(aw), name=f"pe{i}_{j}_acc{e}")
                    dn = Signal(signed(aw), name=f"pe{i}_{j}_done{e}")
                    s = Mux(f1, pr, acc + pr)
                    with m.If(adv & v1):
                        m.d.sync += acc.eq(s)
                        with m.If(l1):
                            m.d.sync += dn.eq(s)
                    done[i][j * per + e] = dn
                if j + 1 < G:
                    a_in[i][j + 1] = tok_o
                if i + 1 < R:
                    b_in[i + 1][j] = b_o
                if i == R - 1 and j == G - 1:
                    with m.If(adv & v1 & l1):
                        m.d.sync += pending.eq(1)

        # shadow bank: loaded from every done register, drained row by row
        shadow = [[Signal(signed(aw), name=f"sh{i}_{c}") for c in range(C)] for i in range(R)]
        take = self.o.valid & self.o.ready
        with m.If(pending & can_load):
            m.d.sync += [pending.eq(0), count.eq(R)]
            for i in range(R):
                m.d.sync += [shadow[i][c].eq(done[i][c]) for c in range(C)]
        with m.Elif(take):
            m.d.sync += count.eq(count - 1)
            for i in range(R - 1):
                m.d.sync += [shadow[i][c].eq(shadow[i + 1][c]) for c in range(C)]
        m.d.comb += self.o.valid.eq(count.any())
        for c in range(C):
            m.d.comb += self.o.payload[c].eq(shadow[0][c])
        return m


def Cat_(*args):
    from amaranth.hdl import Cat

    return Cat(*args)


def generate(params: GemmParams, top: str = "fpgallm_gemm") -> Emitted:
    """Verilog of :class:`Gemm` for ``params``."""
    return to_verilog(Gemm(params), top, params)
