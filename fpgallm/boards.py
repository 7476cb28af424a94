"""The board database: ``boards/<name>.yaml`` loaded into frozen :class:`Board` objects.

A board file holds what decides LLM inference on that board: the device and its resources
(and what a vendor shell takes of them), the off-chip memory systems (PS and PL memory kept
apart on SoC boards), clocks, power and the toolchain, each number with its ``sources``.
The project writer and the estimator read the same objects.

The loader is strict: an unknown key, a missing field, a value of the wrong type or an
impossible value (a negative count, bandwidth without channels, a peak bandwidth that does
not follow from channels x width x rate ...) raises :class:`BoardError` whose message is one
line naming the file and the field, e.g.
``boards/u280.yaml: memory.hbm.channels: must be > 0, got 0``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from fpgallm.errors import UserError
from fpgallm.paths import BOARDS_DIR, ROOT

VENDORS = ("amd", "intel", "lattice")
TOOLCHAINS = {
    "vivado": "amd",
    "quartus": "intel",
    "yosys-nextpnr-ecp5": "lattice",
    "yosys-nextpnr-ice40": "lattice",
}
OPEN_TOOLCHAINS = ("yosys-nextpnr-ecp5", "yosys-nextpnr-ice40")
MEMORY_SIDES = ("pl", "ps")
# A stated peak bandwidth may differ this much from channels * width * rate (rounding).
PEAK_TOLERANCE = 0.05


class BoardError(UserError):
    """A board file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Resources:
    """Device resources (whole device, before any shell)."""

    lut: int
    lut_inputs: int
    ff: int
    dsp: int
    dsp_type: str
    bram: int
    bram_kbit: float
    uram: int
    uram_kbit: float
    bram_type: Optional[str] = None
    uram_type: Optional[str] = None

    @property
    def bram_total_kbit(self) -> float:
        return self.bram * self.bram_kbit

    @property
    def uram_total_kbit(self) -> float:
        return self.uram * self.uram_kbit

    @property
    def onchip_ram_mbit(self) -> float:
        """Block RAM plus URAM (SPRAM on iCE40), in Mbit (1024 kbit)."""
        return (self.bram_total_kbit + self.uram_total_kbit) / 1024

    def counts(self) -> dict[str, int]:
        return {"lut": self.lut, "ff": self.ff, "dsp": self.dsp, "bram": self.bram,
                "uram": self.uram}


@dataclass(frozen=True)
class ShellReserve:
    """Fractions (0..1) of each resource a vendor shell takes."""

    lut: float
    ff: float
    dsp: float
    bram: float
    uram: float


@dataclass(frozen=True)
class Shell:
    name: str
    reserved: ShellReserve
    note: str = ""


@dataclass(frozen=True)
class Memory:
    """One off-chip memory system (all its channels)."""

    type: str
    side: str                 # "pl": attached to the fabric; "ps": the processor's memory
    channels: int
    width_bits: int           # data bits per channel
    rate_mtps: float          # transfers per second per pin, in millions
    peak_gbps: float          # GB/s (1e9 bytes) over all channels
    capacity_gib: float
    writable: bool = True
    name: str = ""            # the key in the board file

    @property
    def computed_gbps(self) -> float:
        return self.channels * self.width_bits * self.rate_mtps / 8000

    @property
    def capacity_bytes(self) -> int:
        return int(round(self.capacity_gib * 2**30))

    def describe(self) -> str:
        cap = (f"{self.capacity_gib:g} GiB" if self.capacity_gib >= 1
               else f"{self.capacity_gib * 1024:g} MiB")
        return (f"{self.type} {cap} {self.channels}x{self.width_bits}b @ {self.rate_mtps:g} MT/s "
                f"= {self.peak_gbps:g} GB/s ({self.side.upper()})")


@dataclass(frozen=True)
class RefClock:
    name: str
    mhz: float
    pin: Optional[str] = None
    iostandard: Optional[str] = None


@dataclass(frozen=True)
class Clocks:
    reference: RefClock
    fabric_mhz: float         # a typical clock for DSP-heavy designs on this device
    # the decode engine's clock where it was measured to close timing (open-source flow:
    # the board top makes it with a PLL); None: fabric_mhz
    engine_mhz: Optional[float] = None


@dataclass(frozen=True)
class Power:
    device_static_w: float
    board_idle_w: float
    max_w: float


