"""Streaming argmax: the index and value of the largest logit of a vector (greedy sampling).

Contract
--------
Input ``i``: one beat carries ``lanes`` signed ``in_width``-bit logits (payload layout
``{"data": array(signed(in_width), lanes), "n": unsigned, "last": 1}``).  A vector is the
sequence of beats up to and including the one with ``last`` set; its length is given at run
time by where ``last`` falls, from 1 to ``max_length`` elements.  ``n`` (1..``lanes``) is the
number of valid lanes of a beat, lanes ``0..n-1``; it must equal ``lanes`` on every beat but
the last one (a length that is not a multiple of ``lanes`` ends with a partial beat).

Output ``o``: one beat per vector, ``{"index": unsigned(index_width), "value":
signed(in_width)}``: the position of the maximum within the vector (0-based) and its value.
Ties go to the lowest index.

Arithmetic (exactly :func:`golden`): integer comparison only, so the result is exact: there is
no error against the float ``numpy.argmax`` of the same integers (worst-case error 0).

Hardware: the beat is registered, its valid lanes are reduced by a pipelined comparison tree
(one level per cycle, the left/lower-index operand wins ties), and a running (value, index)
register takes a beat's winner only when it is strictly greater.  Vectors follow each other
back to back.  Timing (no backpressure): :attr:`ArgmaxParams.latency` = ``2 +
ceil(log2(lanes))`` cycles from the acceptance of a vector's last beat to its output beat;
:attr:`ArgmaxParams.throughput` = ``lanes`` elements per cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from fpgallm.hdl.check import check_int
from fpgallm.hdl.emit import Emitted, to_verilog


@dataclass(frozen=True)
class ArgmaxParams:
    """Parameters of :class:`Argmax`; validated on construction."""

    lanes: int = 4
    in_width: int = 16
    max_length: int = 65536

    def __post_init__(self):
        for name, lo, hi in (("lanes", 1, 256), ("in_width", 2, 48), ("max_length", 1, 1 << 30)):
            check_int("ArgmaxParams", name, getattr(self, name), lo, hi)

    @property
    def levels(self) -> int:
        """Levels of the comparison tree over the lanes of a beat."""
        return (self.lanes - 1).bit_length()

    @property
    def index_width(self) -> int:
        return max(1, (self.max_length - 1).bit_length())

    @property
    def n_width(self) -> int:
        return self.lanes.bit_length()

    @property
    def latency(self) -> int:
        """Cycles from the acceptance of a vector's last beat to its output beat (no stalls)."""
        return 2 + self.levels

    @property
    def throughput(self) -> int:
        """Elements per cycle (one beat per cycle, vectors back to back)."""
        return self.lanes

    def in_layout(self) -> data.StructLayout:
        return data.StructLayout({
            "data": data.ArrayLayout(signed(self.in_width), self.lanes),
            "n": unsigned(self.n_width),
            "last": 1,
        })

    def out_layout(self) -> data.StructLayout:
        return data.StructLayout({"index": unsigned(self.index_width), "value": signed(self.in_width)})


def check_vector(p, x, what: str = "x") -> np.ndarray:
    """``x`` as a 1-D int64 array of a legal length and range for ``p`` (in_width, max_length)."""
    x = np.asarray(x, dtype=np.int64)
    if x.ndim != 1 or not 1 <= x.size <= p.max_length:
        raise ValueError(f"{what} must be a 1-D vector of length 1..{p.max_length}, got shape {x.shape}")
    lo, hi = -(1 << (p.in_width - 1)), (1 << (p.in_width - 1)) - 1
    if x.min() < lo or x.max() > hi:
        raise ValueError(f"{what} values must be in [{lo}, {hi}] (in_width={p.in_width})")
    return x


def golden(p: ArgmaxParams, x) -> tuple[int, int]:
    """Bit-exact model: ``(index, value)`` of the first maximum of the integer vector ``x``."""
    x = check_vector(p, x)
    k = int(np.argmax(x))  # numpy returns the first occurrence of the maximum
    return k, int(x[k])


