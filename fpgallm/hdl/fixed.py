"""Fixed-point primitives, defined once for the golden models (NumPy) and the RTL (Amaranth).

Rounding everywhere in fpgallm is *round half up* on an arithmetic right shift:
``round_shift(x, s) = floor((x + 2**(s-1)) / 2**s)`` for ``s > 0`` and ``x`` for ``s == 0``.
Saturation clamps to the two's-complement range of the target width.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Const, Mux, Signal, Value, signed, unsigned


def smin(width: int) -> int:
    return -(1 << (width - 1))


def smax(width: int) -> int:
    return (1 << (width - 1)) - 1


def round_shift(x, shift):
    """Round-half-up arithmetic right shift of int64 array ``x`` by ``shift`` (scalar or array)."""
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    bias = np.where(shift > 0, np.left_shift(np.int64(1), np.maximum(shift - 1, 0)), 0)
    return np.right_shift(x + bias, shift)


def saturate(x, width: int, is_signed: bool = True):
    """Clamp int64 array ``x`` to a ``width``-bit signed (or unsigned) range."""
    x = np.asarray(x, dtype=np.int64)
    if is_signed:
        return np.clip(x, smin(width), smax(width))
    return np.clip(x, 0, (1 << width) - 1)


# --- RTL side -------------------------------------------------------------------------


def hdl_round_shift(x: Value, shift: Value, max_shift: int) -> Value:
    """Amaranth expression equal to :func:`round_shift` for ``0 <= shift <= max_shift``.

    ``x`` must be signed; the result keeps the (one bit wider) signed shape of ``x + bias``.
    """
    x = Value.cast(x)
    bias = (Const(1, unsigned(max_shift + 1)) << shift) >> 1  # 2**(shift-1), 0 when shift == 0
    return (x + bias) >> shift


def hdl_saturate(x: Value, width: int) -> Value:
    """Amaranth expression clamping signed ``x`` to ``width`` bits (two's complement)."""
    x = Value.cast(x)
    lo, hi = smin(width), smax(width)
    return Mux(x > hi, Const(hi, signed(width)),
               Mux(x < lo, Const(lo, signed(width)), x[:width].as_signed()))


def hdl_saturate_staged(m, x: Value, width: int, name: str) -> Signal:
    """:func:`hdl_saturate` of ``x`` in two registered stages, for timing: a flag "fits in
    ``width`` bits" (the bits from ``width - 1`` up all equal the sign), the sign and the low
    bits are registered, then the select is.  Returns the result register (2 cycles); the
    registers have no reset (a datapath value, qualified by the caller's valid bit)."""
    x = Value.cast(x)
    fits = Signal(name=f"{name}_fit", reset_less=True)
    low = Signal(signed(width), name=f"{name}_lo", reset_less=True)
    neg = Signal(name=f"{name}_neg", reset_less=True)
    out = Signal(signed(width), name=name, reset_less=True)
    top = x[width - 1:]
    m.d.sync += [fits.eq(top.all() | ~top.any()), low.eq(x[:width]), neg.eq(x[-1]),
                 out.eq(Mux(fits, low, Mux(neg, smin(width), smax(width))))]
    return out



@dataclass(frozen=True)
class FixedFormat:
    """A signed fixed-point format: ``width`` bits of which ``frac`` are fractional.

    The integer ``q`` represents ``q / 2**frac``.
    """

    width: int
    frac: int

    def __post_init__(self):
        if not isinstance(self.width, int) or not 2 <= self.width <= 62:
            raise ValueError(f"FixedFormat.width must be an integer in [2, 62], got {self.width!r}")
        if not isinstance(self.frac, int) or not -64 <= self.frac <= 64:
            raise ValueError(f"FixedFormat.frac must be an integer in [-64, 64], got {self.frac!r}")

    @property
    def min_int(self) -> int:
        return smin(self.width)

    @property
    def max_int(self) -> int:
        return smax(self.width)

    @property
    def lsb(self) -> float:
        return 2.0 ** -self.frac

    def to_float(self, q):
        return np.asarray(q, dtype=np.float64) * self.lsb

    def from_float(self, x):
        """Round half up to the nearest representable value, saturating."""
        q = np.floor(np.asarray(x, dtype=np.float64) * (2.0 ** self.frac) + 0.5)
        return saturate(np.clip(q, -2.0**62, 2.0**62).astype(np.int64), self.width)

    def shape(self):
        return signed(self.width)