@dataclass(frozen=True)
class ResetPin:
    pin: str
    active_low: bool


@dataclass(frozen=True)
class UartPins:
    """A serial line to the host (a USB-serial chip): ``tx`` is the FPGA's output."""

    tx: str
    rx: str


@dataclass(frozen=True)
class SdramPins:
    """A 16-bit SDR SDRAM on the board (the open-source engine top's memory)."""

    clk: str
    cke: str
    cs_n: str
    ras_n: str
    cas_n: str
    we_n: str
    ba: tuple[str, ...]
    a: tuple[str, ...]
    dqm: tuple[str, ...]
    dq: tuple[str, ...]


@dataclass(frozen=True)
class BoardIO:
    """User I/O the board top may use (open-source boards: LEDs, a reset button, and for
    the decode engine a serial line to the host and the SDRAM's pins)."""

    leds: tuple[str, ...]
    iostandard: str
    reset: Optional[ResetPin] = None
    uart: Optional[UartPins] = None
    sdram: Optional[SdramPins] = None


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    vendor: str
    family: str
    part: str
    package: str
    speed_grade: str
    toolchain: str
    resources: Resources
    memory: tuple[Memory, ...]
    clocks: Clocks
    power: Power
    sources: tuple[str, ...]
    shell: Optional[Shell] = None
    io: Optional[BoardIO] = None
    notes: str = ""
    path: str = field(default="", compare=False)

    # --- helpers for the project writer and the estimator --------------------------------
    @property
    def open_source(self) -> bool:
        return self.toolchain in OPEN_TOOLCHAINS

    def memories(self, side: str | None = None) -> tuple[Memory, ...]:
        return tuple(m for m in self.memory if side is None or m.side == side)

    def offchip_bandwidth_gbps(self, side: str | None = None, writable_only: bool = False) -> float:
        """Sum of the peak bandwidths (GB/s) of the memories on ``side`` (both when None)."""
        return round(sum(m.peak_gbps for m in self.memories(side)
                         if m.writable or not writable_only), 6)

    def offchip_capacity_bytes(self, side: str | None = None, writable_only: bool = False) -> int:
        return sum(m.capacity_bytes for m in self.memories(side) if m.writable or not writable_only)

    @property
    def memory_channels(self) -> int:
        """Independent memory ports the engine may use (all channels of all memories)."""
        return sum(m.channels for m in self.memory)

    @property
    def available(self) -> dict[str, int]:
        """Resource counts left for user logic after the vendor shell (the whole device when none)."""
        counts = self.resources.counts()
        if self.shell is None:
            return counts
        r = self.shell.reserved
        return {k: int(math.floor(v * (1 - getattr(r, k)))) for k, v in counts.items()}

    def describe_memory(self) -> str:
        return "; ".join(m.describe() for m in self.memory)

    def summary(self) -> dict[str, Any]:
        """A JSON-able dict of the board (as loaded, plus derived numbers)."""
        d = dataclasses.asdict(self)
        d.pop("path")
        d["memory"] = {m.name: {k: v for k, v in dataclasses.asdict(m).items() if k != "name"}
                       for m in self.memory}
        d["derived"] = {
            "offchip_bandwidth_gbps": round(self.offchip_bandwidth_gbps(), 3),
            "pl_bandwidth_gbps": round(self.offchip_bandwidth_gbps("pl"), 3),
            "ps_bandwidth_gbps": round(self.offchip_bandwidth_gbps("ps"), 3),
            "offchip_capacity_bytes": self.offchip_capacity_bytes(),
            "available": self.available,
            "onchip_ram_mbit": round(self.resources.onchip_ram_mbit, 3),
        }
        return d


# --- the loader ---------------------------------------------------------------------------

class _UniqueKeyLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


class _Ctx:
    def __init__(self, file: str):
        self.file = file

    def fail(self, where: str, msg: str) -> typing.NoReturn:
        raise BoardError(f"{self.file}: {where}: {msg}" if where else f"{self.file}: {msg}")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _typename(t) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(t, str(t))