class Argmax(wiring.Component):
    """The RTL of :mod:`fpgallm.units.argmax` (see the module docstring for the contract)."""

    def __init__(self, params: ArgmaxParams):
        self.params = params
        super().__init__({
            "i": In(stream.Signature(params.in_layout())),
            "o": Out(stream.Signature(params.out_layout())),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        iw = p.index_width
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]

        # element index of lane 0 of the next input beat
        base = Signal(iw)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += base.eq(Mux(self.i.payload.last, 0, base + p.lanes))

        # stage 0: registered beat as (value, index, valid) per lane
        vals = [Signal(signed(p.in_width), name=f"s0_val{k}") for k in range(p.lanes)]
        idxs = [Signal(iw, name=f"s0_idx{k}") for k in range(p.lanes)]
        oks = [Signal(name=f"s0_ok{k}") for k in range(p.lanes)]
        valid = Signal(name="s0_valid")
        last = Signal(name="s0_last")
        with m.If(advance):
            m.d.sync += [valid.eq(self.i.valid), last.eq(self.i.payload.last)]
            for k in range(p.lanes):
                m.d.sync += [vals[k].eq(self.i.payload.data[k]),
                             idxs[k].eq((base + k)[:iw]),
                             oks[k].eq(self.i.payload.n > k)]

        # comparison tree: one level per cycle, the left (lower index) operand wins ties
        level = 0
        while len(vals) > 1:
            level += 1
            nv, ni, no = [], [], []
            for j in range(0, len(vals), 2):
                if j + 1 == len(vals):
                    a_v, a_i, a_o = vals[j], idxs[j], oks[j]
                    v = Signal(signed(p.in_width), name=f"s{level}_val{j // 2}")
                    ix = Signal(iw, name=f"s{level}_idx{j // 2}")
                    ok = Signal(name=f"s{level}_ok{j // 2}")
                    with m.If(advance):
                        m.d.sync += [v.eq(a_v), ix.eq(a_i), ok.eq(a_o)]
                else:
                    lv, li, lo = vals[j], idxs[j], oks[j]
                    rv, ri, ro = vals[j + 1], idxs[j + 1], oks[j + 1]
                    take_r = ro & (~lo | (rv > lv))
                    v = Signal(signed(p.in_width), name=f"s{level}_val{j // 2}")
                    ix = Signal(iw, name=f"s{level}_idx{j // 2}")
                    ok = Signal(name=f"s{level}_ok{j // 2}")
                    with m.If(advance):
                        m.d.sync += [v.eq(Mux(take_r, rv, lv)), ix.eq(Mux(take_r, ri, li)),
                                     ok.eq(lo | ro)]
                nv.append(v)
                ni.append(ix)
                no.append(ok)
            nvalid = Signal(name=f"s{level}_valid")
            nlast = Signal(name=f"s{level}_last")
            with m.If(advance):
                m.d.sync += [nvalid.eq(valid), nlast.eq(last)]
            vals, idxs, oks, valid, last = nv, ni, no, nvalid, nlast

        # running best over the beats of a vector; the output register is the best itself
        best_v = Signal(signed(p.in_width))
        best_i = Signal(iw)
        first = Signal(init=1)  # the next beat to arrive starts a new vector
        out_valid = Signal()
        take = first | (vals[0] > best_v)
        with m.If(advance):
            m.d.sync += out_valid.eq(valid & last)
            with m.If(valid):
                m.d.sync += first.eq(last)
                with m.If(take):
                    m.d.sync += [best_v.eq(vals[0]), best_i.eq(idxs[0])]
        m.d.comb += [self.o.valid.eq(out_valid), self.o.payload.value.eq(best_v),
                     self.o.payload.index.eq(best_i)]
        return m


def generate(params: ArgmaxParams, top: str = "fpgallm_argmax") -> Emitted:
    """Verilog of :class:`Argmax` for ``params``."""
    return to_verilog(Argmax(params), top, params)
