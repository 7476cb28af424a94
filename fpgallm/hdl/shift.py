"""Shifts by a run-time amount that takes only a few values, as multiplexers.

A variable shift (``value >> amount``) of a stripe-wide word is a barrel shifter of
``width x log2(width)`` multiplexers, and Amaranth's netlist checker walks every input bit
for every output bit of it (``width**2`` edges: 67 M for one 4096-bit shift, a minute of
``fpgallm generate`` for an HBM board).  Where the amount is always ``idx * step`` for an
``idx`` in ``range(cases)``, :func:`step_shift` builds a ``cases``-input multiplexer of
constant slices instead: the same values for those amounts, 0 for any other ``idx``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal


def step_shift(m: Module, value, idx, step: int, cases: int, width: int, name: str,
               left: bool = False) -> Signal:
    """``(value >> idx * step)`` (``left``: ``value << idx * step``) truncated to ``width``
    bits, for ``idx`` in ``range(cases)``; 0 for other ``idx``."""
    if step < 1 or cases < 1 or width < 1:
        raise ValueError(f"step_shift {name}: step, cases and width must be >= 1, "
                         f"got {step}, {cases}, {width}")
    out = Signal(width, name=name)
    n = len(value)
    with m.Switch(idx):
        for i in range(cases):
            with m.Case(i):
                sh = i * step
                if left:
                    v = Cat(Const(0, sh), value) if sh else value
                    m.d.comb += out.eq(v[:width] if len(v) > width else v)
                elif sh < n:
                    v = value[sh:]
                    m.d.comb += out.eq(v[:width] if len(v) > width else v)
                else:
                    m.d.comb += out.eq(0)
        with m.Default():
            m.d.comb += out.eq(0)
    return out
