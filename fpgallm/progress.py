"""What a long command is doing, on stderr, while it does it.

``fpgallm generate`` on a large board works for minutes (loading the model, planning the
engine, compiling the program and memory image, converting the engine to Verilog, writing
the project).  :func:`reporting` opens a display for one command; :func:`step` names the
phase now running.  On a terminal the display is one line, rewritten in place with the
elapsed time and cleared at the end; on anything else (a pipe, a file, a test) nothing is
written, so stderr keeps its contract: nothing on success, one line on an error.
"""

from __future__ import annotations

import contextlib
import sys
import time

_active: "Progress | None" = None


class Progress:
    def __init__(self, command: str, stream=None):
        self.command = command
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.monotonic()
        self.steps: list[str] = []

    def step(self, what: str) -> None:
        self.steps.append(what)
        if self.live:
            self.stream.write(f"\r\033[K{self.command}: {what} ... ({time.monotonic() - self.t0:.0f} s)")
            self.stream.flush()

    def close(self) -> None:
        if self.live and self.steps:
            self.stream.write("\r\033[K")
            self.stream.flush()


@contextlib.contextmanager
def reporting(command: str, stream=None):
    """The display of one command; the line is cleared however the block ends (also Ctrl-C)."""
    global _active
    prev, _active = _active, Progress(command, stream)
    try:
        yield _active
    finally:
        _active.close()
        _active = prev


def step(what: str) -> None:
    """Name the phase now running (a no-op outside :func:`reporting`)."""
    if _active is not None:
        _active.step(what)
