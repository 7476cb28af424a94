"""Helpers for testbenches of vector units whose stream payload is ``{data, n, last}``.

A vector of run-time length travels as beats of ``lanes`` elements: ``data`` (lane 0 in the
low bits), ``n`` the number of valid lanes (``lanes`` on every beat but the last), ``last``
set on the final beat.  (Not a bench: the leading underscore keeps it out of discovery.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fpgallm.sim.stream import pack, unpack


def n_width(lanes: int) -> int:
    return lanes.bit_length()


def to_beats(vec: Sequence[int], lanes: int, width: int) -> list[int]:
    """Payload words of one vector (padding lanes are zero)."""
    vec = np.asarray(vec, dtype=np.int64)
    words = []
    nw = n_width(lanes)
    for start in range(0, len(vec), lanes):
        chunk = vec[start:start + lanes]
        last = start + lanes >= len(vec)
        word = pack(chunk, width) | (len(chunk) << (lanes * width)) | (int(last) << (lanes * width + nw))
        words.append(word)
    return words


def from_beat(word: int, lanes: int, width: int, is_signed: bool = True) -> tuple[np.ndarray, int, bool]:
    """``(data, n, last)`` of a payload word."""
    word = int(word)
    nw = n_width(lanes)
    data = unpack(word, width, lanes, is_signed)
    n = (word >> (lanes * width)) & ((1 << nw) - 1)
    last = bool((word >> (lanes * width + nw)) & 1)
    return data, n, last


def expected_beats(vec: Sequence[int], lanes: int) -> list[tuple[tuple[int, ...], int, bool]]:
    """What an output stream of one vector looks like: ``(data padded with 0, n, last)`` per beat."""
    vec = [int(v) for v in vec]
    out = []
    for start in range(0, len(vec), lanes):
        chunk = vec[start:start + lanes]
        n = len(chunk)
        out.append((tuple(chunk + [0] * (lanes - n)), n, start + lanes >= len(vec)))
    return out


class HandshakeLog:
    """Records ``(cycle, payload)`` of every transfer on a stream port (``valid & ready``).

    Cycles count rising edges of ``clk`` from :meth:`start`; a transfer sampled in the cycle
    before edge ``k`` is recorded with cycle ``k``.
    """

    def __init__(self, dut, prefix: str, clk):
        self.payload = getattr(dut, f"{prefix}__payload", None)
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.clk = clk
        self.events: list[tuple[int, int]] = []
        self._task = None

    def start(self, counter):
        import cocotb

        self._task = cocotb.start_soon(self._run(counter))
        return self

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self, counter):
        from cocotb.triggers import ReadOnly, RisingEdge

        while True:
            await ReadOnly()
            if self.valid.value and self.ready.value:
                self.events.append((counter.cycle, int(self.payload.value) if self.payload is not None else 0))
            await RisingEdge(self.clk)


class CycleCounter:
    """Counts rising edges of ``clk``."""

    def __init__(self, clk):
        self.clk = clk
        self.cycle = 0
        self._task = None

    def start(self):
        import cocotb

        self._task = cocotb.start_soon(self._run())
        return self

    def stop(self):
        if self._task is not None:
            self._task.cancel()

    async def _run(self):
        from cocotb.triggers import RisingEdge

        while True:
            await RisingEdge(self.clk)
            self.cycle += 1
