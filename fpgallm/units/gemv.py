"""GEMV engine for decode: ``y = W x`` with quantized weights streamed one memory word a cycle.

Contract
--------
``lanes`` (P) output rows are computed at once, each lane doing ``k`` (K) multiply-accumulates
a cycle, ``K = word_bits / (P * weight bits)``: every weight word carries K weights for each
of the P lanes and is consumed in one cycle.  One *job* multiplies a ``rows x cols`` matrix
(``rows = row_tiles * P``, ``cols = cols_words * K``, both set on config ports held constant
during the job) by an INT8 vector:

1. stream ``x``: ``cols_words`` beats of K int8 activations, written into on-chip RAM;
2. stream ``w``: ``row_tiles * cols_words`` weight words in the layout of :func:`pack`
   (row tile by row tile, column word by column word); stream ``s``: one scale beat per
   (row tile, group), taken together with the last weight word of the group;
3. stream ``o``: one beat per row tile, P values (wide accumulators or INT8).

Arithmetic, exactly :func:`golden`: per row and group ``g`` (``group`` columns, or the whole
row for ``INT8_ROW``), with the group's activations ``x_g`` and integer weights ``q_g``:

- ``dot = sum(q_g * x_g)``, ``S = sum(x_g)`` (exact integers, INT32 range),
- ``t = round_shift((dot * dm) << guard, dr)`` plus, for ``INT4_GROUP_MIN``,
  ``round_shift((S * mm) << guard, mr)``: the scale ``d = dm * 2**(emax - dr)`` and the
  minimum ``m = mm * 2**(emax - mr)`` in the mantissa/shift form made by :func:`pack`,
- ``acc = sum_g t``; real value ``acc * 2**acc_exp * x_scale`` (``acc_exp = emax - guard``),
- output ``acc`` (``WIDE``) or ``sat8(round_shift(acc * out_mult, out_shift))`` (``INT8``).

Rounding is round-half-up (:mod:`fpgallm.hdl.fixed`); the only rounding before the output
is the per-group ``round_shift`` by ``dr - guard`` bits when positive (exact otherwise).

Timing: no bubbles between rows or groups; :meth:`GemvParams.cycles` gives the cycles from
the first weight word accepted to the last output beat accepted when nothing stalls.  The
datapath never stalls (no clock enable fanning out to every register): row results enter an
output FIFO of :attr:`GemvParams.out_fifo_depth` beats, and a row tile's last word is accepted
only while the FIFO has a free slot for every row result still in flight (credits), so ``o``
back-pressure reaches ``w`` only through a counter.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Cat, Const, Module, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from fpgallm.hdl.check import check_int
from fpgallm.hdl.dsp import ECP5_MAX_BITS, MulStyle, registered_mul, sim_sources
from fpgallm.hdl.emit import Emitted, to_verilog
from fpgallm.hdl.fixed import hdl_saturate_staged, round_shift, saturate
from fpgallm.units.weights import ACT_GROUP, WeightFormat, align, mant_exp

__all__ = ["WeightFormat", "GemvOutput", "GemvParams", "PackedMatrix", "pack", "quantize",
           "golden", "golden_acc", "golden_blocked", "Gemv", "generate", "ACT_GROUP", "sbits",
           "wide_mul_parts"]



class GemvOutput(enum.Enum):
    WIDE = "wide"
    INT8 = "int8"


def sbits(maxabs: int) -> int:
    """Signed width holding -maxabs..maxabs."""
    return max(2, int(maxabs).bit_length() + 1)


@dataclass(frozen=True)
class GemvParams:
    """Parameters of :class:`Gemv`; validated on construction."""

    fmt: WeightFormat = WeightFormat.INT8_ROW
    lanes: int = 4
    word_bits: int = 256
    group: int = 0          # 32/64/128 for the group formats, 0 for INT8_ROW
    max_cols: int = 4096
    max_rows: int = 4096
    scale_bits: int = 12    # signed mantissa of scales and minima (12: fp16 exact)
    max_shift: int = 24     # largest dr / mr
    guard: int = 8          # fraction bits kept below the largest scale's LSB
    output: GemvOutput = GemvOutput.WIDE
    out_mult_bits: int = 16
    dsp_pack: bool = False  # two lanes' products in one multiplier sharing the activation
    act_exp_max: int = 0    # block-scaled activations: largest exponent (0: plain INT8 x)
    runtime_group: bool = False  # group chosen per job on the group_words port (<= group)
    x_fanout: int = 4       # lanes fed by one copy of the activation RAM (broadcast fan-out)
    mul_style: MulStyle = MulStyle.INFER  # ECP5: MULT18X18D instances with their own registers

    def __post_init__(self):
        c = "GemvParams"
        if not isinstance(self.fmt, WeightFormat):
            raise ValueError(f"{c}.fmt must be a WeightFormat, got {self.fmt!r}")
        if not isinstance(self.output, GemvOutput):
            raise ValueError(f"{c}.output must be a GemvOutput, got {self.output!r}")
        if not isinstance(self.mul_style, MulStyle):
            raise ValueError(f"{c}.mul_style must be a MulStyle, got {self.mul_style!r}")
        check_int(c, "lanes", self.lanes, 1, 64)
        check_int(c, "word_bits", self.word_bits, 4, 4096)
        check_int(c, "max_cols", self.max_cols, 1, 1 << 16)
        check_int(c, "max_rows", self.max_rows, 1, 1 << 20)
        check_int(c, "scale_bits", self.scale_bits, 2, 24)
        check_int(c, "max_shift", self.max_shift, 0, 40)
        check_int(c, "guard", self.guard, 0, 24)
        check_int(c, "out_mult_bits", self.out_mult_bits, 1, 24)
        check_int(c, "act_exp_max", self.act_exp_max, 0, 31)
        check_int(c, "x_fanout", self.x_fanout, 1, 64)
        if not isinstance(self.runtime_group, bool):
            raise ValueError(f"{c}.runtime_group must be a bool, got {self.runtime_group!r}")
        if not isinstance(self.dsp_pack, bool):
            raise ValueError(f"{c}.dsp_pack must be a bool, got {self.dsp_pack!r}")
        if self.word_bits % (self.lanes * self.fmt.bits):
            raise ValueError(f"{c}: word_bits {self.word_bits} is not a multiple of lanes x weight "
                             f"bits ({self.lanes} x {self.fmt.bits})")
        if self.fmt.grouped:
            if self.group not in (32, 64, 128):
                raise ValueError(f"{c}.group must be 32, 64 or 128 for {self.fmt.value}, got {self.group!r}")
            if self.group % self.k:
                raise ValueError(f"{c}: group {self.group} is not a multiple of k = {self.k} "
                                 f"(word_bits / (lanes * {self.fmt.bits}))")
            if self.max_cols % self.group:
                raise ValueError(f"{c}: max_cols {self.max_cols} is not a multiple of group {self.group}")
        else:
            if self.group != 0:
                raise ValueError(f"{c}.group must be 0 for int8-row, got {self.group!r}")
        if self.max_cols % self.k:
            raise ValueError(f"{c}: max_cols {self.max_cols} is not a multiple of k = {self.k}")
        if self.act_exp_max and ACT_GROUP % self.k:
            raise ValueError(f"{c}: with act_exp_max, k = {self.k} must divide the activation "
                             f"group {ACT_GROUP} (word_bits / (lanes * {self.fmt.bits}))")
        if self.runtime_group:
            if not self.fmt.grouped:
                raise ValueError(f"{c}.runtime_group needs a grouped format, got {self.fmt.value}")
            if 32 % self.k:
                raise ValueError(f"{c}: runtime_group needs k = {self.k} to divide the smallest group 32")
        if self.max_rows % self.lanes:
            raise ValueError(f"{c}: max_rows {self.max_rows} is not a multiple of lanes {self.lanes}")
        if self.dsp_pack and self.lanes % 2:
            raise ValueError(f"{c}: dsp_pack needs an even number of lanes, got {self.lanes}")
        if self.mul_style is MulStyle.ECP5:
            if self.dsp_pack:
                raise ValueError(f"{c}: dsp_pack needs 27-bit multiplier operands; mul_style ecp5 "
                                 f"(MULT18X18D) has {ECP5_MAX_BITS}")
            if self.scale_bits > ECP5_MAX_BITS or self.out_mult_bits + 1 > ECP5_MAX_BITS:
                raise ValueError(f"{c}: mul_style ecp5 needs scale_bits <= {ECP5_MAX_BITS} and "
                                 f"out_mult_bits <= {ECP5_MAX_BITS - 1}, got {self.scale_bits} "
                                 f"and {self.out_mult_bits}")
        lim = 62 - (self.out_mult_bits if self.output is GemvOutput.INT8 else 0)
        if self.acc_width > lim:
            raise ValueError(f"{c}: accumulator width {self.acc_width} exceeds {lim} bits")

    # --- derived sizes ------------------------------------------------------------------
    @property
    def k(self) -> int:
        """MACs per lane per cycle."""
        return self.word_bits // (self.lanes * self.fmt.bits)

    @property
    def x_copies(self) -> int:
        """Copies of the activation RAM, each feeding ``x_fanout`` lanes' multipliers from its
        own output register (a placer can put each next to its lanes; synthesis cannot merge
        them as it merges equal registers)."""
        return -(-self.lanes // self.x_fanout)

    @property
    def group_len(self) -> int:
        """Columns per scale: ``group`` or the whole row (``max_cols`` bounds it)."""
        return self.group if self.fmt.grouped else self.max_cols

    @property
    def q_absmax(self) -> int:
        return max(-self.fmt.q_min, self.fmt.q_max)

    @property
    def prod_width(self) -> int:
        return sbits(self.q_absmax * 128)

    @property
    def dot_width(self) -> int:
        return sbits((self.group_len * self.q_absmax * 128) << self.act_exp_max)

    @property
    def xsum_width(self) -> int:
        return sbits((self.group_len * 128) << self.act_exp_max)

    @property
    def exp_bits(self) -> int:
        """Bits of one activation exponent on the ``x`` stream (0 without exponents)."""
        return self.act_exp_max.bit_length() if self.act_exp_max else 0

    @property
    def group_words_width(self) -> int:
        return max(1, (self.group_len // self.k).bit_length())

    @property
    def shift_width(self) -> int:
        return max(1, self.max_shift.bit_length())

    @property
    def term_width(self) -> int:
        w = self.dot_width + self.scale_bits + self.guard
        if self.fmt.has_min:
            w = max(w, self.xsum_width + self.scale_bits + self.guard) + 1
        return w

    @property
    def max_groups(self) -> int:
        return self.max_cols // (32 if self.runtime_group else self.group_len)

    @property
    def acc_width(self) -> int:
        """Row accumulator: the smaller of (term width + group count bits) and the bound over
        a whole row, ``sum |q x 2**e| * 2**(scale_bits - 1 + guard)`` plus half an LSB of
        rounding per group (the min term counts as one more weight of magnitude 1)."""
        by_terms = self.term_width + max(0, (self.max_groups - 1).bit_length())
        row = (self.max_cols * 128 * (self.q_absmax + int(self.fmt.has_min))) << self.act_exp_max
        by_row = sbits((row << (self.scale_bits - 1 + self.guard)) + self.max_groups)
        return min(by_terms, by_row)

    @property
    def out_width(self) -> int:
        return self.acc_width if self.output is GemvOutput.WIDE else 8

    @property
    def words_width(self) -> int:
        return max(1, (self.max_cols // self.k).bit_length())

    @property
    def tiles_width(self) -> int:
        return max(1, (self.max_rows // self.lanes).bit_length())

    @property
    def out_shift_width(self) -> int:
        return max(1, (self.acc_width + self.out_mult_bits).bit_length())

    @property
    def tree_stages(self) -> int:
        """Register stages of the per-lane adder tree (one every two levels)."""
        levels = max(0, (self.k - 1).bit_length())
        return (levels + 1) // 2

    @property
    def scale_stages(self) -> int:
        """Register stages of the (split, pipelined) scale multipliers."""
        s = wide_mul_stages(self.dot_width)
        if self.fmt.has_min:
            s = max(s, wide_mul_stages(self.xsum_width))
        return s

    @property
    def pipeline_stages(self) -> int:
        """Register stages of the datapath from a weight word to its row result."""
        # in regs + RAM read, RAM output register, multiply, tree, group acc, scale mult,
        # bias, shift, row acc (+ requant: split multiply, bias, shift, range flag, saturate)
        base = 1 + 1 + 1 + self.tree_stages + 1 + self.scale_stages + 1 + 1 + 1
        if self.act_exp_max:
            base += 1   # exponent shift of the lane sums
        if self.output is GemvOutput.INT8:
            base += wide_mul_stages(self.acc_width) + 4
        return base

    @property
    def latency(self) -> int:
        """Cycles from accepting a row tile's last word to its output beat (no stall):
        the datapath and the output FIFO's two cycles (write, read buffer)."""
        return self.pipeline_stages + 2

    @property
    def out_fifo_depth(self) -> int:
        """Row results the output FIFO holds: every row tile in flight when rows are one
        word long, so a job never waits for credits unless ``o`` stalls."""
        return self.latency + 1

    def words(self, rows: int, cols: int) -> int:
        return (rows // self.lanes) * (cols // self.k)

    def cycles(self, rows: int, cols: int) -> int:
        """Cycles from the first weight word accepted to the last output beat accepted,
        inclusive, when no stream stalls: one word per cycle plus the pipeline latency."""
        return self.words(rows, cols) + self.latency

    def load_cycles(self, cols: int) -> int:
        """Cycles to load the activation vector (one beat of K activations per cycle)."""
        return cols // self.k

    def utilization(self, rows: int, cols: int, cycles: int) -> float:
        return rows * cols / (self.lanes * self.k * cycles)

    def check_shape(self, rows: int, cols: int) -> None:
        if rows <= 0 or rows % self.lanes or rows > self.max_rows:
            raise ValueError(f"rows must be a positive multiple of {self.lanes} <= {self.max_rows}, got {rows}")
        unit = self.group if self.fmt.grouped else self.k
        if cols <= 0 or cols % unit or cols > self.max_cols:
            raise ValueError(f"cols must be a positive multiple of {unit} <= {self.max_cols}, got {cols}")

    # --- one memory stream of weights and scales (decode engine) ------------------------
    @property
    def scale_lane_bits(self) -> int:
        return (self.scale_bits + self.shift_width) * (2 if self.fmt.has_min else 1)

    @property
    def scale_beat_bits(self) -> int:
        """Bits of one ``s`` beat (P lanes)."""
        return self.lanes * self.scale_lane_bits

    def scale_words_before(self, g: int) -> int:
        """Scale words of a row tile's stream that precede group ``g``'s weight words: the
        tile's scale beats form one bit stream (beat ``g`` at bit ``g * scale_beat_bits``),
        cut into memory words, each inserted just before the first group that needs it."""
        return -(-(g + 1) * self.scale_beat_bits // self.word_bits)

    def tile_stream_words(self, cols: int, group: int | None = None) -> int:
        """Memory words of one row tile in the single-stream layout (weights of all its
        groups plus ``ceil(groups * scale_beat_bits / word_bits)`` scale words, see
        :meth:`scale_words_before`).  ``group``: the matrix's group (default ``self.group``;
        the whole row for ``INT8_ROW``)."""
        group = (group or self.group) if self.fmt.grouped else cols
        G = cols // group
        return self.scale_words_before(G - 1) + G * (group // self.k)

    # --- layouts ------------------------------------------------------------------------
    def scale_lane_layout(self) -> data.StructLayout:
        fields = {"dm": signed(self.scale_bits), "dr": unsigned(self.shift_width)}
        if self.fmt.has_min:
            fields.update({"mm": signed(self.scale_bits), "mr": unsigned(self.shift_width)})
        return data.StructLayout(fields)

    def scale_layout(self) -> data.ArrayLayout:
        return data.ArrayLayout(self.scale_lane_layout(), self.lanes)

    def weight_layout(self) -> data.ArrayLayout:
        shape = signed(self.fmt.bits) if self.fmt.is_signed else unsigned(self.fmt.bits)
        return data.ArrayLayout(data.ArrayLayout(shape, self.k), self.lanes)

    def x_layout(self):
        """K int8 activations; with ``act_exp_max`` a struct ``{x, e}``: the K activations and
        the exponent of their 32-column activation group (``K`` divides 32)."""
        if self.act_exp_max:
            return data.StructLayout({"x": data.ArrayLayout(signed(8), self.k),
                                      "e": unsigned(self.exp_bits)})
        return data.ArrayLayout(signed(8), self.k)

    def out_layout(self) -> data.ArrayLayout:
        return data.ArrayLayout(signed(self.out_width), self.lanes)


# --- packer -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackedMatrix:
    """A matrix in the engine's integer form (see :func:`pack`)."""

    params: GemvParams
    q: np.ndarray      # (rows, cols) integer weights
    dm: np.ndarray     # (rows, groups) scale mantissas
    dr: np.ndarray     # (rows, groups) scale right shifts
    mm: np.ndarray | None
    mr: np.ndarray | None
    emax: int          # scale = dm * 2**(emax - dr)

    @property
    def rows(self) -> int:
        return self.q.shape[0]

    @property
    def cols(self) -> int:
        return self.q.shape[1]

    @property
    def acc_exp(self) -> int:
        """The accumulator's LSB is ``2**acc_exp`` (times the activation scale)."""
        return self.emax - self.params.guard

    def scales(self) -> np.ndarray:
        """The scales as exact float64 (``dm * 2**(emax - dr)``)."""
        return np.ldexp(self.dm.astype(np.float64), (self.emax - self.dr).astype(np.int64))

    def mins(self) -> np.ndarray | None:
        if self.mm is None:
            return None
        return np.ldexp(self.mm.astype(np.float64), (self.emax - self.mr).astype(np.int64))

    def weight_words(self) -> list[int]:
        """The ``w`` stream: for each row tile, for each column word, one ``word_bits`` int.

        Bits ``[(p*K + k)*b, (p*K + k + 1)*b)`` of word ``(t, c)`` hold
        ``q[t*P + p, c*K + k]`` (``b`` = 4 or 8 bits, two's complement or unsigned).
        """
        p = self.params
        b, K, P = p.fmt.bits, p.k, p.lanes
        mask = (1 << b) - 1
        rows, cols = self.q.shape
        u = (self.q.astype(np.int64) & mask).astype(object)
        # (tiles, P, words, K) -> (tiles, words, P*K)
        u = u.reshape(rows // P, P, cols // K, K).transpose(0, 2, 1, 3).reshape(-1, P * K)
        shifts = [1 << (e * b) for e in range(P * K)]
        return [int(sum(int(v) * s for v, s in zip(row, shifts))) for row in u]

    def scale_words(self) -> list[int]:
        """The ``s`` stream: for each row tile, for each group, one beat of P lane entries.

        Lane ``p`` occupies ``lane_bits`` bits from ``p * lane_bits``: ``dm`` (signed
        ``scale_bits``), ``dr`` (``shift_width``) and for the min format ``mm``, ``mr``.
        """
        p = self.params
        sb, rw = p.scale_bits, p.shift_width
        fields = [(self.dm, sb), (self.dr, rw)]
        if p.fmt.has_min:
            fields += [(self.mm, sb), (self.mr, rw)]
        lane_bits = sum(w for _, w in fields)
        P = p.lanes
        tiles, groups = self.rows // P, self.dm.shape[1]
        out = []
        for t in range(tiles):
            for g in range(groups):
                word = 0
                for lane in range(P):
                    off = lane * lane_bits
                    for arr, w in fields:
                        word |= (int(arr[t * P + lane, g]) & ((1 << w) - 1)) << off
                        off += w
                out.append(word)
        return out


def pack(p: GemvParams, q, d, m=None, emax: int | None = None) -> PackedMatrix:
    """Pack integer weights ``q`` (rows x cols) with float scales ``d`` (rows x groups; for
    ``INT8_ROW`` rows or rows x 1) and for ``INT4_GROUP_MIN`` minima ``m``.

    Scales/minima become ``M * 2**(emax - r)`` (:func:`~fpgallm.units.weights.mant_exp`,
    exact for fp16 values); ``emax`` defaults to the largest exponent in the matrix.
    """
    q = np.asarray(q, dtype=np.int64)
    if q.ndim != 2:
        raise ValueError("pack: q must be 2-D")
    rows, cols = q.shape
    p.check_shape(rows, cols)
    if q.min() < p.fmt.q_min or q.max() > p.fmt.q_max:
        raise ValueError(f"pack: q outside [{p.fmt.q_min}, {p.fmt.q_max}] for {p.fmt.value}")
    groups = cols // p.group if p.fmt.grouped else 1
    d = np.asarray(d, dtype=np.float64).reshape(rows, groups)
    dM, dE = mant_exp(d, p.scale_bits)
    exps = [dE]
    if p.fmt.has_min:
        if m is None:
            raise ValueError("pack: int4-group-min needs minima m")
        m = np.asarray(m, dtype=np.float64).reshape(rows, groups)
        mM, mE = mant_exp(m, p.scale_bits)
        exps.append(mE)
    elif m is not None:
        raise ValueError(f"pack: {p.fmt.value} has no minimum")
    if emax is None:
        emax = int(max(e.max() for e in exps))
        if emax < -900:  # all zero
            emax = 0
    dm, dr = align(dM, np.maximum(dE, emax - 1000), emax, p.max_shift)
    mm = mr = None
    if p.fmt.has_min:
        mm, mr = align(mM, np.maximum(mE, emax - 1000), emax, p.max_shift)
    return PackedMatrix(p, q, dm, dr, mm, mr, emax)


def quantize(p: GemvParams, w) -> PackedMatrix:
    """Quantize a float matrix the way GGUF does (Q8_0 / Q4_0 / Q4_1 rules, any group) or
    symmetric per row for ``INT8_ROW``; scales rounded to fp16 like GGUF stores them."""
    w = np.asarray(w, dtype=np.float64)
    rows, cols = w.shape
    g = p.group if p.fmt.grouped else cols
    blk = w.reshape(rows, cols // g, g)
    f16 = lambda a: a.astype(np.float16).astype(np.float64)  # noqa: E731
    with np.errstate(divide="ignore", invalid="ignore"):
        if p.fmt in (WeightFormat.INT8_ROW, WeightFormat.INT8_GROUP):
            amax = np.abs(blk).max(axis=-1)
            d = f16(amax / 127.0)
            q = np.where(d[..., None] > 0, np.round(blk / d[..., None]), 0)
            return pack(p, np.clip(q, -128, 127).reshape(rows, cols).astype(np.int64), d)
        if p.fmt is WeightFormat.INT4_GROUP:
            idx = np.abs(blk).argmax(axis=-1)
            mx = np.take_along_axis(blk, idx[..., None], -1)[..., 0]
            d = f16(mx / -8.0)
            q = np.where(d[..., None] != 0, np.floor(blk / d[..., None] + 8.5), 8)
            q = np.clip(q, 0, 15) - 8
            return pack(p, q.reshape(rows, cols).astype(np.int64), d)
        mn, mx = blk.min(axis=-1), blk.max(axis=-1)
        d = f16((mx - mn) / 15.0)
        mnh = f16(mn)
        q = np.where(d[..., None] > 0, np.floor((blk - mnh[..., None]) / d[..., None] + 0.5), 0)
        q = np.clip(q, 0, 15)
        return pack(p, q.reshape(rows, cols).astype(np.int64), d, mnh)


# --- golden -------------------------------------------------------------------------------


def golden_blocked(pm: PackedMatrix, x, exps=None, qf: np.ndarray | None = None) -> np.ndarray:
    """Bit-exact wide accumulators ``(B, rows)`` for ``B`` block-scaled INT8 activation vectors.

    ``x`` is ``(B, cols)`` int8, ``exps`` ``(B, cols // ACT_GROUP)`` exponents ``>= 0`` (or
    None: all 0): activation ``j`` is ``x[j] * 2**exps[j // 32]``.  Each 32-column partial dot
    product (and for ``INT4_GROUP_MIN`` each 32-column partial activation sum) is shifted left
    by its exponent, then the partials of one weight group are summed and the group's scale
    multiply and rounding follow as in :func:`golden_acc` -- exactly what :class:`Gemv`
    computes with ``act_exp_max`` (it shifts each lane's K-column sum, K dividing 32).
    ``qf``: the weights as float32 (optional cache; the 32-column partials are integers
    below ``2**20``, exact in float32 whatever the summation order).
    """
    x = np.asarray(x, dtype=np.int64)
    rows, cols = pm.q.shape
    if x.ndim != 2 or x.shape[1] != cols or x.min() < -128 or x.max() > 127:
        raise ValueError(f"golden_blocked: x must be (B, {cols}) int8 values")
    Bn = x.shape[0]
    groups = pm.dm.shape[1]
    g = cols // groups
    if exps is None:
        if cols % ACT_GROUP:   # plain INT8 vector: no 32-column partials needed
            D = np.stack([(pm.q.astype(np.int64).reshape(rows, groups, g) * x[b].reshape(groups, g)).sum(-1)
                          for b in range(Bn)])
            S = x.reshape(Bn, groups, g).sum(-1)
            return _scale_terms(pm, D, S)
        exps = np.zeros((Bn, cols // ACT_GROUP), np.int64)
    exps = np.asarray(exps, dtype=np.int64)
    Ga = cols // ACT_GROUP
    if exps.shape != (Bn, Ga) or exps.min() < 0 or exps.max() > 40:
        raise ValueError(f"golden_blocked: exps must be ({Bn}, {Ga}) integers in [0, 40]")
    if g % ACT_GROUP:
        raise ValueError(f"golden_blocked: weight group {g} is not a multiple of {ACT_GROUP}")
    per = g // ACT_GROUP
    if qf is None:
        qf = pm.q.astype(np.float32)
    qf3 = qf.reshape(rows, Ga, ACT_GROUP)
    xf = x.astype(np.float32).reshape(Bn, Ga, ACT_GROUP)
    D = np.stack([np.einsum("rgk,gk->rg", qf3, xf[b]) for b in range(Bn)]).astype(np.int64)
    D = np.left_shift(D, exps[:, None, :]).reshape(Bn, rows, groups, per).sum(-1)
    S = np.left_shift(x.reshape(Bn, Ga, ACT_GROUP).sum(-1), exps).reshape(Bn, groups, per).sum(-1)
    return _scale_terms(pm, D, S)


def _scale_terms(pm: PackedMatrix, D: np.ndarray, S: np.ndarray) -> np.ndarray:
    """``sum_g round_shift((D * dm) << guard, dr) [+ round_shift((S * mm) << guard, mr)]``
    for group dot products ``D`` ``(B, rows, groups)`` and activation sums ``S`` ``(B, groups)``."""
    p = pm.params
    t = round_shift((D * pm.dm[None]) << p.guard, pm.dr[None])
    if p.fmt.has_min:
        t = t + round_shift((S[:, None, :] * pm.mm[None]) << p.guard, pm.mr[None])
    return t.sum(-1)


def golden_acc(pm: PackedMatrix, x, exps=None) -> np.ndarray:
    """Bit-exact wide accumulators (rows,) for activation vector ``x`` (int8, cols) and, for
    block-scaled activations, its exponents ``exps`` (cols // 32,) (:func:`golden_blocked`)."""
    x = np.asarray(x, dtype=np.int64)
    if x.shape != (pm.cols,) or x.min() < -128 or x.max() > 127:
        raise ValueError(f"golden: x must be {pm.cols} int8 values")
    e = None if exps is None else np.asarray(exps, dtype=np.int64)[None]
    return golden_blocked(pm, x[None], e)[0]


def golden(pm: PackedMatrix, x, out_mult: int = 1, out_shift: int = 0, exps=None) -> np.ndarray:
    """Bit-exact engine output (rows,) as int64: accumulators, or INT8 after requantization."""
    p = pm.params
    acc = golden_acc(pm, x, exps)
    if p.output is GemvOutput.WIDE:
        return acc
    if not 0 <= out_mult < (1 << p.out_mult_bits):
        raise ValueError(f"out_mult must be in [0, {(1 << p.out_mult_bits) - 1}], got {out_mult}")
    if not 0 <= out_shift < (1 << p.out_shift_width) or out_shift > 62:
        raise ValueError(f"out_shift must be in [0, {min(62, (1 << p.out_shift_width) - 1)}], got {out_shift}")
    return saturate(round_shift(acc * out_mult, out_shift), 8)


def requant_params(pm: PackedMatrix, x_scale: float, y_scale: float, mult_bits: int | None = None):
    """``(out_mult, out_shift)`` so that INT8 output ``y`` means ``y * y_scale``."""
    mult_bits = mult_bits or pm.params.out_mult_bits
    ratio = (2.0 ** pm.acc_exp) * x_scale / y_scale
    frac, ex = np.frexp(ratio)
    shift = mult_bits - int(ex)
    mult = int(np.floor(frac * 2.0 ** mult_bits + 0.5))
    if mult >= 1 << mult_bits:
        mult >>= 1
        shift -= 1
    while shift < 0:
        mult, shift = mult << 1, shift + 1
    return mult, shift


# --- RTL ----------------------------------------------------------------------------------


def wide_mul_parts(width: int) -> int:
    """18-bit pieces :func:`wide_mul` splits a ``width``-bit signed operand into."""
    return 1 if width <= 18 else 1 + -(-(width - 18) // 17)


def wide_mul_stages(width: int) -> int:
    """Cycles of :func:`wide_mul`: operand register, product, product register, adder levels."""
    return 3 + (wide_mul_parts(width) - 1).bit_length()


def wide_mul(m: Module, a, b, name: str, style: MulStyle = MulStyle.INFER):
    """Registered ``a * b`` for a wide signed ``a`` and a signed ``b`` of at most 18 bits.

    ``a`` is split into 17-bit unsigned pieces (the top piece signed, at most 18 bits), each
    piece times ``b`` is one 18 x 18 multiplier (MULT18X18D, DSP48E2) between its own
    operand register and two product registers (fan-out one on both sides, so the placer
    keeps them beside the DSP; DSP48E2 absorbs them as A/B/M/P registers), and the shifted
    partial products are summed pairwise, one register level per adder level:
    :func:`wide_mul_stages` cycles in all, for timing on small FPGAs.  The operand and
    first product registers are :func:`~fpgallm.hdl.dsp.registered_mul`'s (the MULT18X18D's
    own with ``style`` ECP5).
    """
    a, b = Value.cast(a), Value.cast(b)
    n = len(a)
    parts, off = [], 0
    while n - off > 18:
        parts.append((off, Cat(a[off:off + 17], Const(0, 1)).as_signed()))
        off += 17
    parts.append((off, a[off:].as_signed()))
    regs = []
    for i, (o, piece) in enumerate(parts):
        r = registered_mul(m, piece, b, f"{name}_m{i}", style, in_regs=True)
        q = Signal.like(r, name=f"{name}_pq{i}", reset_less=True)
        m.d.sync += q.eq(r)
        regs.append((o, q))
    level = 0
    while len(regs) > 1:
        level += 1
        nxt = []
        for j in range(0, len(regs), 2):
            o0, r0 = regs[j]
            val = r0 if j + 1 == len(regs) else r0 + (regs[j + 1][1] << (regs[j + 1][0] - o0))
            r = Signal(signed(min(len(val), n + len(b) + 1)), name=f"{name}_s{level}_{j // 2}",
                       reset_less=True)
            m.d.sync += r.eq(val)
            nxt.append((o0, r))
        regs = nxt
    return regs[0][1]


def _tree(m: Module, values: list, stages_every: int, name: str):
    """Sum ``values`` in a binary tree registered every ``stages_every`` levels."""
    level = 0
    while len(values) > 1:
        nxt = []
        for i in range(0, len(values), 2):
            if i + 1 < len(values):
                nxt.append(values[i] + values[i + 1])
            else:
                nxt.append(values[i])
        level += 1
        values = nxt
        if level % stages_every == 0 or len(values) == 1:
            regs = []
            for j, v in enumerate(values):
                r = Signal(signed(len(v)), name=f"{name}_l{level}_{j}", reset_less=True)
                m.d.sync += r.eq(v)
                regs.append(r)
            values = regs
    return values[0]


def _delay(m: Module, value, n: int, name: str, data: bool = False):
    """``value`` delayed by ``n`` cycles; ``data``: registers without reset (datapath values
    qualified by a valid bit, so the reset net reaches only the control flip-flops)."""
    for i in range(n):
        r = Signal.like(value, name=f"{name}_d{i}", reset_less=data)
        m.d.sync += r.eq(value)
        value = r
    return value


def packed_products(m: Module, hi, lo, name: str):
    """The packed operand ``(hi << 18) + lo`` (combinational) whose product with an int8 ``x``
    carries ``hi * x`` and ``lo * x`` in one multiplier.

    Valid for |lo * x| < 2**17 (8-bit weights and activations): the low 18 bits of the
    product are ``lo * x`` as a signed number; the high part is the rest plus its borrow."""
    a = Signal(signed(len(hi) + 19), name=f"{name}_a")
    m.d.comb += a.eq((hi.as_signed() << 18) + lo.as_signed())
    return a


class Gemv(wiring.Component):
    """The RTL of :mod:`fpgallm.units.gemv` (see the module docstring for the contract)."""

    def __init__(self, params: GemvParams):
        self.params = params
        p = params
        super().__init__({
            "x": In(stream.Signature(p.x_layout())),
            "w": In(stream.Signature(p.weight_layout())),
            "s": In(stream.Signature(p.scale_layout())),
            "o": Out(stream.Signature(p.out_layout())),
            "cols_words": In(unsigned(p.words_width)),
            "row_tiles": In(unsigned(p.tiles_width)),
            **({"group_words": In(unsigned(p.group_words_width))} if p.runtime_group else {}),
            "out_mult": In(unsigned(p.out_mult_bits)),
            "out_shift": In(unsigned(p.out_shift_width)),
        })

    def elaborate(self, platform):
        p = self.params
        P, K = p.lanes, p.k
        m = Module()
        # the datapath advances every cycle; flow control is by credits for the output FIFO
        m.submodules.ofifo = ofifo = SyncFIFOBuffered(width=p.out_layout().as_shape().width,
                                                       depth=p.out_fifo_depth)
        pending = Signal(range(p.out_fifo_depth + 1))   # row results in flight or in the FIFO
        credit = Signal()
        m.d.comb += credit.eq(pending != p.out_fifo_depth)

        # --- activation RAM and job control --------------------------------------------
        depth = p.max_cols // K
        running = Signal()
        waddr = Signal(range(depth + 1))
        m.d.comb += self.x.ready.eq(~running)
        rps = []
        for c in range(p.x_copies):
            xram = Memory(shape=unsigned(8 * K + p.exp_bits), depth=depth, init=[])
            m.submodules[f"xram{c}" if c else "xram"] = xram
            wp = xram.write_port()
            rps.append(xram.read_port(domain="sync"))
            m.d.comb += [wp.addr.eq(waddr), wp.data.eq(self.x.payload.as_value()),
                         wp.en.eq(self.x.valid & ~running)]
        # the end-of-row and end-of-group flags are registers (set one word ahead), so the
        # accept decision is a few gates from flip-flops, not a counter compare
        last_load = waddr == self.cols_words - 1
        col = Signal(range(depth + 1))
        gw = Signal(range(max(2, p.group_len // K + 1)))
        tile = Signal(p.tiles_width)
        last_row = Signal()
        with m.If(self.x.valid & ~running):
            m.d.sync += waddr.eq(Mux_(last_load, 0, waddr + 1))
            with m.If(last_load):
                m.d.sync += [running.eq(1), last_row.eq(self.cols_words == 1)]
        if p.runtime_group:
            last_group = Signal()
            with m.If(self.x.valid & ~running & last_load):
                m.d.sync += last_group.eq(self.group_words == 1)
        elif p.fmt.grouped:
            last_group = gw == (p.group // K) - 1
        else:
            last_group = last_row
        last_tile = tile == self.row_tiles - 1
        fire = Signal()
        room = ~last_row | credit
        m.d.comb += [
            fire.eq(running & room & self.w.valid & (~last_group | self.s.valid)),
            self.w.ready.eq(running & room & (~last_group | self.s.valid)),
            self.s.ready.eq(running & room & self.w.valid & last_group),
            *[rp.addr.eq(col) for rp in rps], *[rp.en.eq(1) for rp in rps],
        ]
        popped = self.o.valid & self.o.ready
        with m.If((fire & last_row) & ~popped):
            m.d.sync += pending.eq(pending + 1)
        with m.Elif(~(fire & last_row) & popped):
            m.d.sync += pending.eq(pending - 1)
        with m.If(fire):
            m.d.sync += [col.eq(Mux_(last_row, 0, col + 1)),
                         last_row.eq(Mux_(last_row, self.cols_words == 1, col + 2 == self.cols_words))]
            if p.fmt.grouped:
                m.d.sync += gw.eq(Mux_(last_group, 0, gw + 1))
            if p.runtime_group:
                m.d.sync += last_group.eq(Mux_(last_group, self.group_words == 1,
                                               gw + 2 == self.group_words))
            with m.If(last_row):
                m.d.sync += tile.eq(Mux_(last_tile, 0, tile + 1))
                with m.If(last_tile):
                    m.d.sync += running.eq(0)

        # --- stage 1: input registers (RAM read aligned) --------------------------------
        v1, lg1, lr1 = Signal(), Signal(), Signal()
        w1 = Signal(p.weight_layout(), reset_less=True)
        s1 = Signal(p.scale_layout(), reset_less=True)
        m.d.sync += [v1.eq(fire), lg1.eq(last_group), lr1.eq(last_row), w1.eq(self.w.payload)]
        with m.If(last_group):
            m.d.sync += s1.eq(self.s.payload)
        # --- stage 1b: activation RAM output register (block RAM clock-to-out) ----------
        v1, lg1, lr1 = (_delay(m, v1, 1, "v1b"), _delay(m, lg1, 1, "lg1b"),
                        _delay(m, lr1, 1, "lr1b"))
        w1 = _delay(m, w1, 1, "w1b", data=True)
        s1 = _delay(m, s1, 1, "s1b", data=True)
        xqs = [_delay(m, rp.data, 1, f"xram{c}_q" if c else "xram_q", data=True) for c, rp in enumerate(rps)]
        xvs = [data.View(data.ArrayLayout(signed(8), K), xq[:8 * K]) for xq in xqs]
        xv = xvs[0]
        ex1 = xqs[0][8 * K:] if p.act_exp_max else None

        def xl(lane, k):   # lane's activation k, from its copy of the RAM
            return xvs[lane // p.x_fanout][k]

        # --- stage 2: multipliers (registered) ------------------------------------------
        v2, lg2, lr2 = Signal(), Signal(), Signal()
        s2 = Signal(p.scale_layout(), reset_less=True)
        m.d.sync += [v2.eq(v1), lg2.eq(lg1), lr2.eq(lr1), s2.eq(s1)]

        def wq(lane, k):
            q = w1[lane][k]
            return q if p.fmt.is_signed else Cat(q, Const(0, 1)).as_signed()

        prods = [[None] * K for _ in range(P)]
        if p.dsp_pack:
            for lane in range(0, P, 2):
                for k in range(K):
                    a = packed_products(m, wq(lane, k), wq(lane + 1, k), f"pk{lane}_{k}")
                    pr = registered_mul(m, a, xl(lane, k), f"prod{lane}_{k}", MulStyle.INFER,
                                        in_regs=False)
                    lo = pr[:18].as_signed()
                    hi = (pr >> 18) + lo[17]
                    prods[lane][k] = hi
                    prods[lane + 1][k] = lo
        else:
            for lane in range(P):
                for k in range(K):
                    prods[lane][k] = registered_mul(m, wq(lane, k), xl(lane, k), f"prod{lane}_{k}",
                                                    p.mul_style, in_regs=False)
        xs = None
        if p.fmt.has_min:
            xr = [Signal(signed(8), name=f"xr{k}", reset_less=True) for k in range(K)]
            m.d.sync += [xr[k].eq(xv[k]) for k in range(K)]

        # --- adder trees ----------------------------------------------------------------
        lane_sums = []
        for lane in range(P):
            vals = [prods[lane][k][:p.prod_width].as_signed() for k in range(K)]
            if K == 1:
                lane_sums.append(vals[0])
            else:
                lane_sums.append(_tree(m, vals, 2, f"t{lane}"))
        if p.fmt.has_min:
            xs = xr[0] if K == 1 else _tree(m, list(xr), 2, "tx")
        ts = p.tree_stages
        v3, lg3, lr3 = (_delay(m, v2, ts, "v"), _delay(m, lg2, ts, "lg"),
                        _delay(m, lr2, ts, "lr"))
        s3 = _delay(m, s2, ts, "s", data=True)
        if p.act_exp_max:
            # block-scaled activations: each lane's K-column sum (K divides the 32-column
            # activation group) shifted left by the group's exponent, one register stage
            e3 = _delay(m, ex1, 1 + ts, "e", data=True)
            shifted = []
            for lane in range(P):
                r = Signal(signed(p.dot_width), name=f"ls{lane}", reset_less=True)
                m.d.sync += r.eq(lane_sums[lane] << e3)
                shifted.append(r)
            lane_sums = shifted
            if p.fmt.has_min:
                r = Signal(signed(p.xsum_width), name="xs_sh", reset_less=True)
                m.d.sync += r.eq(xs << e3)
                xs = r
            v3, lg3, lr3 = (_delay(m, v3, 1, "v_e"), _delay(m, lg3, 1, "lg_e"),
                            _delay(m, lr3, 1, "lr_e"))
            s3 = _delay(m, s3, 1, "s_e", data=True)

        # --- group accumulate -----------------------------------------------------------
        v4, lr4 = Signal(), Signal()
        s4 = Signal(p.scale_layout(), reset_less=True)
        gacc = [Signal(signed(p.dot_width), name=f"gacc{lane}") for lane in range(P)]
        gdot = [Signal(signed(p.dot_width), name=f"gdot{lane}", reset_less=True) for lane in range(P)]
        gxa = Signal(signed(p.xsum_width))
        gxs = Signal(signed(p.xsum_width), reset_less=True)
        m.d.sync += [v4.eq(v3 & lg3), lr4.eq(lr3), s4.eq(s3)]
        with m.If(v3):
            for lane in range(P):
                tot = gacc[lane] + lane_sums[lane]
                m.d.sync += [gdot[lane].eq(tot), gacc[lane].eq(Mux_(lg3, 0, tot))]
            if p.fmt.has_min:
                tot = gxa + xs
                m.d.sync += [gxs.eq(tot), gxa.eq(Mux_(lg3, 0, tot))]

        # --- scale multiply -------------------------------------------------------------
        ss = p.scale_stages
        v5, lr5, s5 = (_delay(m, v4, ss, "v5"), _delay(m, lr4, ss, "lr5"),
                       _delay(m, s4, ss, "s5", data=True))
        pd, pmn = [], []
        for lane in range(P):
            r = wide_mul(m, gdot[lane], s4[lane].dm, f"pd{lane}", p.mul_style)
            pd.append(_delay(m, r, ss - wide_mul_stages(p.dot_width), f"pd{lane}", data=True))
            if p.fmt.has_min:
                r = wide_mul(m, gxs, s4[lane].mm, f"pm{lane}", p.mul_style)
                pmn.append(_delay(m, r, ss - wide_mul_stages(p.xsum_width), f"pm{lane}", data=True))

        # --- round: bias add, then shift ------------------------------------------------
        v6, lr6 = Signal(), Signal()
        s6 = Signal(p.scale_layout(), reset_less=True)
        bw = p.term_width + 1
        bd = [Signal(signed(bw), name=f"bd{lane}", reset_less=True) for lane in range(P)]
        bm = [Signal(signed(bw), name=f"bm{lane}", reset_less=True) for lane in range(P)]

        def biased(val, r):
            bias = (Const(1, unsigned(p.max_shift + 1)) << r) >> 1
            return (val.as_signed() << p.guard) + bias

        m.d.sync += [v6.eq(v5), lr6.eq(lr5), s6.eq(s5)]
        for lane in range(P):
            m.d.sync += bd[lane].eq(biased(pd[lane], s5[lane].dr))
            if p.fmt.has_min:
                m.d.sync += bm[lane].eq(biased(pmn[lane], s5[lane].mr))
        v7, lr7 = Signal(), Signal()
        term = [Signal(signed(p.term_width + 1), name=f"term{lane}", reset_less=True) for lane in range(P)]
        m.d.sync += [v7.eq(v6), lr7.eq(lr6)]
        for lane in range(P):
            t = bd[lane] >> s6[lane].dr
            if p.fmt.has_min:
                t = t + (bm[lane] >> s6[lane].mr)
            m.d.sync += term[lane].eq(t)

        # --- row accumulate -------------------------------------------------------------
        v8 = Signal()
        racc = [Signal(signed(p.acc_width), name=f"racc{lane}") for lane in range(P)]
        acc = [Signal(signed(p.acc_width), name=f"acc{lane}", reset_less=True) for lane in range(P)]
        m.d.sync += v8.eq(v7 & lr7)
        with m.If(v7):
            for lane in range(P):
                tot = racc[lane] + term[lane]
                m.d.sync += [acc[lane].eq(tot), racc[lane].eq(Mux_(lr7, 0, tot))]

        def emit(valid, values):
            res = Signal(p.out_layout())
            m.d.comb += [res[lane].eq(values[lane]) for lane in range(P)]
            m.d.comb += [ofifo.w_en.eq(valid), ofifo.w_data.eq(res.as_value()),
                         self.o.valid.eq(ofifo.r_rdy), self.o.payload.eq(ofifo.r_data),
                         ofifo.r_en.eq(self.o.ready)]

        if p.output is GemvOutput.WIDE:
            emit(v8, acc)
            return m

        # --- requantize: multiply, bias, shift, saturate (the variable shift and the
        # saturation are separate stages: together they are the ECP5 critical path) ------
        rs = wide_mul_stages(p.acc_width)
        rq_stages = rs + 4   # split multiply, bias, shift, two saturation stages
        v11 = _delay(m, v8, rq_stages, "v_rq")
        mw = p.acc_width + p.out_mult_bits + 1
        rb = [Signal(signed(mw + 1), name=f"rq_b{lane}", reset_less=True) for lane in range(P)]
        rsh = [Signal(signed(mw + 1), name=f"rq_s{lane}", reset_less=True) for lane in range(P)]
        maxs = (1 << p.out_shift_width) - 1
        out = []
        # out_mult and out_shift are held for the whole job: they travel lane to lane
        # through a register chain, so no net fans out to every lane's multipliers and
        # shifters (Yosys would merge equal per-lane copies into one flip-flop); the chain is
        # shorter than the datapath before the requantizer, so a job's first row result sees
        # its own out_mult and out_shift in every lane
        chain = min(P, p.pipeline_stages - rq_stages - 2)
        cfg = []
        prev_m = Cat(self.out_mult, Const(0, 1)).as_signed()
        prev_s = self.out_shift
        for i in range(chain):
            rm = Signal(signed(len(prev_m)), name=f"rq_m{i}", reset_less=True)
            rsft = Signal(len(prev_s), name=f"rq_sh{i}", reset_less=True)
            rbias = Signal(maxs + 1, name=f"rq_bias{i}", reset_less=True)   # the rounding bias of the shift
            m.d.sync += [rm.eq(prev_m), rsft.eq(prev_s),
                         rbias.eq((Const(1, unsigned(maxs + 1)) << prev_s) >> 1)]
            cfg.append((prev_m := rm, rbias, prev_s := rsft))
        for lane in range(P):
            mult, bias, shift = cfg[min(lane, chain - 1)]
            mul = wide_mul(m, acc[lane], mult, f"rq_mul{lane}", p.mul_style)
            m.d.sync += [rb[lane].eq(mul + bias), rsh[lane].eq(rb[lane] >> shift)]
            out.append(hdl_saturate_staged(m, rsh[lane], 8, f"rq_o{lane}"))
        emit(v11, out)
        return m


def Mux_(c, a, b):
    from amaranth.hdl import Mux

    return Mux(c, a, b)


def generate(params: GemvParams, top: str = "fpgallm_gemv") -> Emitted:
    """Verilog of :class:`Gemv` for ``params``."""
    return dataclasses.replace(to_verilog(Gemv(params), top, params),
                               sim_sources=sim_sources(params.mul_style))
