"""Registered multipliers, inferred or as a device's DSP primitive with its own registers.

Contract
--------
:func:`registered_mul` ``(m, a, b, name, style, in_regs)`` returns a signal of ``a * b``
(signed, ``len(a) + len(b)`` bits) ``1 + in_regs`` cycles after ``a`` and ``b``:

- :attr:`MulStyle.INFER`: fabric registers around a ``*`` that synthesis maps onto DSPs
  (operand registers when ``in_regs``, then the product register);
- :attr:`MulStyle.ECP5`: a Lattice ECP5 ``MULT18X18D`` whose A/B input registers (when
  ``in_regs``) and output register are the pipeline registers.  Yosys maps ``*`` onto the
  bare multiplier and packs no register into it, so an inferred multiplier's path is fabric
  register -> routing -> 3.9 ns of multiplier -> routing -> fabric register; with the
  primitive's registers the multiplier is register to register inside the DSP.  Operands
  are signed, at most 18 bits.  Simulation needs :func:`sim_sources` (a behavioural model);
  synthesis uses the primitive.

Both styles compute the same values with the same latency, so a design is verified in
simulation with either and synthesized with the one its device wants.
"""

from __future__ import annotations

import enum
from pathlib import Path

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Signal, Value, signed

__all__ = ["MulStyle", "registered_mul", "sim_sources", "ECP5_MAX_BITS"]

ECP5_MAX_BITS = 18
_MODELS = Path(__file__).parent / "sim_models"


class MulStyle(enum.Enum):
    INFER = "infer"
    ECP5 = "ecp5"


def sim_sources(style: MulStyle) -> tuple[tuple[str, str], ...]:
    """Extra Verilog a simulator needs for ``style`` (file name, text)."""
    if style is MulStyle.ECP5:
        return (("MULT18X18D.v", (_MODELS / "MULT18X18D.v").read_text()),)
    return ()


def registered_mul(m: Module, a, b, name: str, style: MulStyle, in_regs: bool) -> Signal:
    """``a * b`` registered (contract in the module docstring)."""
    a, b = _signed(Value.cast(a)), _signed(Value.cast(b))
    width = len(a) + len(b)
    if style is MulStyle.INFER:
        if in_regs:
            ar = Signal(a.shape(), name=f"{name}_a", reset_less=True)
            br = Signal(b.shape(), name=f"{name}_b", reset_less=True)
            m.d.sync += [ar.eq(a), br.eq(b)]
            a, b = ar, br
        out = Signal(signed(width), name=f"{name}_pp", reset_less=True)
        m.d.sync += out.eq(a * b)
        return out
    if style is not MulStyle.ECP5:
        raise ValueError(f"registered_mul: style must be a MulStyle, got {style!r}")
    for op, v in (("a", a), ("b", b)):
        if len(v) > ECP5_MAX_BITS:
            raise ValueError(f"registered_mul {name}: operand {op} is {len(v)} bits, "
                             f"MULT18X18D takes at most {ECP5_MAX_BITS} signed")
    ax = Signal(signed(ECP5_MAX_BITS), name=f"{name}_ax")
    bx = Signal(signed(ECP5_MAX_BITS), name=f"{name}_bx")
    p = Signal(2 * ECP5_MAX_BITS, name=f"{name}_pp")
    out = Signal(signed(width), name=f"{name}_p")
    m.d.comb += [ax.eq(a), bx.eq(b), out.eq(p[:width].as_signed())]
    reg = "CLK0" if in_regs else "NONE"
    ports = {f"i_A{i}": ax[i] for i in range(ECP5_MAX_BITS)}
    ports.update({f"i_B{i}": bx[i] for i in range(ECP5_MAX_BITS)})
    ports.update({f"i_C{i}": Const(0, 1) for i in range(ECP5_MAX_BITS)})
    ports.update({f"o_P{i}": p[i] for i in range(2 * ECP5_MAX_BITS)})
    m.submodules[f"{name}_dsp"] = Instance(
        "MULT18X18D",
        p_REG_INPUTA_CLK=reg, p_REG_INPUTB_CLK=reg, p_REG_OUTPUT_CLK="CLK0", p_GSR="DISABLED",
        i_SIGNEDA=Const(1, 1), i_SIGNEDB=Const(1, 1), i_SOURCEA=Const(0, 1), i_SOURCEB=Const(0, 1),
        i_CLK0=ClockSignal("sync"), i_CE0=Const(1, 1), i_RST0=Const(0, 1), **ports)
    return out


def _signed(v: Value) -> Value:
    """``v`` as a signed value (unsigned values gain a zero sign bit)."""
    return v if v.shape().signed else Cat(v, Const(0, 1)).as_signed()
