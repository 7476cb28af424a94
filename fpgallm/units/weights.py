"""Weight formats of the matrix engines and the conversions shared by packers and goldens.

Formats (:class:`WeightFormat`); ``q`` is the integer a multiplier sees, ``d`` a scale and
``m`` a minimum, both fp16 in GGUF:

============== ================== ====================== ===========================
format         q                  value of one weight    GGUF type it carries
============== ================== ====================== ===========================
INT8_ROW       int8 -128..127     ``d[row] * q``         (per-output-channel INT8)
INT8_GROUP     int8 -128..127     ``d[row, g] * q``      Q8_0 (group 32)
INT4_GROUP     int4 -8..7         ``d[row, g] * q``      Q4_0 (group 32): q = q_gguf - 8
INT4_GROUP_MIN uint4 0..15        ``d * q + m``          Q4_1 (group 32)
============== ================== ====================== ===========================

Groups of 64 and 128 are the same formats with a longer group.  No stored value is lost:
GGUF's fp16 scales and minima convert exactly to a signed mantissa of 12 bits and an
exponent (:func:`mant_exp`), and the 4/8-bit quants are kept as they are.
"""

from __future__ import annotations

import enum

import numpy as np

from fpgallm.hdl.fixed import round_shift

ACT_GROUP = 32   # columns sharing one exponent of the block-scaled INT8 activations


class WeightFormat(enum.Enum):
    INT8_ROW = "int8-row"
    INT8_GROUP = "int8-group"
    INT4_GROUP = "int4-group"
    INT4_GROUP_MIN = "int4-group-min"

    @property
    def bits(self) -> int:
        return 8 if self in (WeightFormat.INT8_ROW, WeightFormat.INT8_GROUP) else 4

    @property
    def is_signed(self) -> bool:
        return self is not WeightFormat.INT4_GROUP_MIN

    @property
    def has_min(self) -> bool:
        return self is WeightFormat.INT4_GROUP_MIN

    @property
    def grouped(self) -> bool:
        return self is not WeightFormat.INT8_ROW

    @property
    def q_min(self) -> int:
        return -(1 << (self.bits - 1)) if self.is_signed else 0

    @property
    def q_max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.is_signed else (1 << self.bits) - 1

    @property
    def gguf(self) -> str | None:
        return {WeightFormat.INT8_GROUP: "Q8_0", WeightFormat.INT4_GROUP: "Q4_0",
                WeightFormat.INT4_GROUP_MIN: "Q4_1"}.get(self)


def mant_exp(values, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Split floats into ``(M, E)`` with ``value ~= M * 2**E``, ``M`` a signed ``bits``-bit int.

    The mantissa is normalized (``2**(bits-2) <= |M| < 2**(bits-1)``) and rounded half up;
    every fp16 value is exact for ``bits >= 12``.  Zero gives ``(0, -1000)``.
    """
    v = np.asarray(values, dtype=np.float64)
    frac, ex = np.frexp(v)  # v = frac * 2**ex, 0.5 <= |frac| < 1
    m = np.floor(frac * float(1 << (bits - 1)) + 0.5).astype(np.int64)
    e = ex.astype(np.int64) - (bits - 1)
    over = m >= (1 << (bits - 1))
    m = np.where(over, m >> 1, m)
    e = np.where(over, e + 1, e)
    zero = v == 0
    return np.where(zero, 0, m), np.where(zero, -1000, e)


def align(mant: np.ndarray, exp: np.ndarray, emax: int, max_shift: int):
    """Express ``mant * 2**exp`` as ``M * 2**(emax - r)`` with ``0 <= r <= max_shift``.

    Where ``emax - exp`` exceeds ``max_shift`` the mantissa is rounded (half up) to fit: the
    only place a scale loses bits, and only when scales in one matrix span more than
    ``2**max_shift``.
    """
    r = emax - np.asarray(exp, dtype=np.int64)
    if np.any(r < 0):
        raise ValueError("align: exponent above emax")
    extra = np.maximum(r - max_shift, 0)
    m = np.where(extra > 0, round_shift(mant, np.minimum(extra, 62)), mant)
    return m.astype(np.int64), np.minimum(r, max_shift).astype(np.int64)


def gguf_blocks(fmt: WeightFormat, raw: np.ndarray, rows: int, cols: int):
    """Integer view of GGUF Q8_0 / Q4_0 / Q4_1 rows: ``(q, d, m)`` with d, m float64 per group.

    ``raw`` is the tensor's bytes (uint8, shape (rows, bytes_per_row) or flat).  ``q`` is
    what :class:`WeightFormat` ``fmt`` stores (Q4_0 quants minus 8, Q4_1 quants as they are).
    """
    raw = np.asarray(raw, dtype=np.uint8).reshape(rows, -1)
    nb = cols // 32
    if fmt is WeightFormat.INT8_GROUP:
        blk = raw.reshape(rows, nb, 34)
        d = blk[..., :2].copy().view(np.float16)[..., 0].astype(np.float64)
        q = blk[..., 2:].copy().view(np.int8).astype(np.int64).reshape(rows, cols)
        return q, d, None
    if fmt is WeightFormat.INT4_GROUP:
        blk = raw.reshape(rows, nb, 18)
        d = blk[..., :2].copy().view(np.float16)[..., 0].astype(np.float64)
        qs = blk[..., 2:]
        m = None
    elif fmt is WeightFormat.INT4_GROUP_MIN:
        blk = raw.reshape(rows, nb, 20)
        d = blk[..., :2].copy().view(np.float16)[..., 0].astype(np.float64)
        m = blk[..., 2:4].copy().view(np.float16)[..., 0].astype(np.float64)
        qs = blk[..., 4:]
    else:
        raise ValueError(f"gguf_blocks: {fmt.value} has no GGUF block type")
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.int64).reshape(rows, cols)
    if fmt is WeightFormat.INT4_GROUP:
        q = q - 8
    return q, d, m
