"""Streaming elementwise unit: residual add or multiply with requantization and saturation.

Contract
--------
Input ``i``: one beat carries ``lanes`` pairs ``(a, b)`` of signed ``in_width``-bit integers
(payload layout ``{"a": array(signed(in_width), lanes), "b": ...}``).  Output ``o``: one
beat of ``lanes`` signed ``out_width``-bit integers.  Configuration ports ``mult_a``,
``mult_b`` (unsigned ``mult_width``) and ``shift`` (0..``max_shift``) hold the requantization
and must stay constant while beats are in flight.

Arithmetic (exactly :func:`golden`), per lane, with round-half-up :func:`round_shift`:

- ``ADD``: ``y = sat(round_shift(a*mult_a + b*mult_b, shift))`` (a residual add of two
  tensors with different scales: ``mult_x / 2**shift`` is the ratio of scales)
- ``MUL``: ``y = sat(round_shift(a*b*mult_a, shift))`` (``mult_b`` unused)

Latency: :attr:`ElementwiseParams.latency` = 3 cycles; throughput 1 beat (``lanes``
elements) per cycle; the only error against exact rational arithmetic is the final
rounding (<= 0.5 LSB) and saturation.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from fpgallm.hdl.check import check_int
from fpgallm.hdl.emit import Emitted, to_verilog
from fpgallm.hdl.fixed import round_shift, saturate
from fpgallm.hdl.pipeline import stall_pipeline
from fpgallm.hdl.requant import round_sat, shift_right_floor


class ElementwiseOp(enum.Enum):
    ADD = "add"
    MUL = "mul"


@dataclass(frozen=True)
class ElementwiseParams:
    """Parameters of :class:`Elementwise`; validated on construction."""

    op: ElementwiseOp = ElementwiseOp.ADD
    lanes: int = 4
    in_width: int = 8
    out_width: int = 8
    mult_width: int = 16
    max_shift: int = 31

    def __post_init__(self):
        if not isinstance(self.op, ElementwiseOp):
            raise ValueError(f"ElementwiseParams.op must be an ElementwiseOp, got {self.op!r}")
        for name, lo, hi in (("lanes", 1, 256), ("in_width", 2, 24), ("out_width", 2, 32),
                             ("mult_width", 1, 24), ("max_shift", 0, 62)):
            check_int("ElementwiseParams", name, getattr(self, name), lo, hi)
        if self.acc_width > 62:
            raise ValueError(f"ElementwiseParams: accumulator width {self.acc_width} exceeds 62 bits "
                             f"(in_width={self.in_width}, mult_width={self.mult_width})")

    @property
    def acc_width(self) -> int:
        """Signed width of the exact pre-rounding value (a*mult_a + b*mult_b, or a*b*mult_a)."""
        if self.op is ElementwiseOp.ADD:
            return self.in_width + self.mult_width + 2
        return 2 * self.in_width + self.mult_width + 1

    @property
    def latency(self) -> int:
        """Cycles from an accepted input beat to its output beat, with no backpressure."""
        return 3

    @property
    def throughput(self) -> int:
        """Elements per cycle."""
        return self.lanes

    @property
    def shift_width(self) -> int:
        return max(1, self.max_shift.bit_length())

    def in_layout(self) -> data.StructLayout:
        return data.StructLayout({
            "a": data.ArrayLayout(signed(self.in_width), self.lanes),
            "b": data.ArrayLayout(signed(self.in_width), self.lanes),
        })

    def out_layout(self) -> data.ArrayLayout:
        return data.ArrayLayout(signed(self.out_width), self.lanes)


def golden(p: ElementwiseParams, a, b, mult_a: int, mult_b: int, shift: int) -> np.ndarray:
    """Bit-exact model: ``a``, ``b`` int arrays (any shape) -> int64 array of the output."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if not 0 <= shift <= p.max_shift:
        raise ValueError(f"shift must be in [0, {p.max_shift}], got {shift}")
    for name, m in (("mult_a", mult_a), ("mult_b", mult_b)):
        if not 0 <= m < (1 << p.mult_width):
            raise ValueError(f"{name} must be in [0, {(1 << p.mult_width) - 1}], got {m}")
    if p.op is ElementwiseOp.ADD:
        acc = a * mult_a + b * mult_b
    else:
        acc = a * b * mult_a
    return saturate(round_shift(acc, shift), p.out_width)


class Elementwise(wiring.Component):
    """The RTL of :mod:`fpgallm.units.elementwise` (see the module docstring for the contract)."""

    def __init__(self, params: ElementwiseParams):
        self.params = params
        super().__init__({
            "i": In(stream.Signature(params.in_layout())),
            "o": Out(stream.Signature(params.out_layout())),
            "mult_a": In(unsigned(params.mult_width)),
            "mult_b": In(unsigned(params.mult_width)),
            "shift": In(unsigned(params.shift_width)),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        advance, _ = stall_pipeline(m, self.i.valid, self.i.ready, self.o.valid, self.o.ready, 3)
        for lane in range(p.lanes):
            a = self.i.payload.a[lane]
            b = self.i.payload.b[lane]
            prod_a = Signal(signed(p.acc_width), name=f"prod_a{lane}")
            prod_b = Signal(signed(p.acc_width), name=f"prod_b{lane}")
            floor = Signal(signed(p.acc_width + 1), name=f"floor{lane}")
            rbit = Signal(name=f"rbit{lane}")
            fl, rb = shift_right_floor(m, prod_a + prod_b, self.shift, f"sh{lane}")
            out = round_sat(m, floor, rbit, p.out_width, f"sat{lane}")
            with m.If(advance):
                if p.op is ElementwiseOp.ADD:
                    m.d.sync += [prod_a.eq(a * self.mult_a), prod_b.eq(b * self.mult_b)]
                else:
                    m.d.sync += [prod_a.eq(a * b * self.mult_a), prod_b.eq(0)]
                m.d.sync += [floor.eq(fl), rbit.eq(rb), self.o.payload[lane].eq(out)]
        return m


def generate(params: ElementwiseParams, top: str = "fpgallm_elementwise") -> Emitted:
    """Verilog of :class:`Elementwise` for ``params``."""
    return to_verilog(Elementwise(params), top, params)
