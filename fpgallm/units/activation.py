"""Streaming SiLU / GELU unit: ``f(x) = relu(x) + g(|x|)`` with ``g`` from a table.

Both activations differ from ``relu`` by an even correction that decays to zero:

- SiLU: ``silu(x) = x * sigmoid(x)``, so ``g(a) = -a * sigmoid(-a)``;
- GELU, **tanh approximation** (as GPT-2 and ``gelu_pytorch_tanh`` use):
  ``gelu(x) = x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x**3)))``, so
  ``g(a) = -a/2 * (1 - tanh(sqrt(2/pi) * (a + 0.044715 a**3)))``.

``g`` is tabulated on ``[0, R)``, ``R = 2**range_log2`` (real units), at ``2**seg_log2``
equal segments, and interpolated linearly; for ``|x| >= R`` the correction saturates to 0
(``f(x) = relu(x)``; the neglected ``|g(R)|`` is 1.8e-6 for SiLU at R=16 and below 1e-30 for
GELU at R=8).  The table is the only floating-point step, done once when the Params are
built (Python ``math``), so it is deterministic.

Contract
--------
Input ``i``: ``lanes`` signed ``in_width``-bit values with ``in_frac`` fractional bits per
beat.  Output ``o``: ``lanes`` signed ``out_width``-bit values with ``out_frac`` fractional
bits.  One beat per cycle, latency :attr:`ActivationParams.latency` = 5.

Arithmetic (exactly :func:`golden`), per element, with round-half-up ``round_shift``:

- ``a = |x|``; ``sh = in_frac + range_log2 - seg_log2``; ``k = a >> sh``; ``t = a & (2**sh - 1)``
- ``gq = T[k] + round_shift((T[k+1] - T[k]) * t, sh)`` if ``a < 2**(in_frac + range_log2)``
  else 0, with ``T[k] = round_half_up(g(k * 2**(range_log2 - seg_log2)) * 2**tab_frac)``
- ``y = sat(round_shift((max(x, 0) << (tab_frac - in_frac)) + gq, tab_frac - out_frac))``

Error against float64 of the same function, over the documented input range (the whole
input format), at the defaults (Q5.10 in and out, R=16, 512 segments, 14 table fractional
bits): SiLU max 5.88e-4 (0.602 output LSB), GELU-tanh max 6.17e-4 (0.632 LSB), measured by
``tests/units/test_activation.py`` over 20 000 seeded random inputs and then all 65 536.
Output rounding alone is 0.5 LSB; the table (0.03 LSB) and the interpolation add the rest.
Against the erf form of GELU add the tanh approximation's own error (up to ~4.7e-4).
Outputs saturate only where ``f(x)`` exceeds the output range.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from fpgallm.hdl.check import check_int
from fpgallm.hdl.emit import Emitted, to_verilog
from fpgallm.hdl.fixed import hdl_saturate, round_shift, saturate
from fpgallm.hdl.pipeline import stall_pipeline


class ActivationKind(enum.Enum):
    SILU = "silu"
    GELU_TANH = "gelu_tanh"


_GELU_K = math.sqrt(2.0 / math.pi)


def correction(kind: "ActivationKind", a: float) -> float:
    """``g(a) = f(a) - relu(a)`` for ``a >= 0`` (float; table construction and error tests)."""
    if kind is ActivationKind.SILU:
        return -a / (1.0 + math.exp(a))
    return -0.5 * a * (1.0 - math.tanh(_GELU_K * (a + 0.044715 * a ** 3)))


def reference(kind: "ActivationKind", x) -> np.ndarray:
    """The float64 function (for error measurement only; not used by the hardware model)."""
    x = np.asarray(x, dtype=np.float64)
    if kind is ActivationKind.SILU:
        return x / (1.0 + np.exp(-x))
    return 0.5 * x * (1.0 + np.tanh(_GELU_K * (x + 0.044715 * x ** 3)))


@dataclass(frozen=True)
class ActivationParams:
    """Parameters of :class:`Activation`; validated on construction."""

    kind: ActivationKind = ActivationKind.SILU
    lanes: int = 4
    in_width: int = 16
    in_frac: int = 10
    out_width: int = 16
    out_frac: int = 10
    range_log2: int = 4
    seg_log2: int = 9
    tab_frac: int = 14

    def __post_init__(self):
        if not isinstance(self.kind, ActivationKind):
            raise ValueError(f"ActivationParams.kind must be an ActivationKind, got {self.kind!r}")
        for name, lo, hi in (("lanes", 1, 256), ("in_width", 2, 24), ("in_frac", 0, 22),
                             ("out_width", 2, 32), ("out_frac", 0, 30), ("range_log2", 0, 8),
                             ("seg_log2", 1, 12), ("tab_frac", 0, 30)):
            check_int("ActivationParams", name, getattr(self, name), lo, hi)
        if self.seg_log2 > self.in_frac + self.range_log2:
            raise ValueError(f"ActivationParams.seg_log2 must be <= in_frac + range_log2 = "
                             f"{self.in_frac + self.range_log2} (a segment is at least one input "
                             f"step), got {self.seg_log2}")
        if self.tab_frac < max(self.in_frac, self.out_frac):
            raise ValueError(f"ActivationParams.tab_frac must be >= max(in_frac, out_frac) = "
                             f"{max(self.in_frac, self.out_frac)}, got {self.tab_frac}")

    @property
    def seg_shift(self) -> int:
        """log2 of a segment's width in input LSBs (the interpolation fraction's bits)."""
        return self.in_frac + self.range_log2 - self.seg_log2

    @property
    def segments(self) -> int:
        return 1 << self.seg_log2

    @cached_property
    def table(self) -> np.ndarray:
        """``T[0..segments]``: ``g`` at the segment ends in ``tab_frac`` fixed point (int64)."""
        step = 2.0 ** (self.range_log2 - self.seg_log2)
        return np.array([math.floor(correction(self.kind, k * step) * 2.0 ** self.tab_frac + 0.5)
                         for k in range(self.segments + 1)], dtype=np.int64)

    @property
    def base_width(self) -> int:
        return max(2, int(max(abs(int(v)) for v in self.table)).bit_length() + 1)

    @property
    def delta_width(self) -> int:
        d = np.diff(self.table)
        return max(2, int(np.max(np.abs(d))).bit_length() + 1)

    @property
    def sum_width(self) -> int:
        """Signed width of ``relu << (tab_frac - in_frac)`` plus the correction."""
        return max(self.in_width + self.tab_frac - self.in_frac, self.base_width) + 2

    @property
    def latency(self) -> int:
        """Cycles from an accepted input beat to its output beat, with no backpressure."""
        return 5

    @property
    def throughput(self) -> int:
        """Elements per cycle."""
        return self.lanes

    def in_layout(self) -> data.ArrayLayout:
        return data.ArrayLayout(signed(self.in_width), self.lanes)

    def out_layout(self) -> data.ArrayLayout:
        return data.ArrayLayout(signed(self.out_width), self.lanes)

    def rom_layout(self) -> data.StructLayout:
        return data.StructLayout({"base": signed(self.base_width),
                                  "delta": signed(self.delta_width)})


def golden(p: ActivationParams, x) -> np.ndarray:
    """Bit-exact model: int array ``x`` (any shape, input format) -> int64 output array."""
    x = np.asarray(x, dtype=np.int64)
    lo, hi = -(1 << (p.in_width - 1)), (1 << (p.in_width - 1)) - 1
    if x.size and (x.min() < lo or x.max() > hi):
        raise ValueError(f"x must be in [{lo}, {hi}] (in_width={p.in_width})")
    a = np.abs(x)
    inside = a < (1 << (p.in_frac + p.range_log2))
    k = np.where(inside, a >> p.seg_shift, 0)
    t = a & ((1 << p.seg_shift) - 1)
    base = p.table[k]
    delta = p.table[k + 1] - base
    gq = np.where(inside, base + round_shift(delta * t, p.seg_shift), 0)
    relu = np.maximum(x, 0) << (p.tab_frac - p.in_frac)
    return saturate(round_shift(relu + gq, p.tab_frac - p.out_frac), p.out_width)


class Activation(wiring.Component):
    """The RTL of :mod:`fpgallm.units.activation` (see the module docstring for the contract)."""

    def __init__(self, params: ActivationParams):
        self.params = params
        super().__init__({
            "i": In(stream.Signature(params.in_layout())),
            "o": Out(stream.Signature(params.out_layout())),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        advance, _ = stall_pipeline(m, self.i.valid, self.i.ready, self.o.valid, self.o.ready,
                                    self.params.latency)
        tab = p.table
        init = [{"base": int(tab[k]), "delta": int(tab[k + 1] - tab[k])}
                for k in range(p.segments)]
        lim = 1 << (p.in_frac + p.range_log2)
        fsh = p.tab_frac - p.in_frac
        osh = p.tab_frac - p.out_frac
        for lane in range(p.lanes):
            x = self.i.payload[lane]
            # stage 1: magnitude, segment, fraction, range flag, relu
            a = Signal(unsigned(p.in_width), name=f"a{lane}")
            relu1 = Signal(unsigned(p.in_width), name=f"relu1_{lane}")
            with m.If(advance):
                m.d.sync += [a.eq(Mux(x < 0, -x, x)), relu1.eq(Mux(x < 0, 0, x))]
            # stage 2: registered table read (base, delta); carry t, range flag, relu
            rom = memory.Memory(shape=p.rom_layout(), depth=p.segments, init=init)
            m.submodules[f"rom{lane}"] = rom
            rd = rom.read_port(domain="sync")
            m.d.comb += [rd.addr.eq(a >> p.seg_shift), rd.en.eq(advance)]
            t2 = Signal(unsigned(max(1, p.seg_shift)), name=f"t2_{lane}")
            in2 = Signal(name=f"inside2_{lane}")
            relu2 = Signal(unsigned(p.in_width), name=f"relu2_{lane}")
            with m.If(advance):
                m.d.sync += [in2.eq(a < lim), relu2.eq(relu1)]
                if p.seg_shift:
                    m.d.sync += t2.eq(a[:p.seg_shift])
            # stage 3: interpolation product
            prod = Signal(signed(p.delta_width + p.seg_shift + 1), name=f"prod{lane}")
            base3 = Signal(signed(p.base_width), name=f"base3_{lane}")
            in3 = Signal(name=f"inside3_{lane}")
            relu3 = Signal(unsigned(p.in_width), name=f"relu3_{lane}")
            with m.If(advance):
                m.d.sync += [prod.eq(rd.data.delta * t2 if p.seg_shift else 0),
                             base3.eq(rd.data.base), in3.eq(in2), relu3.eq(relu2)]
            # stage 4: relu + correction, in tab_frac fixed point
            total = Signal(signed(p.sum_width), name=f"sum{lane}")
            if p.seg_shift:
                interp = (prod + (1 << (p.seg_shift - 1))) >> p.seg_shift
            else:
                interp = prod
            with m.If(advance):
                m.d.sync += total.eq((relu3 << fsh) + Mux(in3, base3 + interp, 0))
            # stage 5: output rounding and saturation
            with m.If(advance):
                rounded = (total + ((1 << osh) >> 1)) >> osh
                m.d.sync += self.o.payload[lane].eq(hdl_saturate(rounded, p.out_width))
        return m


def generate(params: ActivationParams, top: str = "fpgallm_activation") -> Emitted:
    """Verilog of :class:`Activation` for ``params``."""
    return to_verilog(Activation(params), top, params)
