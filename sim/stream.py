"""cocotb verification kit for ``amaranth.lib.stream`` ports.

Amaranth names a stream port's signals ``<port>__payload``, ``<port>__valid`` and
``<port>__ready``.  :class:`StreamDriver` sends payload words with seeded random idle
cycles, :class:`StreamMonitor` collects them with seeded random backpressure, and
:class:`Scoreboard` compares in order and fails at the first mismatch with the index, the
expected and the actual value.  :func:`pack` / :func:`unpack` convert lane arrays to and
from the flat payload integer (lane 0 in the least significant bits).
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterable, Iterator, Sequence

import numpy as np


class Pattern(enum.Enum):
    """When a driver idles (valid low) or a monitor stalls (ready low)."""

    NONE = "none"          # never
    RANDOM = "random"      # each cycle with probability 1/2
    BURSTY = "bursty"      # runs of 1..16 active cycles, then runs of 1..16 stalled cycles

    def cycles(self, rng: random.Random) -> Iterator[bool]:
        """Yield True for each cycle that stalls."""
        if self is Pattern.NONE:
            while True:
                yield False
        elif self is Pattern.RANDOM:
            while True:
                yield rng.random() < 0.5
        else:
            while True:
                for _ in range(rng.randint(1, 16)):
                    yield False
                for _ in range(rng.randint(1, 16)):
                    yield True


ALL_PATTERNS = tuple(Pattern)


def pack(values: Iterable[int], width: int) -> int:
    """Pack integers (signed or unsigned) into one word, element 0 in the low bits."""
    word, mask = 0, (1 << width) - 1
    for i, v in enumerate(values):
        word |= (int(v) & mask) << (i * width)
    return word


def unpack(word: int, width: int, count: int, is_signed: bool = True) -> np.ndarray:
    """Inverse of :func:`pack`: ``count`` elements of ``width`` bits from ``word``."""
    word = int(word)
    mask = (1 << width) - 1
    out = np.empty(count, dtype=np.int64)
    for i in range(count):
        v = (word >> (i * width)) & mask
        if is_signed and v >> (width - 1):
            v -= 1 << width
        out[i] = v
    return out


class StreamDriver:
    """Drives ``<prefix>__payload/valid`` and honours ``<prefix>__ready``."""

    def __init__(self, dut, prefix: str, clk, pattern: Pattern = Pattern.NONE,
                 rng: random.Random | None = None):
        self.payload = getattr(dut, f"{prefix}__payload", None)
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.clk = clk
        self.idle = pattern.cycles(rng or random.Random(0))
        self.valid.value = 0
        self.sent = 0

    async def send(self, words: Sequence[int]) -> None:
        """Send every word in order; returns after the last one was accepted."""
        from cocotb.triggers import ReadOnly, RisingEdge

        for word in words:
            while next(self.idle):
                self.valid.value = 0
                await RisingEdge(self.clk)
            if self.payload is not None:
                self.payload.value = int(word)
            self.valid.value = 1
            while True:
                await ReadOnly()
                accepted = bool(self.ready.value)
                await RisingEdge(self.clk)
                if accepted:
                    break
            self.sent += 1
        self.valid.value = 0


class StreamMonitor:
    """Collects ``<prefix>__payload`` beats, stalling ``<prefix>__ready`` by a pattern."""

    def __init__(self, dut, prefix: str, clk, pattern: Pattern = Pattern.NONE,
                 rng: random.Random | None = None, callback=None):
        self.payload = getattr(dut, f"{prefix}__payload", None)
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.clk = clk
        self.stall = pattern.cycles(rng or random.Random(1))
        self.items: list[int] = []
        self.callback = callback
        self.ready.value = 0
        self._task = None

    def start(self):
        import cocotb

        self._task = cocotb.start_soon(self._run())
        return self

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.ready.value = 0

    async def _run(self):
        from cocotb.triggers import ReadOnly, RisingEdge

        while True:
            r = 0 if next(self.stall) else 1
            self.ready.value = r
            await ReadOnly()
            if r and self.valid.value:
                item = int(self.payload.value) if self.payload is not None else 1
                self.items.append(item)
                if self.callback:
                    self.callback(item)
            await RisingEdge(self.clk)

    async def wait_for(self, count: int, timeout_cycles: int = 100_000) -> list[int]:
        """Wait until ``count`` items arrived; fail after ``timeout_cycles`` clock cycles."""
        from cocotb.triggers import RisingEdge

        for _ in range(timeout_cycles):
            if len(self.items) >= count:
                return self.items
            await RisingEdge(self.clk)
        raise AssertionError(f"timeout: {len(self.items)} of {count} items after "
                             f"{timeout_cycles} cycles")


class Scoreboard:
    """In-order comparison; :meth:`check` raises at the first mismatch."""

    def __init__(self, name: str, fmt=None):
        self.name = name
        self.fmt = fmt or (lambda v: repr(v))
        self.expected: list = []
        self.checked = 0

    def expect(self, items: Iterable) -> None:
        self.expected.extend(items)

    def check(self, actual: Sequence) -> None:
        for i, got in enumerate(actual):
            if i >= len(self.expected):
                raise AssertionError(f"{self.name}: unexpected extra item at index {i}: "
                                     f"{self.fmt(got)}")
            exp = self.expected[i]
            if not _equal(exp, got):
                raise AssertionError(f"{self.name}: mismatch at index {i}: expected "
                                     f"{self.fmt(exp)}, got {self.fmt(got)}")
        if len(actual) != len(self.expected):
            raise AssertionError(f"{self.name}: got {len(actual)} items, expected "
                                 f"{len(self.expected)}")
        self.checked = len(actual)


def _equal(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


async def start_clock(dut, period_ns: int = 2):
    """Start ``dut.clk`` and hold ``dut.rst`` for 2 cycles."""
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import RisingEdge

    cocotb.start_soon(Clock(dut.clk, period_ns, unit="ns").start())
    dut.rst.value = 1
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


def rng_for(name: str) -> random.Random:
    """A ``random.Random`` derived from the cocotb seed and a stream name (replayable)."""
    import cocotb
    import zlib

    return random.Random((cocotb.RANDOM_SEED << 32) ^ zlib.crc32(name.encode()))


def np_rng_for(name: str) -> np.random.Generator:
    import cocotb
    import zlib

    return np.random.default_rng([cocotb.RANDOM_SEED, zlib.crc32(name.encode())])
