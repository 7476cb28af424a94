"""Group quantizer: wide fixed-point activations to INT8 with a shared power-of-two scale.

Contract
--------
The activation format handed to the matrix engines is *block scaled*, like the OCP
Microscaling MXINT8 format: every ``group`` consecutive elements share one power-of-two
exponent ``e`` and are stored as ``out_width``-bit signed integers ``q`` with value
``q * 2**e`` (in units of the input LSB).  A group whose values already fit gets ``e = 0``.

- Input ``i``: beats of ``lanes`` signed ``in_width``-bit integers; ``group / lanes`` beats
  form one group.  Vectors are whole numbers of groups.
- Output ``o``: beats of ``lanes`` signed ``out_width``-bit ``q`` plus the group's exponent
  ``exp`` (unsigned), repeated on every beat of the group.

Arithmetic (exactly :func:`golden`): ``m = max |x|`` over the group,
``e = max(0, bit_length(m) - (out_width - 1))``, ``q = sat(round_shift(x, e))``.

Error: ``|q * 2**e - x| <= 2**(e-1)`` for every element, except when rounding the group
maximum up saturates (``x`` within half an LSB of the top), where it is ``<= 2**e``; i.e. at
most one ``out_width``-bit LSB of the group's scale, and half of one for all other values
(checked over random inputs by ``tests/units/test_quantize.py``).

Latency: a group's first output beat leaves :attr:`QuantizeParams.latency` cycles after its
last input beat was accepted; throughput one beat (``lanes`` elements) per cycle, sustained
by double buffering (one group fills while the previous drains).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from fpgallm.hdl.check import check_int
from fpgallm.hdl.emit import Emitted, to_verilog
from fpgallm.hdl.fixed import round_shift, saturate
from fpgallm.hdl.requant import shift_right_sat


@dataclass(frozen=True)
class QuantizeParams:
    lanes: int = 8
    group: int = 32
    in_width: int = 32
    out_width: int = 8

    def __post_init__(self):
        for name, lo, hi in (("lanes", 1, 256), ("group", 1, 4096), ("in_width", 2, 48),
                             ("out_width", 2, 16)):
            check_int("QuantizeParams", name, getattr(self, name), lo, hi)
        if self.group % self.lanes:
            raise ValueError(f"QuantizeParams.group must be a multiple of lanes={self.lanes}, "
                             f"got {self.group}")
        if self.out_width > self.in_width:
            raise ValueError(f"QuantizeParams.out_width must be <= in_width={self.in_width}, "
                             f"got {self.out_width}")

    @property
    def beats_per_group(self) -> int:
        return self.group // self.lanes

    @property
    def max_exp(self) -> int:
        return self.in_width - (self.out_width - 1)

    @property
    def exp_width(self) -> int:
        return max(1, self.max_exp.bit_length())

    @property
    def latency(self) -> int:
        """Cycles from accepting a group's last input beat to its first output beat."""
        return 3

    @property
    def throughput(self) -> int:
        return self.lanes

    def in_layout(self):
        return data.ArrayLayout(signed(self.in_width), self.lanes)

    def out_layout(self):
        return data.StructLayout({
            "q": data.ArrayLayout(signed(self.out_width), self.lanes),
            "exp": unsigned(self.exp_width),
        })


def group_exponent(p: QuantizeParams, absmax) -> np.ndarray:
    """``max(0, bit_length(absmax) - (out_width - 1))`` elementwise."""
    m = np.asarray(absmax, dtype=np.int64)
    bitlen = np.zeros_like(m)
    nz = m > 0
    bitlen[nz] = np.floor(np.log2(m[nz].astype(np.float64))).astype(np.int64) + 1
    # guard against float rounding of log2 near powers of two
    too_big = nz & (np.left_shift(np.int64(1), np.maximum(bitlen - 1, 0)) > m)
    bitlen[too_big] -= 1
    too_small = nz & (np.left_shift(np.int64(1), np.minimum(bitlen, 62)) <= m)
    bitlen[too_small] += 1
    return np.maximum(0, bitlen - (p.out_width - 1))


def golden(p: QuantizeParams, x) -> tuple[np.ndarray, np.ndarray]:
    """Quantize a vector (length a multiple of ``group``): returns ``(q, exps per group)``."""
    x = np.asarray(x, dtype=np.int64)
    if x.ndim != 1 or x.size % p.group:
        raise ValueError(f"input length must be a multiple of group={p.group}, got shape {x.shape}")
    lo, hi = -(1 << (p.in_width - 1)), (1 << (p.in_width - 1)) - 1
    if x.size and (x.min() < lo or x.max() > hi):
        raise ValueError(f"input values must fit in_width={p.in_width} bits")
    groups = x.reshape(-1, p.group)
    exps = group_exponent(p, np.abs(groups).max(axis=1))
    q = saturate(round_shift(groups, exps[:, None]), p.out_width)
    return q.reshape(-1), exps


