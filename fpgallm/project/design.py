"""The design a project wraps: generated Verilog plus a description of its ports.

The project writer does not care which generator produced the RTL.  An
:class:`EngineDesign` carries the Verilog text, its top module, its parameters, its
interfaces (valid/ready streams and scalar ports of a unit; the AXI4 masters and AXI4-Lite
registers of the decode engine), a resource need for the fit check and extra files (the
engine's memory images).

:func:`default_design` picks the decode engine for the model when the board can hold it
(:mod:`fpgallm.project.engine_design`) and otherwise the elementwise unit as a bring-up
design (``--design`` chooses explicitly).
"""

from __future__ import annotations

import enum
import functools
import math
import re
from dataclasses import dataclass, field
from typing import Any

from fpgallm.boards import Board
from fpgallm.errors import UserError
from fpgallm.hdl.emit import Emitted, params_dict


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
    from fpgallm.units.elementwise import generate

    return generate(params)


def elementwise_design(board: Board, lanes: int | None = None, op: str = "add") -> EngineDesign:
    from fpgallm.units.elementwise import ElementwiseOp, ElementwiseParams

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


class DesignChoice(str, enum.Enum):
    """``fpgallm generate --design``."""

    AUTO = "auto"                  # the engine when the board can hold it, else ELEMENTWISE
    ENGINE = "engine"              # the decode engine for the model (exit 2 when it does not fit)
    ELEMENTWISE = "elementwise"    # the bring-up design: one unit, no off-chip memory


def default_design(board: Board, knobs: dict[str, Any], model: str | None = None
                   ) -> tuple[EngineDesign, str | None]:
    """The design a project wraps and, when AUTO fell back to the bring-up design, why.

    AUTO: the decode engine for ``model`` sized for ``board``
    (:func:`fpgallm.project.engine_design.engine_project_design`); when the board cannot
    hold the engine (:class:`~fpgallm.estimate.engine_plan.NoEngineError`: too few LUTs, no
    writable off-chip memory), the elementwise unit as a bring-up design (board top,
    constraints and toolchain flow checked end to end), with the reason.
    """
    from fpgallm.project.engine_design import EngineKnobs, engine_project_design
    from fpgallm.estimate.engine_plan import NoEngineError

    try:
        choice = DesignChoice(knobs.get("design") or "auto")
    except ValueError:
        raise UserError(f"--design {knobs.get('design')!r}: choose "
                        f"{', '.join(c.value for c in DesignChoice)}") from None
    engine_knobs = [k for k in ("ports", "port_width", "gemv_lanes", "vector_lanes", "batch", "context",
                                "prefetch_words")
                    if knobs.get(k) is not None]
    if choice is DesignChoice.ELEMENTWISE and engine_knobs:
        raise UserError(f"--{engine_knobs[0].replace('_', '-')}: a knob of the decode engine; the "
                        "bring-up design (--design elementwise) takes --lanes and --op")
    if choice is not DesignChoice.ELEMENTWISE:
        ek = EngineKnobs(ports=knobs.get("ports"), port_width=knobs.get("port_width"),
                         gemv_lanes=knobs.get("gemv_lanes"), vector_lanes=knobs.get("vector_lanes"),
                         batch=knobs.get("batch") or 1, context=knobs.get("context"),
                         prefetch_words=knobs.get("prefetch_words"))
        try:
            design = engine_project_design(board, model or "tiny-llama", ek)
            if board.open_source and (board.io is None or board.io.sdram is None or board.io.uart is None):
                raise NoEngineError(f"{board.name}: the board file lists no SDRAM and serial pins "
                                    "(io.sdram, io.uart) for the engine's open-source top")
        except NoEngineError as exc:
            if choice is DesignChoice.ENGINE:
                raise
            reason = str(exc)
        else:
            bring_up = [k for k in ("lanes", "op") if knobs.get(k) is not None]
            if bring_up:
                raise UserError(f"--{bring_up[0]}: a knob of the bring-up design, and {board.name} holds "
                                "the decode engine; use --design elementwise for the bring-up design")
            return design, None
    else:
        reason = None
    return elementwise_design(board, lanes=knobs.get("lanes"), op=knobs.get("op") or "add"), reason
