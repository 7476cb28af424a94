"""Every value a user types on the command line, checked in one place.

The functions here are argparse ``type=`` callables (or build them): they turn the text
into a number or a string and raise :class:`argparse.ArgumentTypeError` when it is not
allowed -- not a number, not finite, out of range, zero or empty.  argparse prefixes the
message with the flag (``argument --batch: must be >= 1, got 0``), and
:class:`fpgallm.cli.Parser` prints it as one line with exit status 2.
"""

from __future__ import annotations

import argparse
import math

# The fabric clock every command accepts (the engine's own limit, fpgallm.engine.params).
CLOCK_MHZ = (1.0, 1000.0)


def _bad(msg: str):
    return argparse.ArgumentTypeError(msg)


def int_in(lo: int | None = None, hi: int | None = None, name: str = "integer"):
    """An integer in ``[lo, hi]`` (either end open when ``None``)."""
    def parse(text: str) -> int:
        try:
            v = int(text.strip())
        except ValueError:
            raise _bad(f"must be an integer, got {text!r}") from None
        if lo is not None and hi is not None and not lo <= v <= hi:
            raise _bad(f"must be in {lo}..{hi}, got {v}")
        if lo is not None and v < lo:
            raise _bad(f"must be >= {lo}, got {v}")
        if hi is not None and v > hi:
            raise _bad(f"must be <= {hi}, got {v}")
        return v
    parse.__name__ = name      # argparse names the type in "invalid <name> value" messages
    return parse


def float_in(lo: float, hi: float, *, lo_open: bool = False, name: str = "number"):
    """A finite number in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``)."""
    def parse(text: str) -> float:
        try:
            v = float(text.strip())
        except ValueError:
            raise _bad(f"must be a number, got {text!r}") from None
        if not math.isfinite(v):
            raise _bad(f"must be a finite number, got {text.strip()}")
        if v < lo or v > hi or (lo_open and v == lo):
            raise _bad(f"must be in {'(' if lo_open else '['}{lo:g}, {hi:g}], got {v:g}")
        return v
    parse.__name__ = name
    return parse


def nonempty(text: str) -> str:
    """A string that is not empty (nor only blanks)."""
    if not text.strip():
        raise _bad("must not be empty")
    return text


def text(value: str) -> str:
    """Text that is valid UTF-8 (argv bytes that are not arrive as lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start].encode("utf-8", "surrogateescape")
        raise _bad(f"is not valid UTF-8 text (byte 0x{bad[0]:02x} at position {exc.start})") from None
    return value


positive_int = int_in(1, name="positive_int")
nonneg_int = int_in(0, name="nonneg_int")
clock_mhz = float_in(*CLOCK_MHZ, name="clock_mhz")
batch = int_in(1, 8, name="batch")
