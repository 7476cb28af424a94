"""A stall pipeline for ``amaranth.lib.stream`` units.

:func:`stall_pipeline` registers ``depth`` stages between an input and an output stream.
All stages advance together when the output is empty or accepted, so the unit takes one
beat per cycle with latency ``depth`` cycles; ``in.ready`` depends combinationally on
``out.ready``.  The caller registers its stage data under ``m.If(advance)``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal


def stall_pipeline(m: Module, i_valid, i_ready, o_valid, o_ready, depth: int,
                   name: str = "stage") -> tuple[Signal, list[Signal]]:
    """Wire the valid chain; return ``(advance, stage_valids)``."""
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    advance = Signal(name=f"{name}_advance")
    valids = [Signal(name=f"{name}{k}_valid") for k in range(depth)]
    m.d.comb += [
        advance.eq(~o_valid | o_ready),
        i_ready.eq(advance),
        o_valid.eq(valids[-1]),
    ]
    with m.If(advance):
        m.d.sync += valids[0].eq(i_valid)
        for k in range(1, depth):
            m.d.sync += valids[k].eq(valids[k - 1])
    return advance, valids