def dequantize(p: QuantizeParams, q, exps) -> np.ndarray:
    q = np.asarray(q, dtype=np.int64).reshape(-1, p.group)
    return (q << np.asarray(exps, dtype=np.int64)[:, None]).reshape(-1)


class Quantize(wiring.Component):
    """RTL of :mod:`fpgallm.units.quantize` (contract in the module docstring)."""

    def __init__(self, params: QuantizeParams):
        self.params = params
        super().__init__({
            "i": In(stream.Signature(params.in_layout())),
            "o": Out(stream.Signature(params.out_layout())),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        nb = p.beats_per_group
        beat_bits = p.lanes * p.in_width
        mem = Memory(shape=unsigned(beat_bits), depth=2 * nb, init=[])
        m.submodules.mem = mem
        wr = mem.write_port()
        rd = mem.read_port()

        full = Signal(2)
        exps = [Signal(p.exp_width, name=f"exp_slot{k}") for k in range(2)]
        wslot = Signal()
        wbeat = Signal(range(max(2, nb)))
        acc = Signal(unsigned(p.in_width))  # running absmax of the group being written

        # --- input side: fill the free slot, track absmax
        beat_max = Signal(unsigned(p.in_width))
        lane_abs = []
        for lane in range(p.lanes):
            x = self.i.payload[lane]
            a = Signal(unsigned(p.in_width), name=f"abs{lane}")
            m.d.comb += a.eq(Mux(x < 0, -x, x))
            lane_abs.append(a)
        while len(lane_abs) > 1:
            nxt = []
            for k in range(0, len(lane_abs) - 1, 2):
                s = Signal(unsigned(p.in_width), name=f"absmax_l{len(lane_abs)}_{k}")
                m.d.comb += s.eq(Mux(lane_abs[k] > lane_abs[k + 1], lane_abs[k], lane_abs[k + 1]))
                nxt.append(s)
            if len(lane_abs) % 2:
                nxt.append(lane_abs[-1])
            lane_abs = nxt
        m.d.comb += beat_max.eq(lane_abs[0])
        group_max = Signal(unsigned(p.in_width))
        m.d.comb += group_max.eq(Mux(beat_max > acc, beat_max, acc))

        # exponent of group_max: max(0, bit_length - (out_width - 1))
        bitlen = Signal(range(p.in_width + 1))
        for b in range(p.in_width):
            with m.If(group_max[b]):
                m.d.comb += bitlen.eq(b + 1)
        new_exp = Signal(p.exp_width)
        m.d.comb += new_exp.eq(Mux(bitlen > p.out_width - 1, bitlen - (p.out_width - 1), 0))

        m.d.comb += [
            self.i.ready.eq(~Mux(wslot, full[1], full[0])),
            wr.addr.eq(Mux(wslot, nb, 0) + wbeat),
            wr.data.eq(self.i.payload.as_value()),
            wr.en.eq(self.i.valid & self.i.ready),
        ]
        set_full = Signal(2)
        clr_full = Signal(2)
        with m.If(self.i.valid & self.i.ready):
            with m.If(wbeat == nb - 1):
                m.d.sync += [wbeat.eq(0), wslot.eq(~wslot), acc.eq(0)]
                m.d.comb += set_full.eq(Mux(wslot, 0b10, 0b01))
                with m.If(wslot):
                    m.d.sync += exps[1].eq(new_exp)
                with m.Else():
                    m.d.sync += exps[0].eq(new_exp)
            with m.Else():
                m.d.sync += [wbeat.eq(wbeat + 1), acc.eq(group_max)]

        # --- output side: read the full slot, round and saturate
        rslot = Signal()
        rbeat = Signal(range(max(2, nb)))
        advance = Signal()
        v1 = Signal()
        e1 = Signal(p.exp_width)
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            rd.en.eq(advance),
            rd.addr.eq(Mux(rslot, nb, 0) + rbeat),
        ]
        issue = Signal()
        m.d.comb += issue.eq(advance & Mux(rslot, full[1], full[0]))
        with m.If(advance):
            m.d.sync += [v1.eq(issue), e1.eq(Mux(rslot, exps[1], exps[0]))]
        with m.If(issue):
            with m.If(rbeat == nb - 1):
                m.d.sync += [rbeat.eq(0), rslot.eq(~rslot)]
                m.d.comb += clr_full.eq(Mux(rslot, 0b10, 0b01))
            with m.Else():
                m.d.sync += rbeat.eq(rbeat + 1)
        m.d.sync += full.eq((full | set_full) & ~clr_full)

        words = data.View(p.in_layout(), rd.data)
        qs = [shift_right_sat(m, words[lane], e1, p.out_width, f"q{lane}") for lane in range(p.lanes)]
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(v1), self.o.payload.exp.eq(e1)]
            m.d.sync += [self.o.payload.q[lane].eq(qs[lane]) for lane in range(p.lanes)]
        return m


def generate(params: QuantizeParams, top: str = "fpgallm_quantize") -> Emitted:
    return to_verilog(Quantize(params), top, params)
