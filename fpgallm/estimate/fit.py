"""Fit check: does a design fit a board's resources?

Raises :class:`~fpgallm.errors.UserError` naming the resource, the need and the capacity,
e.g. ``design does not fit icebreaker: DSP needs 16 (...), the board has 8 SB_MAC16``.
Whether a model fits the board's memory is checked where its image is compiled
(:func:`fpgallm.project.engine_design.engine_project_design` against the engine's memory,
:func:`fpgallm.estimate.perf.estimate_perf`).
"""

from __future__ import annotations

from fpgallm.boards import Board
from fpgallm.errors import UserError

# Checked in this order: the scarcest first, so the message names what matters.
RESOURCES = ("dsp", "bram", "uram", "lut", "ff")


def resource_label(board: Board, res: str) -> str:
    r = board.resources
    kind = {"dsp": r.dsp_type, "bram": r.bram_type, "uram": r.uram_type,
            "lut": f"LUT{r.lut_inputs}", "ff": "flip-flops"}[res]
    return kind or res.upper()


def fit_table(board: Board, need: dict[str, int]) -> dict[str, dict[str, int]]:
    avail = board.available
    return {k: {"need": int(need.get(k, 0)), "available": avail[k]} for k in RESOURCES}


def check_fit(board: Board, need: dict[str, int], basis: str) -> dict[str, dict[str, int]]:
    """The need/available table; raises when any resource is short."""
    table = fit_table(board, need)
    for res, row in table.items():
        if row["need"] > row["available"]:
            shell = " after the shell" if board.shell is not None else ""
            raise UserError(
                f"design does not fit {board.name}: {res.upper()} needs {row['need']} ({basis}), "
                f"the board has {row['available']}{shell} ({resource_label(board, res)})")
    return table
