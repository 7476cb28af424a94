"""Weight quantization schemes as types, and quantized tensors in their stored form.

A :class:`QuantScheme` says how a ``[rows, cols]`` weight matrix (``rows`` = output features)
is stored: ``bits`` per value, values grouped along a row in groups of ``group`` (``None`` =
one group per row, i.e. per output channel), a scale per group and, when ``with_min``, a
minimum per group.  The value of element ``j`` of row ``r`` is::

    symmetric:   w = scale[r, g] * q[r, j]                 q signed,   in [-2^(b-1), 2^(b-1)-1]
    with_min:    w = scale[r, g] * q[r, j] + min[r, g]     q unsigned, in [0, 2^b - 1]

computed in float32 from scales stored as ``scale_dtype`` (float16 for the GGUF formats).
The GGUF block formats are instances: :data:`Q8_0` (8 bit, group 32, symmetric, f16 scale),
:data:`Q4_0` (4 bit, group 32, symmetric with the stored nibble ``q + 8``) and :data:`Q4_1`
(4 bit, group 32, f16 scale and f16 minimum).  :meth:`QuantTensor.from_gguf_bytes` and
:meth:`QuantTensor.to_gguf_bytes` convert between the block bytes and the unpacked arrays,
bit for bit; :func:`quantize` reproduces ggml's reference quantizers for those schemes and
applies the same rules to the other group sizes and widths.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
from gguf import GGMLQuantizationType

from fpgallm.model.spec import ModelSpec


class ScaleDType(enum.Enum):
    """Storage type of the per-group scale and minimum."""

    F16 = "f16"
    F32 = "f32"

    @property
    def np(self):
        return np.float16 if self is ScaleDType.F16 else np.float32


@dataclass(frozen=True)
class QuantScheme:
    """How a weight matrix is quantized (validated; errors name the field and value)."""

    bits: int
    group: int | None
    with_min: bool = False
    scale_dtype: ScaleDType = ScaleDType.F32

    def __post_init__(self):
        if self.bits not in (4, 8):
            raise ValueError(f"QuantScheme.bits={self.bits!r}: must be 4 or 8")
        if self.group is not None and (not isinstance(self.group, int) or self.group not in (32, 64, 128)):
            raise ValueError(f"QuantScheme.group={self.group!r}: must be 32, 64, 128 or None (per output channel)")
        if not isinstance(self.with_min, bool):
            raise ValueError(f"QuantScheme.with_min={self.with_min!r}: must be a bool")
        if not isinstance(self.scale_dtype, ScaleDType):
            raise ValueError(f"QuantScheme.scale_dtype={self.scale_dtype!r}: must be a ScaleDType")

    @property
    def qmin(self) -> int:
        return 0 if self.with_min else -(1 << (self.bits - 1))

    @property
    def qmax(self) -> int:
        return (1 << self.bits) - 1 if self.with_min else (1 << (self.bits - 1)) - 1

    @property
    def gguf_type(self) -> GGMLQuantizationType | None:
        """The GGUF block type with exactly this layout, or ``None``."""
        return _GGUF_OF.get(self)

    @property
    def name(self) -> str:
        if self.gguf_type is not None:
            return self.gguf_type.name
        g = "ch" if self.group is None else f"g{self.group}"
        return f"int{self.bits}-{g}{'-min' if self.with_min else ''}-{self.scale_dtype.value}"

    def group_of(self, cols: int) -> int:
        """The group length for rows of ``cols`` values (``cols`` for per-channel)."""
        return cols if self.group is None else self.group

    def bits_per_weight(self, cols: int) -> float:
        """Storage cost per weight including scales (and minimums)."""
        g = self.group_of(cols)
        side = (16 if self.scale_dtype is ScaleDType.F16 else 32) * (2 if self.with_min else 1)
        return self.bits + side / g

    def __str__(self) -> str:
        return self.name


INT8_PER_CHANNEL = QuantScheme(8, None, False, ScaleDType.F32)
Q8_0 = QuantScheme(8, 32, False, ScaleDType.F16)
Q4_0 = QuantScheme(4, 32, False, ScaleDType.F16)
Q4_1 = QuantScheme(4, 32, True, ScaleDType.F16)


def int4_group(group: int, with_min: bool = False) -> QuantScheme:
    """INT4 group-wise with an f32 scale (and minimum): group 32, 64 or 128."""
    return QuantScheme(4, group, with_min, ScaleDType.F32)


_GGUF_OF = {Q8_0: GGMLQuantizationType.Q8_0, Q4_0: GGMLQuantizationType.Q4_0, Q4_1: GGMLQuantizationType.Q4_1}
GGUF_SCHEMES = {t: s for s, t in _GGUF_OF.items()}


@dataclass(frozen=True, eq=False)
class QuantTensor:
    """A quantized ``[rows, cols]`` matrix in stored form.

    ``q``: ``[rows, cols]`` int8 (symmetric) or uint8 (with_min), unpacked one value per
    element; ``scale``: ``[rows, cols // group]`` in ``scheme.scale_dtype``; ``min``: same shape
    or ``None``.  Arrays are treated as read-only.
    """

    scheme: QuantScheme
    q: np.ndarray
    scale: np.ndarray
    min: np.ndarray | None = None

    def __post_init__(self):
        s = self.scheme
        if self.q.ndim != 2:
            raise ValueError(f"QuantTensor.q: must be 2-D, got shape {self.q.shape}")
        rows, cols = self.q.shape
        g = s.group_of(cols)
        if cols % g:
            raise ValueError(f"QuantTensor.q: {cols} columns are not a multiple of the group {g}")
        want_q = np.uint8 if s.with_min else np.int8
        if self.q.dtype != want_q:
            raise ValueError(f"QuantTensor.q: dtype {self.q.dtype} must be {np.dtype(want_q)} for {s.name}")
        if self.scale.shape != (rows, cols // g) or self.scale.dtype != s.scale_dtype.np:
            raise ValueError(f"QuantTensor.scale: shape {self.scale.shape} dtype {self.scale.dtype}, want "
                             f"{(rows, cols // g)} {np.dtype(s.scale_dtype.np)}")
        if s.with_min != (self.min is not None):
            raise ValueError(f"QuantTensor.min: {'required' if s.with_min else 'not allowed'} for {s.name}")
        if self.min is not None and (self.min.shape != self.scale.shape or self.min.dtype != self.scale.dtype):
            raise ValueError(f"QuantTensor.min: shape {self.min.shape} dtype {self.min.dtype} must match scale")

    @property
    def shape(self) -> tuple[int, int]:
        return self.q.shape

    @property
    def group(self) -> int:
        return self.scheme.group_of(self.q.shape[1])

    @property
    def nbytes_stored(self) -> int:
        """Bytes of the packed form (values at ``bits`` each, plus scales and minimums)."""
        rows, cols = self.shape
        return int(round(rows * cols * self.scheme.bits_per_weight(cols) / 8))

    def dequantize(self) -> np.ndarray:
        """The float32 matrix (same arithmetic as ggml / gguf-py: ``f32(scale) * f32(q) [+ f32(min)]``)."""
        rows, cols = self.shape
        g = self.group
        q = self.q.reshape(rows, cols // g, g).astype(np.float32)
        w = self.scale.astype(np.float32)[:, :, None] * q
        if self.min is not None:
            w = w + self.min.astype(np.float32)[:, :, None]
        return w.reshape(rows, cols)

    def take_rows(self, idx) -> "QuantTensor":
        """The rows ``idx`` (an index array or slice) as a new tensor; blocks never span rows."""
        return QuantTensor(self.scheme, self.q[idx], self.scale[idx],
                           None if self.min is None else self.min[idx])

    # GGUF block bytes -----------------------------------------------------------------------
    @classmethod
    def from_gguf_bytes(cls, raw: np.ndarray, qtype: GGMLQuantizationType) -> "QuantTensor":
        """Unpack GGUF Q8_0 / Q4_0 / Q4_1 blocks (``raw``: uint8 ``[rows, bytes_per_row]``)."""
        scheme = GGUF_SCHEMES.get(qtype)
        if scheme is None:
            raise ValueError(f"unsupported GGUF tensor type {qtype.name}; supported: "
                             f"{', '.join(t.name for t in GGUF_SCHEMES)}")
        raw = np.ascontiguousarray(raw, dtype=np.uint8)
        rows = raw.shape[0]
        if qtype is GGMLQuantizationType.Q8_0:
            blk = raw.reshape(rows, -1, 34)
            scale = blk[:, :, :2].copy().view(np.float16).reshape(rows, -1)
            q = blk[:, :, 2:].copy().view(np.int8).reshape(rows, -1)
            return cls(scheme, q, scale)
        if qtype is GGMLQuantizationType.Q4_0:
            blk = raw.reshape(rows, -1, 18)
            scale = blk[:, :, :2].copy().view(np.float16).reshape(rows, -1)
            nib = blk[:, :, 2:]
        else:
            blk = raw.reshape(rows, -1, 20)
            scale = blk[:, :, :2].copy().view(np.float16).reshape(rows, -1)
            mn = blk[:, :, 2:4].copy().view(np.float16).reshape(rows, -1)
            nib = blk[:, :, 4:]
        # element j < 16 is the low nibble of byte j, element 16 + j its high nibble
        vals = np.concatenate([nib & 0x0F, nib >> 4], axis=2).reshape(rows, -1)
        if qtype is GGMLQuantizationType.Q4_0:
            return cls(scheme, (vals.astype(np.int16) - 8).astype(np.int8), scale)
        return cls(scheme, vals.astype(np.uint8), scale, mn)

    def to_gguf_bytes(self) -> np.ndarray:
        """Pack into GGUF blocks (uint8 ``[rows, bytes_per_row]``); inverse of :meth:`from_gguf_bytes`."""
        qtype = self.scheme.gguf_type
        if qtype is None:
            raise ValueError(f"scheme {self.scheme.name} has no GGUF block type")
        rows, cols = self.shape
        nb = cols // 32
        d = self.scale.reshape(rows, nb, 1).view(np.uint8)
        if qtype is GGMLQuantizationType.Q8_0:
            parts = [d, self.q.reshape(rows, nb, 32).view(np.uint8)]
        else:
            u = self.q.astype(np.int16) + 8 if qtype is GGMLQuantizationType.Q4_0 else self.q
            u = u.astype(np.uint8).reshape(rows, nb, 32)
            packed = (u[:, :, :16] | (u[:, :, 16:] << 4)).astype(np.uint8)
            parts = [d]
            if self.min is not None:
                parts.append(self.min.reshape(rows, nb, 1).view(np.uint8))
            parts.append(packed)
        return np.concatenate(parts, axis=2).reshape(rows, -1)


def quantize(w: np.ndarray, scheme: QuantScheme) -> QuantTensor:
    """Quantize a float ``[rows, cols]`` matrix.

    Follows ggml's reference quantizers (computed in float32), so that for :data:`Q8_0`,
    :data:`Q4_0` and :data:`Q4_1` the result packs to the same bytes as ``gguf.quants``:

    * symmetric 8 bit: ``d = max|x| / 127``, ``q = round_half_away(x / d)``;
    * symmetric 4 bit: ``d = m / -8`` with ``m`` the signed value of largest magnitude,
      ``q = min(15, trunc(x / d + 8.5)) - 8``;
    * with minimum: ``d = (max - min) / (2^b - 1)``, ``q = min(2^b-1, trunc((x - min) / d + 0.5))``.

    The quantizer uses the unrounded ``d``; the stored scale is ``d`` rounded to ``scale_dtype``.
    """
    w = np.asarray(w, dtype=np.float32)
    if w.ndim != 2:
        raise ValueError(f"quantize: weight must be 2-D, got shape {w.shape}")
    rows, cols = w.shape
    g = scheme.group_of(cols)
    if cols % g:
        raise ValueError(f"quantize: {cols} columns are not a multiple of the group {g} of {scheme.name}")
    x = w.reshape(rows, cols // g, g)
    sd = scheme.scale_dtype.np
    with np.errstate(divide="ignore", invalid="ignore"):
        if scheme.with_min:
            mn = x.min(axis=2, keepdims=True)
            mx = x.max(axis=2, keepdims=True)
            d = (mx - mn) / np.float32(scheme.qmax)
            inv = np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)
            q = np.trunc((x - mn) * inv + np.float32(0.5)).clip(0, scheme.qmax).astype(np.uint8)
            return QuantTensor(scheme, q.reshape(rows, cols), d[:, :, 0].astype(sd), mn[:, :, 0].astype(sd))
        if scheme.bits == 8:
            d = np.abs(x).max(axis=2, keepdims=True) / np.float32(127)
            inv = np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)
            v = x * inv
            a = np.abs(v)
            fl = np.floor(a)
            q = np.sign(v) * (fl + np.floor(2 * (a - fl)))   # round half away from zero
            q = q.clip(-127, 127).astype(np.int8)
        else:
            idx = np.abs(x).argmax(axis=2)[:, :, None]
            m = np.take_along_axis(x, idx, axis=2)
            d = m / np.float32(-8)
            inv = np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)
            u = np.trunc(x * inv + np.float32(8.5)).clip(0, 15)
            q = (u - 8).astype(np.int8)
    return QuantTensor(scheme, q.reshape(rows, cols), d[:, :, 0].astype(sd))


def fake_quant(w: np.ndarray, scheme: QuantScheme) -> np.ndarray:
    """``quantize(w, scheme).dequantize()``: the float weights the scheme can represent."""
    return quantize(w, scheme).dequantize()


def quantize_activations_int8(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric INT8 per vector (last axis): ``q = round_half_even(x / s)``, ``s = max|x| / 127``.

    Returns ``(q int8, s float32 with a trailing axis of 1)``; ``s`` is 1 for all-zero vectors.
    """
    x = np.asarray(x, dtype=np.float32)
    s = np.abs(x).max(axis=-1, keepdims=True) / np.float32(127)
    s = np.where(s == 0, np.float32(1), s).astype(np.float32)
    q = np.rint(x / s).clip(-127, 127).astype(np.int8)
    return q, s


def fake_quant_activations_int8(x: np.ndarray) -> np.ndarray:
    """Activations rounded to INT8 per vector and back to float32."""
    q, s = quantize_activations_int8(x)
    return q.astype(np.float32) * s


def quantize_spec_check(spec: ModelSpec, scheme: QuantScheme) -> None:
    """Raise ``ValueError`` if some matrix of ``spec`` cannot use ``scheme`` (columns vs group)."""
    shapes = spec.tensor_shapes()
    for n in spec.matrix_names():
        cols = shapes[n][1]
        if cols % scheme.group_of(cols):
            raise ValueError(f"{n} has {cols} columns, not a multiple of the group {scheme.group} of {scheme.name}")
