"""Fit checks: does a design fit a board's resources, does a model fit its memory?

Both raise :class:`~fpgallm.errors.UserError` naming the resource, the need and the
capacity, e.g. ``design does not fit icebreaker: DSP needs 16 (...), the board has 8
SB_MAC16``.
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


def _gib(n: int) -> str:
    return f"{n / 2**30:.3g} GiB"


def check_memory_fit(board: Board, weight_bytes: int, kv_bytes: int, context: int) -> None:
    """Weights and the KV cache for ``context`` tokens must fit the board's writable memory.

    ENGINE HOOKUP: called by ``fpgallm generate`` once the model is loaded (issue 3) and
    the engine's memory image size is known (issues 6/7).
    """
    have = board.offchip_capacity_bytes(writable_only=True)
    need = weight_bytes + kv_bytes
    if need > have:
        parts = " + ".join(f"{m.type} {_gib(m.capacity_bytes)}" for m in board.memory if m.writable) or "none"
        raise UserError(
            f"model does not fit {board.name} off-chip memory: weights {_gib(weight_bytes)} + KV cache "
            f"for {context} tokens {_gib(kv_bytes)} = {_gib(need)}, the board has {_gib(have)} ({parts})")
