"""The KV cache layout in off-chip memory (shared by ``x_kv`` and ``x_attn``; no HDL here so
that the compiler can import it).

One KV region per layer.  Inside it, one *head block* per (sequence ``b``, kv-head ``kh``),
in the order ``b`` outer, ``kh`` inner (block index ``b * kv_heads + kh``), each of
``head_bytes`` bytes:

=========  =====================  ================================================
offset     size                   content
=========  =====================  ================================================
0          ``exp_bytes``          exponents: byte ``2l`` = K exponent, ``2l+1`` = V
                                  exponent of position ``l`` (``max_context`` x 2 B,
                                  padded to a stripe word)
exp_bytes  ``data_bytes``         K: position ``l`` at ``l * stride`` (``head_dim``
                                  elements of ``kv_format`` bits, little endian, then
                                  zero padding to ``stride``)
+data      ``data_bytes``         V: same layout
=========  =====================  ================================================

``stride``: the head vector's bytes ``vb = head_dim * kv bytes`` rounded up to a power of
two when ``vb <= W`` (``W`` = stripe word bytes: a word holds ``W / stride`` whole
positions, none straddles a word), else to a multiple of ``W`` (a position is ``stride /
W`` whole words).  ``data_bytes = max_context * stride`` rounded up to ``W``.  Every block
starts on a stripe word, so ``ATTN`` streams the exponents, then K of positions
``0..L-1``, then V, as three contiguous runs of whole stripe words.  The layout depends on
the engine (``stripe``, ``kv_format``, ``max_context``, ``batch``) and on the model's
``head_dim`` / ``kv_heads`` only.
"""

from __future__ import annotations

from dataclasses import dataclass

from fpgallm.engine.params import MAX_HEAD_DIM, EngineParams

HD_MAX = MAX_HEAD_DIM  # largest head_dim of any layout (an engine holds EngineParams.max_head_dim)


def _align(x: int, a: int) -> int:
    return -(-x // a) * a


@dataclass(frozen=True)
class KVLayout:
    stripe: int          # bytes per stripe word
    elem_bytes: int      # 1 (INT8) or 2 (INT16)
    head_dim: int
    max_context: int

    def __post_init__(self):
        if not isinstance(self.head_dim, int) or not 1 <= self.head_dim <= HD_MAX:
            raise ValueError(f"KVLayout.head_dim must be an integer in [1, {HD_MAX}], got {self.head_dim!r}")

    @property
    def vec_bytes(self) -> int:
        return self.head_dim * self.elem_bytes

    @property
    def stride(self) -> int:
        vb = self.vec_bytes
        if vb <= self.stripe:
            return 1 << (vb - 1).bit_length()
        return _align(vb, self.stripe)

    @property
    def rows(self) -> int:
        """Stripe words per position (1 when several positions share a word)."""
        return max(1, self.stride // self.stripe)

    @property
    def per_word(self) -> int:
        """Positions per stripe word (1 when a position spans several words)."""
        return max(1, self.stripe // self.stride)

    @property
    def exp_bytes(self) -> int:
        return _align(2 * self.max_context, self.stripe)

    @property
    def data_bytes(self) -> int:
        return _align(self.max_context * self.stride, self.stripe)

    @property
    def head_bytes(self) -> int:
        return self.exp_bytes + 2 * self.data_bytes

    def block(self, b: int, kh: int, kv_heads: int) -> int:
        """Offset of the head block of sequence ``b``, kv-head ``kh`` in the region."""
        return (b * kv_heads + kh) * self.head_bytes

    def exp_words(self, length: int) -> int:
        """Stripe words ATTN reads for the exponents of positions ``0..length-1``."""
        return -(-2 * length // self.stripe)

    def data_words(self, length: int) -> int:
        """Stripe words ATTN reads for K (or V) of positions ``0..length-1``."""
        return -(-length * self.stride // self.stripe)


def kv_layout(p: EngineParams, head_dim: int) -> KVLayout:
    return KVLayout(p.mem_ports * p.port_width // 8, p.kv_format.bits // 8, head_dim, p.max_context)


def kv_layer_bytes(p: EngineParams, head_dim: int, kv_heads: int) -> int:
    """Size of one layer's KV region."""
    return p.batch * kv_heads * kv_layout(p, head_dim).head_bytes


def kv_state_bytes(p: EngineParams, kv: dict, nbytes: int) -> bytes:
    """The golden Machine's KV state of one layer (``Machine.kv[addr]``: arrays ``k``, ``v``
    ``(B, kv_heads, ctx, head_dim)`` and exponents ``ke``, ``ve`` ``(B, kv_heads, ctx)``)
    as the region's bytes in this layout (positions never written stay zero)."""
    import numpy as np
    B, KVH, ctx, hd = kv["k"].shape
    lay = kv_layout(p, hd)
    out = np.zeros(nbytes, np.uint8)
    dt = np.dtype("<i1") if lay.elem_bytes == 1 else np.dtype("<i2")
    for b in range(B):
        for kh in range(KVH):
            base = lay.block(b, kh, KVH)
            e = np.zeros((ctx, 2), np.uint8)
            e[:, 0], e[:, 1] = kv["ke"][b, kh], kv["ve"][b, kh]
            out[base:base + 2 * ctx] = e.reshape(-1)
            for j, key in enumerate(("k", "v")):
                d0 = base + lay.exp_bytes + j * lay.data_bytes
                rows = np.zeros((ctx, lay.stride), np.uint8)
                rows[:, :lay.vec_bytes] = kv[key][b, kh].astype(dt).view(np.uint8).reshape(ctx, -1)
                out[d0:d0 + ctx * lay.stride] = rows.reshape(-1)
    return out.tobytes()
