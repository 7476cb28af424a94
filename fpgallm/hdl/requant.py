"""Requantizing shifts by a run-time amount, built small: ``saturate(round_shift(x, r))``,
``saturate(x << l)`` and ``golden.shift_to(x, sh)`` (both directions by a signed amount).

Written directly (``(x + bias) >> r`` into a comparator, ``x << l`` into a comparator) these
are a shifter as wide as the *unsaturated* result plus two full-width comparisons: 1.7-2.5 k
ECP5 LUT4 for one 32 -> 24-bit ``shift_to``, and the engine's vector units have several per
lane.  Here each direction is one shifter as wide as what survives saturation, and
saturation is decided from a few bits:

- *right*, ``round_shift(x, r) = floor(x / 2**r) + x[r - 1]``: ``x`` with a zero bit below
  is shifted right by ``r`` once (``wx + 1`` bits, ``r`` capped at ``wx``, where the result
  is 0 for every ``x``); its lowest bit is the rounding bit.  The result fits ``width`` bits
  if the shifted value's bits from ``width - 1`` up all equal its sign, and adding the
  rounding bit overflows only at the top of the range.
- *left*, ``x << l`` (``l`` capped at ``width - 1``; any larger shift saturates the same
  values): fits if ``x`` needs at most ``width - l`` bits, from a priority encoder over
  ``x ^ (x >> 1)``; the result's low ``width`` bits come from a ``width``-bit shifter.

Every function here is combinational (no added latency; statements go to ``m.d.comb``, so
call them outside ``m.If`` blocks) and equals its golden counterpart
for every input (``tests/hdl/test_requant.py`` checks all shift amounts on random and edge
values).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned

from fpgallm.hdl.fixed import smax, smin


def _clamp_u(m: Module, amount, hi: int, name: str) -> Signal:
    """``min(amount, hi)`` for a non-negative ``amount`` as a ``range(hi + 1)`` signal."""
    out = Signal(range(hi + 1), name=name)
    amount = Value.cast(amount)
    if (1 << len(amount)) - 1 <= hi and not amount.shape().signed:
        m.d.comb += out.eq(amount)
    else:
        m.d.comb += out.eq(Mux(amount > hi, hi, amount))
    return out


def _bits_needed(m: Module, x, name: str) -> Signal:
    """Number of bits above the sign that signed ``x`` needs: ``n`` such that
    ``-2**n <= x < 2**n`` (0 for 0 and -1)."""
    wx = len(x)
    out = Signal(range(wx), name=name)
    if wx < 2:
        return out
    t = Signal(wx - 1, name=f"{name}_t")
    m.d.comb += t.eq(x[:wx - 1] ^ x[1:])
    for b in range(wx - 1):
        with m.If(t[b]):
            m.d.comb += out.eq(b + 1)
    return out


def shift_right_floor(m: Module, x, r, name: str) -> tuple[Signal, Signal]:
    """``(floor(x / 2**r), rounding bit)`` for signed ``x`` and a run-time ``r >= 0`` (any
    unsigned value): one arithmetic shifter of ``len(x) + 1`` bits.  The rounding bit is
    ``x``'s bit ``r - 1`` (0 for ``r = 0``), so ``round_shift(x, r)`` is their sum."""
    x = Value.cast(x).as_signed()
    wx = len(x)
    rc = _clamp_u(m, r, wx, f"{name}_r")
    y2 = Signal(signed(wx + 1), name=f"{name}_y2")
    m.d.comb += y2.eq(Cat(Const(0, 1), x).as_signed() >> rc)
    y = Signal(signed(wx), name=f"{name}_fl")
    rb = Signal(name=f"{name}_rb")
    m.d.comb += [y.eq(y2[1:]), rb.eq(y2[0])]
    return y, rb


def round_sat(m: Module, y, rb, width: int, name: str) -> Signal:
    """``saturate(y + rb, width)`` for signed ``y`` and a bit ``rb``: the second half of
    :func:`shift_right_sat`, which a caller may register apart from the first."""
    y = Value.cast(y).as_signed()
    wx = len(y)
    out = Signal(signed(width), name=name)
    if wx + 1 <= width:                       # y + 1 always fits
        m.d.comb += out.eq(y + rb)
        return out
    hi = y[width - 1:]
    z = Signal(signed(width + 1), name=f"{name}_z")
    m.d.comb += z.eq(y[:width].as_signed() + rb)
    m.d.comb += out.eq(Mux(hi.all() | ~hi.any(),
                           Mux(z[width - 1] & ~z[width], smax(width), z[:width]),
                           Mux(y[-1], smin(width), smax(width))))
    return out


def shift_right_sat(m: Module, x, r, width: int, name: str) -> Signal:
    """``saturate(round_shift(x, r), width)`` (round half up) for signed ``x`` and a run-time
    ``r >= 0`` (any unsigned value; shifts beyond ``len(x)`` give 0)."""
    y, rb = shift_right_floor(m, x, r, name)
    return round_sat(m, y, rb, width, name)


def shift_left_sat(m: Module, x, l, width: int, name: str) -> Signal:
    """``saturate(x << l, width)`` for signed ``x`` and a run-time ``l >= 0`` (any unsigned
    value)."""
    x = Value.cast(x).as_signed()
    wx = len(x)
    lc = _clamp_u(m, l, width - 1, f"{name}_l")
    xe = Signal(signed(max(wx, width)), name=f"{name}_xe")
    m.d.comb += xe.eq(x)
    low = Signal(width, name=f"{name}_low")
    m.d.comb += low.eq(xe[:width] << lc)
    nb = _bits_needed(m, x, f"{name}_nb")
    out = Signal(signed(width), name=name)
    m.d.comb += out.eq(Mux(nb + lc < width, low.as_signed(),
                           Mux(x[-1], smin(width), smax(width))))
    return out


def shift_to(m: Module, x, sh, width: int, name: str) -> Signal:
    """``golden.shift_to(x, sh, width)``: ``x * 2**sh`` rounded half up (right shifts) and
    saturated to ``width`` bits, for signed ``x`` and a signed run-time ``sh``."""
    sh = Value.cast(sh)
    if not sh.shape().signed:
        return shift_left_sat(m, x, sh, width, name)
    neg = Signal(name=f"{name}_neg")
    m.d.comb += neg.eq(sh < 0)
    mag = Signal(unsigned(len(sh)), name=f"{name}_mag")
    m.d.comb += mag.eq(Mux(neg, -sh, sh))
    right = shift_right_sat(m, x, mag, width, f"{name}_rt")
    left = shift_left_sat(m, x, mag, width, f"{name}_lf")
    out = Signal(signed(width), name=name)
    m.d.comb += out.eq(Mux(neg, right, left))
    return out
