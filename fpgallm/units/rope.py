"""Rotary position embedding (RoPE) of head vectors at a run-time position.

Pair ``f`` (``f = 0 .. d/2-1``) of a head of size ``d`` is rotated by the angle
``pos * theta**(-2f/d)``.  Which two elements form pair ``f`` is the convention:

- ``ADJACENT`` (GGUF / llama.cpp, GPT-J style): ``(x[2f], x[2f+1])``;
- ``HALVES`` (Hugging Face ``rotate_half``): ``(x[f], x[f + d/2])``.

Angles: phase by multiplication, sin/cos by a quarter-wave table
-----------------------------------------------------------------
A table of ``sin, cos`` for every (position, pair) would hold ``max_pos * d/2 * 2`` words:
9.4 Mbit for Llama-2-7B (4096 positions, d=128, 18-bit words).  Instead the unit keeps the
``d/2`` frequencies as phase increments in turns, ``F[f] = round(theta**(-2f/d) / (2*pi) *
2**phase_bits)`` (``phase_bits - 2`` bits each), and computes the phase
``phi = (pos * F[f]) mod 2**phase_bits`` with one multiplier; the top two bits of ``phi`` are
the quadrant, the next ``table_log2`` bits index a quarter-wave table of
``(sin, sin step, cos, cos step)`` with ``cs_frac`` fractional bits, and the next
``interp_bits`` bits interpolate linearly (lower bits are dropped).  Memory: ``d/2`` phase
increments plus ``2**table_log2`` table words per lane (about 15 kbit at the defaults),
independent of the context length.  Both tables are built once from ``theta`` with float64
(Python ``math``), deterministically; everything after is integer.

Contract
--------
Input ``i``: ``lanes`` pairs per beat plus ``pos`` (unsigned, ``0 <= pos < max_pos``).
``ADJACENT``: field ``x``, ``2*lanes`` elements in natural order (beat ``j`` holds
``x[2*lanes*j .. 2*lanes*(j+1))``).  ``HALVES``: fields ``lo`` and ``hi``, ``lanes`` elements
each (beat ``j`` holds ``x[lanes*j ..]`` and ``x[d/2 + lanes*j ..]``), so both halves stream
side by side; the engine gets that order for free by the order in which it computes the Q/K
rows (a reordering buffer would cost ``d/2`` words and half the throughput).  A head is
``d/(2*lanes)`` beats; heads follow each other; an internal beat counter gives the pair index.
Output ``o``: the rotated elements in the layout of the input (without ``pos``).

Arithmetic (exactly :func:`golden`), with ``s, c`` the interpolated quarter-wave values mapped
to the quadrant: ``x' = sat(round_shift(a*cos - b*sin, in_frac + cs_frac - out_frac))``,
``y' = sat(round_shift(a*sin + b*cos, ...))``.

Latency :attr:`RopeParams.latency` = 9 cycles; one beat (``2*lanes`` elements) per cycle.

Error against float64 RoPE (exact angles, same quantized inputs), measured by
``tests/units/test_rope.py`` over 4 000 random heads at random positions below ``max_pos``
at the defaults (Q7.8 in/out, theta 10000, d=64, max_pos 8192, 32-bit phase, 256-entry
quarter table, 12 interpolation bits, 16-bit sin/cos): sin/cos within 2.1e-5 of float, so
the output error is at most 0.5 LSB + 2.1e-5 * |(a, b)|: max 1.33 LSB over the whole input
range (|x| up to 128), 0.52 LSB for |x| <= 1 (the usual range of normalized q/k).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from fpgallm.hdl.check import check_int
from fpgallm.hdl.emit import Emitted, to_verilog
from fpgallm.hdl.fixed import hdl_saturate, round_shift, saturate, smax, smin
from fpgallm.hdl.pipeline import stall_pipeline


class RopeConvention(enum.Enum):
    ADJACENT = "adjacent"   # GGUF / llama.cpp: (x[2f], x[2f+1])
    HALVES = "halves"       # Hugging Face rotate_half: (x[f], x[f + d/2])


@dataclass(frozen=True)
class RopeParams:
    """Parameters of :class:`Rope`; validated on construction."""

    convention: RopeConvention = RopeConvention.ADJACENT
    lanes: int = 2
    head_dim: int = 64
    theta: float = 10000.0
    max_pos: int = 8192
    in_width: int = 16
    in_frac: int = 8
    out_width: int = 16
    out_frac: int = 8
    phase_bits: int = 32
    table_log2: int = 8
    interp_bits: int = 12
    cs_frac: int = 16

    def __post_init__(self):
        if not isinstance(self.convention, RopeConvention):
            raise ValueError(f"RopeParams.convention must be a RopeConvention, "
                             f"got {self.convention!r}")
        for name, lo, hi in (("lanes", 1, 128), ("head_dim", 2, 1024), ("max_pos", 1, 1 << 20),
                             ("in_width", 2, 24), ("in_frac", 0, 24), ("out_width", 2, 32),
                             ("out_frac", 0, 32), ("phase_bits", 8, 40), ("table_log2", 2, 12),
                             ("interp_bits", 0, 16), ("cs_frac", 4, 20)):
            check_int("RopeParams", name, getattr(self, name), lo, hi)
        if self.head_dim % (2 * self.lanes):
            raise ValueError(f"RopeParams.head_dim must be a multiple of 2*lanes = "
                             f"{2 * self.lanes}, got {self.head_dim}")
        if not isinstance(self.theta, (int, float)) or not self.theta > 1:
            raise ValueError(f"RopeParams.theta must be a number > 1, got {self.theta!r}")
        if self.table_log2 + self.interp_bits > self.phase_bits - 2:
            raise ValueError(f"RopeParams.table_log2 + interp_bits must be <= phase_bits - 2 = "
                             f"{self.phase_bits - 2}, got {self.table_log2 + self.interp_bits}")
        if self.in_frac + self.cs_frac < self.out_frac:
            raise ValueError(f"RopeParams.out_frac must be <= in_frac + cs_frac = "
                             f"{self.in_frac + self.cs_frac}, got {self.out_frac}")

    @property
    def pairs(self) -> int:
        return self.head_dim // 2

    @property
    def beats_per_head(self) -> int:
        return self.pairs // self.lanes

    @property
    def pos_width(self) -> int:
        return max(1, (self.max_pos - 1).bit_length())

    @property
    def freq_width(self) -> int:
        return self.phase_bits - 2

    @cached_property
    def phase_increments(self) -> tuple[int, ...]:
        """``F[f]``: the phase of pair ``f`` per position, in units of 2**-phase_bits turns."""
        return tuple(int(math.floor(self.theta ** (-2.0 * f / self.head_dim) / (2 * math.pi)
                                    * 2.0 ** self.phase_bits + 0.5)) for f in range(self.pairs))

    @cached_property
    def sin_table(self) -> np.ndarray:
        """``round(sin(k/2**table_log2 * pi/2) * 2**cs_frac)`` for k = 0 .. 2**table_log2."""
        n = 1 << self.table_log2
        return np.array([int(math.floor(math.sin(k / n * math.pi / 2) * 2.0 ** self.cs_frac
                                        + 0.5)) for k in range(n + 1)], dtype=np.int64)

    @property
    def cs_width(self) -> int:
        """Signed bits of sin/cos in [-1, 1]."""
        return self.cs_frac + 2

    @property
    def step_width(self) -> int:
        return int(np.max(np.abs(np.diff(self.sin_table)))).bit_length() + 1

    @property
    def out_shift(self) -> int:
        return self.in_frac + self.cs_frac - self.out_frac

    @property
    def latency(self) -> int:
        """Cycles from an accepted input beat to its output beat, with no backpressure."""
        return 9

    @property
    def throughput(self) -> int:
        """Elements per cycle."""
        return 2 * self.lanes

    def _pair_fields(self, with_pos: bool) -> dict:
        el = signed(self.in_width if with_pos else self.out_width)
        if self.convention is RopeConvention.ADJACENT:
            fields = {"x": data.ArrayLayout(el, 2 * self.lanes)}
        else:
            fields = {"lo": data.ArrayLayout(el, self.lanes), "hi": data.ArrayLayout(el, self.lanes)}
        if with_pos:
            fields["pos"] = unsigned(self.pos_width)
        return fields

    def in_layout(self) -> data.StructLayout:
        return data.StructLayout(self._pair_fields(True))

    def out_layout(self) -> data.StructLayout:
        return data.StructLayout(self._pair_fields(False))

    def rom_layout(self) -> data.StructLayout:
        return data.StructLayout({"s": signed(self.cs_width), "ds": signed(self.step_width),
                                  "c": signed(self.cs_width), "dc": signed(self.step_width)})


def sin_cos(p: RopeParams, pos) -> tuple[np.ndarray, np.ndarray]:
    """Bit-exact ``(sin, cos)`` with ``cs_frac`` fractional bits, shape ``pos.shape + (d/2,)``."""
    pos = np.asarray(pos, dtype=np.int64)
    if pos.size and (pos.min() < 0 or pos.max() >= p.max_pos):
        raise ValueError(f"pos must be in [0, {p.max_pos - 1}]")
    F = np.array(p.phase_increments, dtype=np.uint64)
    mask = np.uint64((1 << p.phase_bits) - 1)
    phi = (pos[..., None].astype(np.uint64) * F) & mask  # < 2**(20+38) fits in 64 bits
    phi = phi.astype(np.int64)
    K, I = p.table_log2, p.interp_bits
    q = phi >> (p.phase_bits - 2)
    r = phi & ((1 << (p.phase_bits - 2)) - 1)
    idx = r >> (p.phase_bits - 2 - K)
    frac = (r >> (p.phase_bits - 2 - K - I)) & ((1 << I) - 1)
    tab = p.sin_table
    n = 1 << K
    s0, s1 = tab[idx], tab[idx + 1]
    c0, c1 = tab[n - idx], tab[n - idx - 1]
    s = s0 + round_shift((s1 - s0) * frac, I)
    c = c0 + round_shift((c1 - c0) * frac, I)
    sin = np.select([q == 0, q == 1, q == 2], [s, c, -s], -c)
    cos = np.select([q == 0, q == 1, q == 2], [c, -s, -c], s)
    return sin, cos


def split_pairs(p: RopeParams, x) -> tuple[np.ndarray, np.ndarray]:
    """``(a, b)``: the two elements of every pair of head vectors ``x`` (``..., d``)."""
    x = np.asarray(x, dtype=np.int64)
    if p.convention is RopeConvention.ADJACENT:
        return x[..., 0::2], x[..., 1::2]
    return x[..., :p.pairs], x[..., p.pairs:]


def join_pairs(p: RopeParams, a, b) -> np.ndarray:
    if p.convention is RopeConvention.ADJACENT:
        out = np.empty(a.shape[:-1] + (2 * a.shape[-1],), dtype=np.int64)
        out[..., 0::2], out[..., 1::2] = a, b
        return out
    return np.concatenate([a, b], axis=-1)


def golden(p: RopeParams, x, pos) -> np.ndarray:
    """Bit-exact model: head vectors ``x`` (``n, d``, natural order) at positions ``pos`` (n)."""
    x = np.asarray(x, dtype=np.int64)
    if x.shape[-1] != p.head_dim:
        raise ValueError(f"x must have head_dim={p.head_dim} elements per head, got {x.shape[-1]}")
    lo, hi = smin(p.in_width), smax(p.in_width)
    if x.size and (x.min() < lo or x.max() > hi):
        raise ValueError(f"x must be in [{lo}, {hi}] (in_width={p.in_width})")
    sin, cos = sin_cos(p, pos)
    a, b = split_pairs(p, x)
    ra, rb = rotate(a, b, sin, cos, p.out_shift, p.out_width)
    return join_pairs(p, ra, rb)


def rotate(a, b, sin, cos, shift: int, out_width: int) -> tuple[np.ndarray, np.ndarray]:
    """The rotation of the unit (stages 7-9): ``(sat(round_shift(a*cos - b*sin, shift)),
    sat(round_shift(a*sin + b*cos, shift)))`` to ``out_width`` bits, exact in int64."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    ra = saturate(round_shift(a * cos - b * sin, shift), out_width)
    rb = saturate(round_shift(a * sin + b * cos, shift), out_width)
    return ra, rb


