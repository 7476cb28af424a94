"""Tables and constants for fixed-point nonlinear functions (exp by range reduction).

Every table is built from exact decimal arithmetic (``decimal`` at 50 digits) and rounded half
up, so its contents are the same on every machine and Python version; golden models and RTL
generators both take their tables from here.

Base-2 exponential: for a fixed-point exponent ``t <= 0`` with ``F`` fraction bits,
``2**t = 2**frac(t) * 2**floor(t)``.  In two's complement the low ``F`` bits of ``t`` are
``frac(t)`` (in [0, 1)) and the high bits are ``floor(t)``, so no negation is needed.
``2**frac`` is read from a table of ``2**table_bits`` segments with linear interpolation
over the remaining ``F - table_bits`` bits.
"""

from __future__ import annotations

import decimal
from functools import lru_cache

LOG2E_BITS = 16  # fraction bits of the log2(e) constant (17-bit unsigned: fits 18x18 multipliers)


def _ctx() -> decimal.Context:
    return decimal.Context(prec=50, rounding=decimal.ROUND_HALF_EVEN)


def _round_half_up(v: decimal.Decimal) -> int:
    return int((v + decimal.Decimal("0.5")).to_integral_value(rounding=decimal.ROUND_FLOOR))


@lru_cache(maxsize=None)
def log2e_q(frac_bits: int = LOG2E_BITS) -> int:
    """``round(log2(e) * 2**frac_bits)`` (94548 for 16 bits)."""
    with decimal.localcontext(_ctx()):
        return _round_half_up(decimal.Decimal(1) / decimal.Decimal(2).ln() * (1 << frac_bits))


@lru_cache(maxsize=None)
def exp2_tables(table_bits: int, value_frac: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(base, delta)`` for ``2**f``, ``f`` in [0, 1), with ``2**table_bits`` segments.

    ``base[i] = round(2**(i / T) * 2**value_frac)`` for ``i < T``; ``delta[i] = base[i+1] -
    base[i]`` with ``base[T] = 2**(value_frac + 1)`` exactly, so interpolation is continuous
    and reaches 2.0 exactly at the end of the last segment.
    """
    if not 0 <= table_bits <= 16 or not 0 <= value_frac <= 40:
        raise ValueError(f"exp2_tables: table_bits {table_bits} / value_frac {value_frac} out of range")
    t = 1 << table_bits
    with decimal.localcontext(_ctx()):
        two = decimal.Decimal(2)
        scale = decimal.Decimal(1 << value_frac)
        full = [_round_half_up(two ** (decimal.Decimal(i) / t) * scale) for i in range(t)]
    full.append(1 << (value_frac + 1))
    base = tuple(full[:t])
    delta = tuple(full[i + 1] - full[i] for i in range(t))
    return base, delta
