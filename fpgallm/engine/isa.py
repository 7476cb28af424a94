"""The decode engine's instruction set: opcodes, fields, 128-bit encoding, text form.

``docs/ISA.md`` is the reference (semantics, hazards); this module is the single
definition of the encoding.  An instruction is 16 bytes, little-endian, with the fields

======  ======  ===========================================================
bits    field   meaning (per opcode, see docs/ISA.md)
======  ======  ===========================================================
5:0     op      :class:`Op`
9:6     dst     destination vector register (or scalar register)
13:10   a       first source register
17:14   b       second source register
23:18   mode    format / kind selector (weight format, norm kind, ...)
43:24   n       first length (elements, rows, head_dim)
63:44   m       second length (columns, heads)
103:64  addr    byte address in off-chip memory (40 bits, 1 TiB)
127:104 imm     immediate (layer index, scalar value, requantization)
======  ======  ===========================================================
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields


class Op(enum.IntEnum):
    NOP = 0x00
    HALT = 0x01
    SYNC = 0x02
    SETS = 0x03      # S[dst] <- imm
    ADDS = 0x04      # S[dst] <- S[a] + imm
    PREFETCH = 0x05  # hint: stream n | m << 20 stripe words @addr into the weight prefetch buffer
    EMBED = 0x08     # V[dst] <- dequant(row S[TOKEN] of table @addr), n = dim, mode = weight format
    LOADV = 0x09     # V[dst] <- vector @addr, n elements, mode = element format
    STOREV = 0x0A    # mem[addr] <- V[a], n elements, mode = element format
    GEMV = 0x10      # V[dst] <- W(@addr, n rows x m cols, mode = weight format) . V[a]
    NORM = 0x20      # V[dst] <- norm(V[a]; weight @addr), n = len, mode = NormKind
    ROPE = 0x21      # V[dst] <- rope(V[a], S[POS]), n = head_dim, m = heads, mode = style
    ACT = 0x22       # V[dst] <- act(V[a]), n = len, mode = activation kind
    EWADD = 0x23     # V[dst] <- V[a] + V[b], n = len
    EWMUL = 0x24     # V[dst] <- V[a] * V[b], n = len
    QUANT = 0x25     # V[dst] <- quantize(V[a]) to the activation format, n = len
    KVAPPEND = 0x30  # K = V[a], V = V[b] -> KV region @addr at S[POS], n = kv_dim, imm = layer
    ATTN = 0x31      # V[dst] <- attention(q = V[a], KV @addr, positions 0..S[POS]),
                     #           n = head_dim, m = heads | kv_heads << 10, imm = layer
    ARGMAX = 0x26    # S[dst] <- argmax(V[a][0:n])


class Sreg(enum.IntEnum):
    """Scalar registers (one set per sequence of the batch)."""

    POS = 0      # position of the token being decoded
    TOKEN = 1    # input token; ARGMAX writes the next one here
    # 2..15 general purpose


FIELDS = (  # name, lsb, width
    ("op", 0, 6), ("dst", 6, 4), ("a", 10, 4), ("b", 14, 4), ("mode", 18, 6),
    ("n", 24, 20), ("m", 44, 20), ("addr", 64, 40), ("imm", 104, 24),
)
_WIDTH = {name: width for name, _lsb, width in FIELDS}
INSTRUCTION_BYTES = 16


@dataclass(frozen=True)
class Instruction:
    op: Op
    dst: int = 0
    a: int = 0
    b: int = 0
    mode: int = 0
    n: int = 0
    m: int = 0
    addr: int = 0
    imm: int = 0

    def __post_init__(self):
        if not isinstance(self.op, Op):
            try:
                object.__setattr__(self, "op", Op(self.op))
            except ValueError:
                raise ValueError(f"Instruction.op: unknown opcode {self.op!r}") from None
        for f in fields(self):
            if f.name == "op":
                continue
            v = getattr(self, f.name)
            width = _WIDTH[f.name]
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < (1 << width):
                raise ValueError(f"Instruction.{f.name} must be an integer in "
                                 f"[0, {(1 << width) - 1}] ({width} bits), got {v!r} "
                                 f"in {self.op.name}")

    def encode(self) -> bytes:
        word = 0
        for name, lsb, _width in FIELDS:
            word |= int(getattr(self, name)) << lsb
        return word.to_bytes(INSTRUCTION_BYTES, "little")

    @classmethod
    def decode(cls, data: bytes) -> Instruction:
        if len(data) != INSTRUCTION_BYTES:
            raise ValueError(f"an instruction is {INSTRUCTION_BYTES} bytes, got {len(data)}")
        word = int.from_bytes(data, "little")
        values = {name: (word >> lsb) & ((1 << width) - 1) for name, lsb, width in FIELDS}
        return cls(**values)

    def text(self) -> str:
        """Assembly text: ``OP field=value ...`` listing the non-zero fields."""
        parts = [self.op.name]
        for f in fields(self):
            if f.name != "op" and getattr(self, f.name):
                v = getattr(self, f.name)
                parts.append(f"{f.name}={v:#x}" if f.name == "addr" else f"{f.name}={v}")
        return " ".join(parts)

    @classmethod
    def parse(cls, line: str) -> Instruction:
        """Inverse of :meth:`text`."""
        tokens = line.split("#", 1)[0].split()
        if not tokens:
            raise ValueError("empty instruction line")
        try:
            op = Op[tokens[0].upper()]
        except KeyError:
            raise ValueError(f"unknown opcode {tokens[0]!r}; opcodes: "
                             f"{', '.join(o.name for o in Op)}") from None
        kwargs = {}
        for tok in tokens[1:]:
            name, sep, value = tok.partition("=")
            if not sep or name not in _WIDTH or name == "op":
                raise ValueError(f"bad field {tok!r} in {line.strip()!r}; fields: "
                                 f"{', '.join(n for n, _, _ in FIELDS if n != 'op')}")
            kwargs[name] = int(value, 0)
        return cls(op, **kwargs)


def assemble(program: list[Instruction]) -> bytes:
    return b"".join(ins.encode() for ins in program)


def disassemble(blob: bytes) -> list[Instruction]:
    if len(blob) % INSTRUCTION_BYTES:
        raise ValueError(f"program length {len(blob)} is not a multiple of {INSTRUCTION_BYTES}")
    return [Instruction.decode(blob[i:i + INSTRUCTION_BYTES])
            for i in range(0, len(blob), INSTRUCTION_BYTES)]