def golden_table(convention: RopeConvention, x, cos, sin, cs_frac: int, out_width: int) -> np.ndarray:
    """RoPE with the sin / cos given as integers with ``cs_frac`` fraction bits (a table in
    memory, as the decode engine's ``ROPE`` reads it) instead of the unit's phase tables:
    head vectors ``x`` (``..., d``, natural order), ``cos`` / ``sin`` broadcastable to
    ``(..., d/2)``; the output keeps the input's fraction bits.  Same :func:`rotate`
    arithmetic as :func:`golden`."""
    x = np.asarray(x, dtype=np.int64)
    if convention is RopeConvention.ADJACENT:
        a, b = x[..., 0::2], x[..., 1::2]
    else:
        a, b = x[..., :x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    ra, rb = rotate(a, b, sin, cos, cs_frac, out_width)
    if convention is RopeConvention.ADJACENT:
        out = np.empty(x.shape, dtype=np.int64)
        out[..., 0::2], out[..., 1::2] = ra, rb
        return out
    return np.concatenate([ra, rb], axis=-1)


def reference(p: RopeParams, x, pos) -> np.ndarray:
    """float64 RoPE with exact angles (error measurement only); x in real units."""
    x = np.asarray(x, dtype=np.float64)
    f = np.arange(p.pairs)
    ang = np.asarray(pos, dtype=np.float64)[..., None] * p.theta ** (-2.0 * f / p.head_dim)
    if p.convention is RopeConvention.ADJACENT:
        a, b = x[..., 0::2], x[..., 1::2]
    else:
        a, b = x[..., :p.pairs], x[..., p.pairs:]
    ra = a * np.cos(ang) - b * np.sin(ang)
    rb = a * np.sin(ang) + b * np.cos(ang)
    if p.convention is RopeConvention.ADJACENT:
        out = np.empty_like(x)
        out[..., 0::2], out[..., 1::2] = ra, rb
        return out
    return np.concatenate([ra, rb], axis=-1)


class Rope(wiring.Component):
    """The RTL of :mod:`fpgallm.units.rope` (see the module docstring for the contract)."""

    def __init__(self, params: RopeParams):
        self.params = params
        super().__init__({
            "i": In(stream.Signature(params.in_layout())),
            "o": Out(stream.Signature(params.out_layout())),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        L = p.lanes
        advance, _ = stall_pipeline(m, self.i.valid, self.i.ready, self.o.valid, self.o.ready,
                                    p.latency)
        beat = Signal(range(max(2, p.beats_per_head)), name="beat")
        with m.If(self.i.valid & self.i.ready):
            if p.beats_per_head > 1:
                m.d.sync += beat.eq(Mux(beat == p.beats_per_head - 1, 0, beat + 1))

        P, K, I = p.phase_bits, p.table_log2, p.interp_bits
        n = 1 << K
        tab = p.sin_table
        rom_init = [{"s": int(tab[k]), "ds": int(tab[k + 1] - tab[k]),
                     "c": int(tab[n - k]), "dc": int(tab[n - k - 1] - tab[n - k])}
                    for k in range(n)]
        adj = p.convention is RopeConvention.ADJACENT
        pos1 = Signal(unsigned(p.pos_width), name="pos1")
        with m.If(advance):
            m.d.sync += pos1.eq(self.i.payload.pos)
        w, cw, sh = p.in_width, p.cs_width, p.out_shift
        for ln in range(L):
            a_in = self.i.payload.x[2 * ln] if adj else self.i.payload.lo[ln]
            b_in = self.i.payload.x[2 * ln + 1] if adj else self.i.payload.hi[ln]
            a_out = self.o.payload.x[2 * ln] if adj else self.o.payload.lo[ln]
            b_out = self.o.payload.x[2 * ln + 1] if adj else self.o.payload.hi[ln]
            # stage 1: phase increment of this lane's pair (registered ROM read), x, pos
            fmem = memory.Memory(shape=unsigned(p.freq_width), depth=max(2, p.beats_per_head),
                                 init=[p.phase_increments[j * L + ln]
                                       for j in range(p.beats_per_head)])
            m.submodules[f"freq{ln}"] = fmem
            fr = fmem.read_port(domain="sync")
            m.d.comb += [fr.addr.eq(beat), fr.en.eq(advance)]
            ab = [[Signal(signed(w), name=f"{nm}{k}_{ln}") for nm in ("a", "b")]
                  for k in range(1, 7)]
            with m.If(advance):
                m.d.sync += [ab[0][0].eq(a_in), ab[0][1].eq(b_in)]
                for k in range(1, 6):
                    m.d.sync += [ab[k][0].eq(ab[k - 1][0]), ab[k][1].eq(ab[k - 1][1])]
            # stage 2: phase = pos * F mod 2**P
            phi = Signal(unsigned(P), name=f"phi2_{ln}")
            with m.If(advance):
                m.d.sync += phi.eq((pos1 * fr.data)[:P])
            # stage 3: quarter-wave table read; quadrant and interpolation fraction
            rom = memory.Memory(shape=p.rom_layout(), depth=n, init=rom_init)
            m.submodules[f"sincos{ln}"] = rom
            rd = rom.read_port(domain="sync")
            m.d.comb += [rd.addr.eq(phi[P - 2 - K:P - 2]), rd.en.eq(advance)]
            q3 = Signal(2, name=f"q3_{ln}")
            f3 = Signal(unsigned(max(1, I)), name=f"f3_{ln}")
            with m.If(advance):
                m.d.sync += q3.eq(phi[P - 2:])
                if I:
                    m.d.sync += f3.eq(phi[P - 2 - K - I:P - 2 - K])
            # stage 4: interpolation products
            ps = Signal(signed(p.step_width + I + 1), name=f"ps4_{ln}")
            pc = Signal(signed(p.step_width + I + 1), name=f"pc4_{ln}")
            s4 = Signal(signed(cw), name=f"s4_{ln}")
            c4 = Signal(signed(cw), name=f"c4_{ln}")
            q4 = Signal(2, name=f"q4_{ln}")
            with m.If(advance):
                m.d.sync += [ps.eq(rd.data.ds * f3 if I else 0), pc.eq(rd.data.dc * f3 if I else 0),
                             s4.eq(rd.data.s), c4.eq(rd.data.c), q4.eq(q3)]
            # stage 5: interpolated sin / cos of the first quadrant
            s5 = Signal(signed(cw), name=f"s5_{ln}")
            c5 = Signal(signed(cw), name=f"c5_{ln}")
            q5 = Signal(2, name=f"q5_{ln}")
            bias = (1 << I) >> 1
            with m.If(advance):
                m.d.sync += [s5.eq(s4 + ((ps + bias) >> I)), c5.eq(c4 + ((pc + bias) >> I)),
                             q5.eq(q4)]
            # stage 6: map to the quadrant
            sin6 = Signal(signed(cw), name=f"sin6_{ln}")
            cos6 = Signal(signed(cw), name=f"cos6_{ln}")
            with m.If(advance):
                with m.Switch(q5):
                    with m.Case(0):
                        m.d.sync += [sin6.eq(s5), cos6.eq(c5)]
                    with m.Case(1):
                        m.d.sync += [sin6.eq(c5), cos6.eq(-s5)]
                    with m.Case(2):
                        m.d.sync += [sin6.eq(-s5), cos6.eq(-c5)]
                    with m.Default():
                        m.d.sync += [sin6.eq(-c5), cos6.eq(s5)]
            # stage 7: the four rotation products
            a6, b6 = ab[5]
            prods = [Signal(signed(w + cw), name=f"{nm}7_{ln}") for nm in ("ac", "bs", "as", "bc")]
            with m.If(advance):
                m.d.sync += [prods[0].eq(a6 * cos6), prods[1].eq(b6 * sin6),
                             prods[2].eq(a6 * sin6), prods[3].eq(b6 * cos6)]
            # stage 8: sums and rounding
            ra = Signal(signed(w + cw + 1), name=f"ra8_{ln}")
            rb = Signal(signed(w + cw + 1), name=f"rb8_{ln}")
            rbias = (1 << sh) >> 1
            with m.If(advance):
                m.d.sync += [ra.eq((prods[0] - prods[1] + rbias) >> sh),
                             rb.eq((prods[2] + prods[3] + rbias) >> sh)]
            # stage 9: saturation into the output register
            with m.If(advance):
                m.d.sync += [a_out.eq(hdl_saturate(ra, p.out_width)),
                             b_out.eq(hdl_saturate(rb, p.out_width))]
        return m


def generate(params: RopeParams, top: str = "fpgallm_rope") -> Emitted:
    """Verilog of :class:`Rope` for ``params``."""
    return to_verilog(Rope(params), top, params)
