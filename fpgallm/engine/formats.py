"""The engine's number formats: the widths and constants that the compiler, the golden
engine, the engine RTL and the resource model share, each defined once here.

Vector registers hold ``REG_BITS``-bit fixed point or block-scaled INT8 (one ``EXP_BITS``
exponent per ``ACT_GROUP`` elements, the GEMV unit's group).  Attention quantizes q to
``Q_BITS`` per head, K and V carry a ``KV_EXP_BITS`` exponent per head vector, and scores
are scaled by ``score_mult(head_dim) = round(2**SCORE_MULT_BITS / sqrt(head_dim))`` into
Q.``SCORE_FRAC`` for the softmax.
"""

from __future__ import annotations

import math

from fpgallm.units.weights import ACT_GROUP

__all__ = ["REG_BITS", "ACT_GROUP", "EXP_BITS", "Q_BITS", "KV_EXP_BITS", "SCORE_FRAC",
           "SCORE_MULT_BITS", "score_mult", "attn_acc_bits"]

REG_BITS = 24          # a fixed-point vector register element
EXP_BITS = 5           # exponent of a block-scaled activation group: 0..17 (24-bit -> INT8)
Q_BITS = 16            # attention's q, quantized per head
KV_EXP_BITS = 5        # exponent of a K or V head vector
SCORE_FRAC = 10        # attention scores into the softmax: Q.10
SCORE_MULT_BITS = 16   # the 1/sqrt(head_dim) multiplier: Q.16


def score_mult(hd: int) -> int:
    """``round(2**SCORE_MULT_BITS / sqrt(head_dim))`` (0 for head_dim 0)."""
    return int(math.floor(2.0 ** SCORE_MULT_BITS / math.sqrt(hd) + 0.5)) if hd else 0


def attn_acc_bits(kv_bits: int, max_context: int) -> int:
    """Attention's weighted-sum accumulator: the product (``kv_bits + Q_BITS + 1``), the V
    exponent's left shift (``REG_BITS - (kv_bits - 1)``), a sum over ``max_context``
    positions and 2 guard bits."""
    return (kv_bits + Q_BITS + 1 + (REG_BITS - (kv_bits - 1)) + max(0, (max_context - 1).bit_length())
            + 2)