def _convert(ctx: _Ctx, t, v, where: str):
    origin = typing.get_origin(t)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(t) if a is not type(None)]
        if v is None:
            return None
        return _convert(ctx, args[0], v, where)
    if origin is tuple:
        inner = typing.get_args(t)[0]
        if not isinstance(v, list):
            ctx.fail(where, f"must be a list, got {v!r}")
        return tuple(_convert(ctx, inner, x, f"{where}[{i}]") for i, x in enumerate(v))
    if dataclasses.is_dataclass(t):
        return _build(ctx, t, v, where)
    if t is bool:
        if not isinstance(v, bool):
            ctx.fail(where, f"must be true or false, got {v!r}")
        return v
    if t is int:
        if isinstance(v, bool) or not isinstance(v, int):
            ctx.fail(where, f"must be an integer, got {v!r}")
        return v
    if t is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            ctx.fail(where, f"must be a number, got {v!r}")
        return float(v)
    if t is str:
        if not isinstance(v, str) or not v.strip():
            ctx.fail(where, f"must be a non-empty string, got {v!r}")
        return v
    raise TypeError(f"unsupported field type {t!r}")  # pragma: no cover - programming error


_SKIP = {(Board, "path"), (Memory, "name"), (Board, "memory")}


def _build(ctx: _Ctx, cls, data, where: str):
    if not isinstance(data, dict):
        ctx.fail(where, f"must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if (cls, f.name) not in _SKIP or f.name == "memory"]
    names = [f.name for f in fields]
    for key in data:
        if key not in names:
            ctx.fail(_join(where, str(key)), f"unknown key; allowed: {', '.join(names)}")
    kwargs = {}
    for f in fields:
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if f.name not in data:
            if required:
                ctx.fail(_join(where, f.name), "missing")
            continue
        if cls is Board and f.name == "memory":
            kwargs["memory"] = _memories(ctx, data["memory"])
            continue
        kwargs[f.name] = _convert(ctx, hints[f.name], data[f.name], _join(where, f.name))
    return cls(**kwargs)


def _memories(ctx: _Ctx, data) -> tuple[Memory, ...]:
    if not isinstance(data, dict) or not data:
        ctx.fail("memory", f"must be a non-empty mapping of memory systems, got {data!r}")
    out = []
    for key, value in data.items():
        mem = _build(ctx, Memory, value, f"memory.{key}")
        out.append(dataclasses.replace(mem, name=str(key)))
    return tuple(out)


def _check(ctx: _Ctx, b: Board, stem: str) -> None:
    fail = ctx.fail

    def positive(where, v):
        if not v > 0:
            fail(where, f"must be > 0, got {v!r}")

    def nonneg(where, v):
        if v < 0:
            fail(where, f"must be >= 0, got {v!r}")

    if b.name != stem:
        fail("name", f"must match the file name {stem!r}, got {b.name!r}")
    if b.vendor not in VENDORS:
        fail("vendor", f"must be one of {', '.join(VENDORS)}, got {b.vendor!r}")
    if b.toolchain not in TOOLCHAINS:
        fail("toolchain", f"must be one of {', '.join(TOOLCHAINS)}, got {b.toolchain!r}")
    if TOOLCHAINS[b.toolchain] != b.vendor:
        fail("toolchain", f"{b.toolchain!r} does not build for vendor {b.vendor!r}")

    r = b.resources
    for k in ("lut", "ff", "dsp", "bram"):      # every design needs some of each
        positive(f"resources.{k}", getattr(r, k))
    nonneg("resources.uram", r.uram)
    if r.lut_inputs not in (4, 6):
        fail("resources.lut_inputs", f"must be 4 or 6, got {r.lut_inputs}")
    for kind in ("bram", "uram"):
        count, kbit = getattr(r, kind), getattr(r, f"{kind}_kbit")
        nonneg(f"resources.{kind}_kbit", kbit)
        if count > 0 and kbit <= 0:
            fail(f"resources.{kind}_kbit", f"must be > 0 when resources.{kind} is {count}, got {kbit:g}")

    if b.shell is not None:
        for f in dataclasses.fields(ShellReserve):
            v = getattr(b.shell.reserved, f.name)
            if not 0 <= v < 1:
                fail(f"shell.reserved.{f.name}", f"must be a fraction in [0, 1), got {v:g}")

    for m in b.memory:
        w = f"memory.{m.name}"
        if m.side not in MEMORY_SIDES:
            fail(f"{w}.side", f"must be one of {', '.join(MEMORY_SIDES)}, got {m.side!r}")
        for k in ("channels", "width_bits", "rate_mtps", "peak_gbps", "capacity_gib"):
            positive(f"{w}.{k}", getattr(m, k))
        if abs(m.peak_gbps - m.computed_gbps) > PEAK_TOLERANCE * m.computed_gbps:
            fail(f"{w}.peak_gbps", f"{m.peak_gbps:g} GB/s does not follow from channels x width_bits "
                 f"x rate_mtps = {m.computed_gbps:g} GB/s (tolerance {PEAK_TOLERANCE:.0%})")

    positive("clocks.reference.mhz", b.clocks.reference.mhz)
    positive("clocks.fabric_mhz", b.clocks.fabric_mhz)

    p = b.power
    for k in ("device_static_w", "board_idle_w", "max_w"):
        positive(f"power.{k}", getattr(p, k))
    if p.board_idle_w > p.max_w:
        fail("power.board_idle_w", f"{p.board_idle_w:g} W exceeds power.max_w {p.max_w:g} W")
    if p.device_static_w > p.max_w:
        fail("power.device_static_w", f"{p.device_static_w:g} W exceeds power.max_w {p.max_w:g} W")

    if not b.sources:
        fail("sources", "must name at least one document")

    if b.io is not None and not b.io.leds:
        fail("io.leds", "must name at least one pin")
    if b.clocks.engine_mhz is not None and not b.clocks.engine_mhz > 0:
        fail("clocks.engine_mhz", f"must be > 0, got {b.clocks.engine_mhz!r}")
    if b.io is not None and b.io.sdram is not None:
        sd = b.io.sdram
        for key, n in (("ba", (2,)), ("dqm", (2,)), ("dq", (16,)), ("a", (11, 12, 13))):
            if len(getattr(sd, key)) not in n:
                fail(f"io.sdram.{key}", f"must list {' or '.join(map(str, n))} pins, got {len(getattr(sd, key))}")
    if b.open_source:
        if b.clocks.reference.pin is None:
            fail("clocks.reference.pin", f"missing (required for the {b.toolchain} board top)")
        if b.io is None:
            fail("io", f"missing (required for the {b.toolchain} board top)")


def load_board(path: Path | str) -> Board:
    """Load and check one board file."""
    path = Path(path)
    ctx = _Ctx(_display(path))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BoardError(f"{ctx.file}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise BoardError(f"{ctx.file}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
                         f"position {exc.start})") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BoardError(f"{ctx.file}: {where}invalid YAML: {problem}") from None
    board = _build(ctx, Board, data, "")
    _check(ctx, board, path.stem)
    return dataclasses.replace(board, path=ctx.file)


@functools.lru_cache(maxsize=None)
def _load_dir(directory: str) -> dict[str, Board]:
    boards = {}
    for p in sorted(Path(directory).glob("*.yaml")):
        b = load_board(p)
        boards[b.name] = b
    return boards


def all_boards(directory: Path | None = None) -> dict[str, Board]:
    """Every board in ``directory`` (default ``boards/``), by name, sorted by name."""
    return dict(_load_dir(str(directory or BOARDS_DIR)))


def board_names(directory: Path | None = None) -> list[str]:
    return sorted(p.stem for p in Path(directory or BOARDS_DIR).glob("*.yaml"))


def is_board_path(name: str) -> bool:
    """Whether a ``--board`` value names a file (``./myboard.yaml``) rather than a built-in board."""
    return name.endswith((".yaml", ".yml")) or "/" in name or os.sep in name


def board_file(name: str, directory: Path | None = None) -> Path:
    """The YAML file of ``name``: a built-in board's name or a path to a board file; unknown
    names raise a :class:`UserError` listing the known ones."""
    if is_board_path(name):
        path = Path(name)
        if not path.is_file():
            raise UserError(f"board file {name}: no such file")
        return path
    names = board_names(directory)
    if name not in names:
        raise UserError(f"unknown board {name!r}; boards: {', '.join(names)} (or a path to a board "
                        "file, see: fpgallm boards show NAME --yaml)")
    return Path(directory or BOARDS_DIR) / f"{name}.yaml"


def get_board(name: str, directory: Path | None = None) -> Board:
    """The board ``name``: a built-in board's name or the path of a board file (checked the same
    way); unknown names raise a :class:`UserError` listing the known ones."""
    return load_board(board_file(name, directory))
