"""Which design a project wraps (``fpgallm generate --design``): the decode engine for the
model when the board can hold it, else the bring-up design, saying why."""

from __future__ import annotations

import enum
from typing import Any

from fpgallm.boards import Board
from fpgallm.errors import UserError
from fpgallm.estimate.engine_plan import NoEngineError
from fpgallm.project.design import EngineDesign, elementwise_design
from fpgallm.project.engine_design import EngineKnobs, engine_project_design


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
