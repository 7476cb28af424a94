"""The design a project wraps: generated Verilog plus a description of its ports.

The project writer does not care which generator produced the RTL.  An
:class:`EngineDesign` carries the Verilog text, its top module, its parameters, its
interfaces (valid/ready streams and scalar ports of a unit; the AXI4 masters and AXI4-Lite
registers of the decode engine), a resource need for the fit check and extra files (the
engine's memory images).

:func:`elementwise_design` is the bring-up design; :mod:`fpgallm.project.choose` picks
it or the decode engine (:mod:`fpgallm.project.engine_design`, built on this module).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from typing import Any

from fpgallm.boards import Board
from fpgallm.errors import UserError
from fpgallm.hdl.emit import Emitted, params_dict
from fpgallm.units.elementwise import ElementwiseOp, ElementwiseParams
from fpgallm.units.elementwise import generate as generate_elementwise


@dataclass(frozen=True)
class Port:
    name: str
    direction: str          # "in" | "out" (seen from the design)
    width: int


@dataclass(frozen=True)
class Stream:
    """A valid/ready stream of the design: ``<name>__valid``, ``__ready``, ``__payload``."""

    name: str
    direction: str          # "in": the design consumes it; "out": the design produces it
    width: int              # payload bits

    @property
    def axis_bytes(self) -> int:
        """AXI4-Stream TDATA is a whole number of bytes."""
        return max(1, math.ceil(self.width / 8))


@dataclass(frozen=True)
class EngineDesign:
    name: str                              # e.g. "elementwise"
    generator: str                         # Python path of the generator
    top: str                               # Verilog module name
    verilog: str
    params: dict[str, Any]
    streams: tuple[Stream, ...]
    scalars: tuple[Port, ...]
    need: dict[str, int]                   # rough resource need (lut, ff, dsp, bram, uram)
    need_basis: str                        # how ``need`` was obtained, for messages
    clock: str = "clk"
    reset: str = "rst"                     # synchronous, active high (Amaranth)
    stand_in: bool = True                  # the elementwise bring-up design, not the engine
    axi_masters: tuple[str, ...] = field(default=())   # the engine's AXI4 masters (axi0, ...)
    ports: tuple[Port, ...] = field(default=())        # every port of ``top`` (the engine's)
    artifacts: dict = field(default_factory=dict)      # extra files: path -> bytes or text
    engine: dict | None = None                         # the engine's model, context, image

    @property
    def rtl_file(self) -> str:
        return f"{self.top}.v"


_DECL = re.compile(r"^\s*(input|output)\s+(?:(?:wire|reg|signed)\s+)*(?:\[(\d+):(\d+)\]\s+)?([A-Za-z_][\w$]*)\s*;")


def ports_of(verilog: str, top: str) -> list[Port]:
    """The ports of module ``top`` in ``verilog`` (Amaranth's non-ANSI style declarations)."""
    m = re.search(rf"^module\s+{re.escape(top)}\s*\(", verilog, re.M)
    if not m:
        raise ValueError(f"module {top!r} not found in the Verilog")
    end = verilog.find("endmodule", m.end())
    ports = []
    for line in verilog[m.end():end].splitlines():
        d = _DECL.match(line)
        if d:
            width = int(d.group(2)) - int(d.group(3)) + 1 if d.group(2) else 1
            ports.append(Port(d.group(4), "in" if d.group(1) == "input" else "out", width))
    return ports


def design_from_emitted(emitted: Emitted, *, name: str, generator: str, params: Any,
                        need: dict[str, int], need_basis: str, stand_in: bool = True) -> EngineDesign:
    """Describe an Amaranth-emitted component: group ``X__valid/X__ready/X__payload`` into streams."""
    ports = {p.name: p for p in ports_of(emitted.text, emitted.top)}
    streams, used = [], {"clk", "rst"}
    for pname, p in sorted(ports.items()):
        if pname.endswith("__payload"):
            base = pname[: -len("__payload")]
            if f"{base}__valid" in ports and f"{base}__ready" in ports:
                streams.append(Stream(base, p.direction, p.width))
                used |= {pname, f"{base}__valid", f"{base}__ready"}
    scalars = [p for n, p in ports.items() if n not in used]
    if "clk" not in ports or "rst" not in ports:
        raise ValueError(f"{emitted.top}: expected clk and rst ports")
    return EngineDesign(
        name=name, generator=generator, top=emitted.top, verilog=emitted.text,
        params=params_dict(params), streams=tuple(sorted(streams, key=lambda s: (s.direction, s.name))),
        scalars=tuple(scalars), need=dict(need), need_basis=need_basis, stand_in=stand_in)


# --- the stand-in design: the elementwise unit ---------------------------------------------

# Multipliers per lane: ADD computes a*mult_a and b*mult_b; MUL computes a*b then *mult_a.
_MULTS_PER_LANE = 2


def elementwise_need(lanes: int, in_width: int, mult_width: int, out_width: int) -> dict[str, int]:
    """A rough need of the elementwise unit plus the board top around it (fit check only)."""
    acc = in_width + mult_width + 2
    return {
        "lut": lanes * 20 * acc + 150,   # variable-shift rounding dominates (ECP5 synthesis: ~550 LUT4 per lane)
        "ff": lanes * (3 * acc + out_width + 2 * in_width) + 160,
        "dsp": lanes * _MULTS_PER_LANE,
        "bram": 0,
        "uram": 0,
    }


def default_lanes(board: Board) -> int:
    """Lanes that use at most half the board's DSPs, between 1 and 8."""
    return max(1, min(8, board.available["dsp"] // (2 * _MULTS_PER_LANE)))


@functools.lru_cache(maxsize=16)
def _emit_elementwise(params) -> Emitted:
    return generate_elementwise(params)


def elementwise_design(board: Board, lanes: int | None = None, op: str = "add") -> EngineDesign:
    lanes = default_lanes(board) if lanes is None else lanes
    try:
        params = ElementwiseParams(op=ElementwiseOp(op), lanes=lanes)
    except ValueError as exc:
        raise UserError(f"--lanes/--op: {exc}") from None
    emitted = _emit_elementwise(params)
    need = elementwise_need(params.lanes, params.in_width, params.mult_width, params.out_width)
    return design_from_emitted(
        emitted, name="elementwise", generator="fpgallm.units.elementwise", params=params,
        need=need, need_basis=f"{lanes} lanes x {_MULTS_PER_LANE} multipliers (rough model)")
