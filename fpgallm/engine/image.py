"""The compiler's memory image as bytes: what the AXI memory model (and a board's DDR/HBM)
is loaded with.

:func:`image_bytes` lays every region of a :class:`~fpgallm.engine.compiler.Compiled` at its
address in one flat little-endian byte space, in the layout the execution unit that reads
it expects:

=========  ===================================================================================
kind       layout (owner)
=========  ===================================================================================
matrix     the GEMV stream layout (:func:`fpgallm.engine.rtl.x_gemv.matrix_image`)
vector     int32 words (``LOADV``), or norm weights (:func:`fpgallm.engine.rtl.x_norm.norm_image`)
table      RoPE cos/sin (:func:`fpgallm.engine.rtl.x_rope.rope_image`), or position rows:
           one row of int32 per position, each row starting on a stripe boundary
kv         the KV cache (:func:`fpgallm.engine.rtl.x_attn.kv_image`), initially zero
logits     zeros; ``STOREV`` writes sequence ``b`` at ``addr + b * row_bytes(n)``
program    the program, 16 bytes per instruction (docs/ISA.md encoding)
=========  ===================================================================================

:func:`port_images` splits the flat space into the bytes of each memory port (byte ``a`` on
port ``(a // B) % P`` at ``(a // (P*B)) * B + a % B``).
"""

from __future__ import annotations

import importlib

import numpy as np

from fpgallm.engine.compiler import Compiled, Region, row_bytes
from fpgallm.engine.params import EngineParams


def int32_bytes(values) -> bytes:
    return np.asarray(values, dtype=np.int64).astype("<i4").tobytes()


def _owner(module: str, func: str, r: Region):
    try:
        return getattr(importlib.import_module(f"fpgallm.engine.rtl.{module}"), func)
    except (ImportError, AttributeError):
        raise NotImplementedError(f"memory image: region {r.name} ({r.kind}) needs "
                                  f"fpgallm.engine.rtl.{module}.{func}, which does not exist yet") from None


def region_bytes(r: Region, c: Compiled) -> bytes:
    p: EngineParams = c.params
    stripe = p.mem_ports * p.port_width // 8
    if r.kind == "matrix":
        return _owner("x_gemv", "matrix_image", r)(r.data, p)
    if r.kind == "vector":
        if isinstance(r.data, dict):
            return _owner("x_norm", "norm_image", r)(r.data, p)
        return int32_bytes(r.data)
    if r.kind == "table":
        if isinstance(r.data, dict):
            return _owner("x_rope", "rope_image", r)(r.data, p)
        rows = np.asarray(r.data)
        rb = row_bytes(rows.shape[1], stripe)
        out = bytearray(rb * rows.shape[0])
        for i, row in enumerate(rows):
            b = int32_bytes(row)
            out[i * rb:i * rb + len(b)] = b
        return bytes(out)
    if r.kind == "kv":
        return _owner("x_attn", "kv_image", r)(r, p)
    if r.kind == "logits":
        return bytes(r.nbytes)
    if r.kind == "program":
        return b"".join(ins.encode() for ins in r.data)
    raise ValueError(f"memory image: region {r.name} has unknown kind {r.kind!r}")


def image_bytes(c: Compiled) -> bytes:
    """The whole image, from address 0 to the end of the last region (stripe padded)."""
    p = c.params
    stripe = p.mem_ports * p.port_width // 8
    top = -(-c.image.nbytes // stripe) * stripe
    buf = bytearray(top)
    for r in c.image.regions:
        b = region_bytes(r, c)
        if len(b) > r.nbytes:
            raise ValueError(f"memory image: region {r.name} serializes to {len(b)} bytes, "
                             f"the compiler reserved {r.nbytes}")
        buf[r.addr:r.addr + len(b)] = b
    return bytes(buf)


def port_images(image: bytes, p: EngineParams) -> list[bytes]:
    """The bytes each of the ``mem_ports`` ports holds, from its local address 0."""
    B = p.port_width // 8
    P = p.mem_ports
    stripe = P * B
    pad = (-len(image)) % stripe
    arr = np.frombuffer(image + bytes(pad), dtype=np.uint8).reshape(-1, P, B)
    return [arr[:, j, :].tobytes() for j in range(P)]


def join_ports(parts: list[bytes], p: EngineParams) -> bytes:
    """Inverse of :func:`port_images` for equally long per-port byte strings."""
    B = p.port_width // 8
    arrs = [np.frombuffer(x, dtype=np.uint8).reshape(-1, B) for x in parts]
    return np.stack(arrs, axis=1).tobytes()
