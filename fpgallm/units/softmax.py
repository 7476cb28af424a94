"""Streaming softmax over a vector of run-time length (attention probabilities).

Contract
--------
Input ``i``: beats of ``lanes`` attention scores, signed ``in_width``-bit fixed point with
``in_frac`` fraction bits (already scaled by ``1/sqrt(d_head)``), payload ``{"data":
array(signed(in_width), lanes), "n": unsigned, "last": 1}``.  A vector is the beats up to and
including the one with ``last``; its length (1..``max_length``) is given at run time by where
``last`` falls.  ``n`` (1..``lanes``) counts the valid lanes of a beat and must equal ``lanes``
on every beat but the last.

Output ``o``: the same number of beats, same ``n`` and ``last``, each lane a probability in the
activation format: signed ``out_width`` bits with ``out_frac`` fraction bits (default INT16,
``2**-15`` per LSB; the P.V product of attention takes it as an activation vector).  A
probability of 1.0 saturates to ``2**out_width/2 - 1``; padding lanes are 0.

Arithmetic (exactly :func:`golden`; every shift rounds half up, :func:`round_shift`)
-------------------------------------------------------------------------------------
1. ``mx = max(x)``; ``d = x - mx <= 0``.
2. ``t = round_shift(d * LOG2E, in_frac + 16 - F)``: the base-2 exponent with ``F =
   exp_table_bits + exp_interp_bits`` fraction bits (``LOG2E = round(log2(e) * 2**16)``).
3. ``2**t = 2**frac(t) >> -floor(t)``: ``frac(t)`` indexes a table of ``2**frac`` (``2**
   exp_table_bits`` segments, entries with ``E = exp_frac + 2`` fraction bits,
   :func:`fpgallm.hdl.nonlinear.exp2_tables`) with linear interpolation on the low
   ``exp_interp_bits`` bits, ``m = base[i] + round_shift(delta[i] * r, exp_interp_bits)``; then
   ``e = round_shift(m, min(-floor(t) + 2, E + 3))``: ``e`` is unsigned with ``exp_frac``
   fraction bits, in ``[0, 2**exp_frac]``, exactly ``2**exp_frac`` for the maximum.
4. ``S = sum(e)`` (exact), ``S >= 2**exp_frac``.
5. Reciprocal by exact integer division, once per vector: ``r = 2**(out_frac + exp_frac + G) //
   S`` with ``G = recip_guard`` (a bit-serial restoring divider, ``out_frac + G + 1`` cycles; the
   floor costs at most ``2**-G`` output LSB).
6. ``p = min(round_shift(e * r, exp_frac + G), 2**(out_width-1) - 1)``.

Error: against the float softmax of the same (quantized) scores, measured by
``tests/units/test_softmax.py`` over 2500 random vectors per seed (lengths 1..300 and the
maximum, scores N(mu, s) with s in {0.5, 2, 8} or uniform over the whole ``in_width`` range):

- default Params (INT16 in with 10 fraction bits, INT16 out with 15, max_length 1024): worst-case
  absolute error **1.21 LSB** of the output (``2**-15``, i.e. 3.7e-5), bound asserted: 1.3 LSB.
  A probability of 1.0 saturates to ``1 - 2**-15`` (exactly 1 LSB).  The largest part is the
  rounding of each ``e`` to ``exp_frac`` bits accumulated in the sum of long vectors (it grows
  about as the square root of the length: 3.2 LSB with ``exp_frac=16``); the interpolated table
  contributes at most 2 LSB of ``e`` (``2**-18``).
- INT8 scores with 4 fraction bits, INT8 probabilities with 7 (``exp_frac=12``, 32-entry table,
  6 interpolation bits): **1.0 LSB** (the saturation of 1.0), every other output within
  **0.63 LSB** (``2**-7``), bound asserted: 0.7 LSB.

Hardware and timing
-------------------
Two passes over a buffered vector, one memory of ``ceil(max_length/lanes)`` beats (simple dual
port).  Ingest: beats are written to the buffer while a pipelined lane tree and a running
register find the maximum.  Pass 1 reads the buffer through the exp pipeline (subtract,
multiply by log2(e), round, table read, interpolation multiply, add, shift: 8 registered
stages) into a lane adder tree and the sum register.  The divider then runs ``out_frac + G + 1``
cycles, and pass 2 reads the buffer again through the same exp pipeline, multiplies by ``r``
(registered partial products of 17-bit operand chunks, then their sum: no multiplier wider than
18x18 in one cycle) and rounds into the output register (with backpressure: the whole pipeline
stalls when the output is not taken).  One vector is processed at a time.  With no stalls, the last output beat comes
:meth:`SoftmaxParams.cycles` ``= 3 * ceil(length / lanes) + latency`` cycles after the first
input beat is accepted (:attr:`SoftmaxParams.latency` ``= 2 * ceil(log2(lanes)) + out_frac + G +
20``) and the next vector's first beat is accepted one cycle after that;
:attr:`SoftmaxParams.throughput` is ``lanes / 3`` elements per cycle for long vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from fpgallm.hdl.check import check_int
from fpgallm.hdl.emit import Emitted, to_verilog
from fpgallm.hdl.fixed import round_shift, smax, smin
from fpgallm.hdl.nonlinear import LOG2E_BITS, exp2_tables, log2e_q

EXP_GUARD = 2  # extra fraction bits of the exp table entries over exp_frac
EXP_STAGES = 8  # registered stages from the buffer read to e (see the module docstring)
MUL_STAGES = 2  # e * r: registered partial products, then their sum
MUL_CHUNK = 17  # operand chunk of a partial product: fits ECP5 18x18 and DSP48E2 27x18 unsigned


@dataclass(frozen=True)
class SoftmaxParams:
    """Parameters of :class:`Softmax`; validated on construction."""

    lanes: int = 4
    in_width: int = 16
    in_frac: int = 10
    max_length: int = 1024
    exp_frac: int = 18
    exp_table_bits: int = 7
    exp_interp_bits: int = 10
    out_width: int = 16
    out_frac: int = 15
    recip_guard: int = 4

    def __post_init__(self):
        for name, lo, hi in (("lanes", 1, 64), ("in_width", 4, 32), ("in_frac", 0, 24),
                             ("max_length", 1, 1 << 20), ("exp_frac", 4, 24),
                             ("exp_table_bits", 1, 12), ("exp_interp_bits", 0, 12),
                             ("out_width", 2, 32), ("recip_guard", 0, 8)):
            check_int("SoftmaxParams", name, getattr(self, name), lo, hi)
        v = self.out_frac
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= self.out_width - 1:
            raise ValueError(f"SoftmaxParams.out_frac must be an integer in [0, {self.out_width - 1}] "
                             f"(out_width={self.out_width}), got {v!r}")
        if self.exp_bits > self.in_frac + LOG2E_BITS:
            raise ValueError(f"SoftmaxParams: exp_table_bits + exp_interp_bits = {self.exp_bits} "
                             f"exceeds in_frac + {LOG2E_BITS} = {self.in_frac + LOG2E_BITS}")
        if self.exp_frac + self.out_frac + self.recip_guard + 2 > 62:
            raise ValueError(f"SoftmaxParams: exp_frac + out_frac + recip_guard = "
                             f"{self.exp_frac + self.out_frac + self.recip_guard} exceeds 60")

    # --- derived widths --------------------------------------------------------------

    @property
    def exp_bits(self) -> int:
        """Fraction bits ``F`` of the base-2 exponent ``t``."""
        return self.exp_table_bits + self.exp_interp_bits

    @property
    def exponent_shift(self) -> int:
        """Right shift from ``d * LOG2E`` to ``t``."""
        return self.in_frac + LOG2E_BITS - self.exp_bits

    @property
    def table_frac(self) -> int:
        """Fraction bits ``E`` of the exp table entries."""
        return self.exp_frac + EXP_GUARD

    @property
    def max_exp_shift(self) -> int:
        """Largest right shift of ``m``; any larger one also gives 0."""
        return self.table_frac + 3

    @property
    def sum_width(self) -> int:
        return (self.max_length << self.exp_frac).bit_length()

    @property
    def recip_width(self) -> int:
        """Bits of ``r`` (also the divider's cycle count)."""
        return self.out_frac + self.recip_guard + 1

    @property
    def max_beats(self) -> int:
        return -(-self.max_length // self.lanes)

    @property
    def addr_width(self) -> int:
        return max(1, (self.max_beats - 1).bit_length())

    @property
    def n_width(self) -> int:
        return self.lanes.bit_length()

    @property
    def levels(self) -> int:
        """Levels of the lane trees (maximum and sum)."""
        return (self.lanes - 1).bit_length()

    # --- timing ----------------------------------------------------------------------

    @property
    def latency(self) -> int:
        """Fixed cycles of :meth:`cycles`: the max tree and running max (levels + 1), pass 1's
        drain (read and exp stages, sum tree), the divider (recip_width), pass 2's drain (read
        and exp stages, multiply, output register, minus the cycle of its last issue)."""
        return (self.levels + 1) + (EXP_STAGES + self.levels) + self.recip_width \
            + (EXP_STAGES + MUL_STAGES)

    def cycles(self, length: int) -> int:
        """Cycles from the first input beat's acceptance to the last output beat (no stalls)."""
        return 3 * (-(-length // self.lanes)) + self.latency

    def period(self, length: int) -> int:
        """Cycles per vector when vectors follow each other with no stalls."""
        return self.cycles(length) + 1

    @property
    def throughput(self) -> float:
        """Elements per cycle for long vectors (three beat-slots per beat: ingest, two passes)."""
        return self.lanes / 3

    # --- layouts and tables ----------------------------------------------------------

    def lane_layout(self) -> data.ArrayLayout:
        return data.ArrayLayout(signed(self.in_width), self.lanes)

    def in_layout(self) -> data.StructLayout:
        return data.StructLayout({"data": self.lane_layout(), "n": unsigned(self.n_width), "last": 1})

    def out_layout(self) -> data.StructLayout:
        return data.StructLayout({"data": data.ArrayLayout(signed(self.out_width), self.lanes),
                                  "n": unsigned(self.n_width), "last": 1})

    def tables(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``(base, delta)`` of the ``2**frac`` table (see :func:`exp2_tables`)."""
        return exp2_tables(self.exp_table_bits, self.table_frac)


def check_vector(p: SoftmaxParams, x) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    if x.ndim != 1 or not 1 <= x.size <= p.max_length:
        raise ValueError(f"x must be a 1-D vector of length 1..{p.max_length}, got shape {x.shape}")
    if x.min() < smin(p.in_width) or x.max() > smax(p.in_width):
        raise ValueError(f"x values must be in [{smin(p.in_width)}, {smax(p.in_width)}] "
                         f"(in_width={p.in_width})")
    return x


def exp_q(p: SoftmaxParams, d) -> np.ndarray:
    """``e = 2**(d * log2(e))`` in the unit's fixed point: ``d <= 0`` with ``in_frac`` fraction
    bits -> unsigned with ``exp_frac`` fraction bits (steps 2-3 of the module docstring)."""
    d = np.asarray(d, dtype=np.int64)
    base, delta = (np.array(t, dtype=np.int64) for t in p.tables())
    t = round_shift(d * log2e_q(), p.exponent_shift)
    frac = t & ((1 << p.exp_bits) - 1)
    ipart = -(t >> p.exp_bits)
    idx = frac >> p.exp_interp_bits
    rem = frac & ((1 << p.exp_interp_bits) - 1)
    mant = base[idx] + round_shift(delta[idx] * rem, p.exp_interp_bits)
    shift = np.minimum(ipart + EXP_GUARD, p.max_exp_shift)
    return round_shift(mant, shift)


def reciprocal(p: SoftmaxParams, s: int) -> int:
    """``r = 2**(out_frac + exp_frac + recip_guard) // s`` (step 5)."""
    return (1 << (p.out_frac + p.exp_frac + p.recip_guard)) // int(s)


def golden(p: SoftmaxParams, x) -> np.ndarray:
    """Bit-exact model: integer scores ``x`` (1-D) -> integer probabilities (int64 array)."""
    x = check_vector(p, x)
    e = exp_q(p, x - x.max())
    r = reciprocal(p, int(e.sum()))
    return np.minimum(round_shift(e * r, p.exp_frac + p.recip_guard), smax(p.out_width))


def _chunks(value, size: int):
    """``(offset, slice)`` pieces of ``value``, ``size`` bits each from the LSB."""
    return [(lo, value[lo:lo + size]) for lo in range(0, len(value), size)]


def _small_mul(a, b):
    """``a * b``; as shifted adds when one operand has at most 4 bits (no DSP for a sliver)."""
    if min(len(a), len(b)) > 4:
        return a * b
    if len(a) > len(b):
        a, b = b, a
    total = 0
    for i in range(len(a)):
        total = total + Mux(a[i], b << i, 0)
    return total


class Softmax(wiring.Component):
    """The RTL of :mod:`fpgallm.units.softmax` (see the module docstring for the contract)."""

    def __init__(self, params: SoftmaxParams):
        self.params = params
        super().__init__({
            "i": In(stream.Signature(params.in_layout())),
            "o": Out(stream.Signature(params.out_layout())),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        lanes = p.lanes
        aw = p.addr_width

        adv = Signal()  # the pass pipeline advances (the output register is empty or taken)
        m.d.comb += adv.eq(~self.o.valid | self.o.ready)

        def reg(shape, name, value, en=adv):
            s = Signal(shape, name=name)
            with m.If(en):
                m.d.sync += s.eq(value)
            return s

        # ---- buffer -------------------------------------------------------------------
        m.submodules.buf = buf = Memory(shape=p.lane_layout(), depth=p.max_beats, init=[])
        wp = buf.write_port()
        rp = buf.read_port(domain="sync")

        # ---- run-time state -----------------------------------------------------------
        wa = Signal(aw)           # next write address
        nb_m1 = Signal(aw)        # beats of the vector minus one
        n_last = Signal(p.n_width, init=lanes)  # valid lanes of the last beat
        mx = Signal(signed(p.in_width))
        ssum = Signal(p.sum_width)
        rem = Signal(p.sum_width + 1)
        recip = Signal(p.recip_width)
        cnt = Signal(range(max(2, p.recip_width)))
        ra = Signal(aw)
        issued_all = Signal()

        # ---- ingest: write the buffer, lane-max tree, running max ---------------------
        in_acc = Signal()
        m.d.comb += in_acc.eq(self.i.valid & self.i.ready)
        m.d.sync += [wp.addr.eq(wa), wp.data.eq(self.i.payload.data), wp.en.eq(in_acc)]
        with m.If(in_acc):
            m.d.sync += wa.eq(Mux(self.i.payload.last, 0, wa + 1))
            with m.If(self.i.payload.last):
                m.d.sync += [nb_m1.eq(wa), n_last.eq(self.i.payload.n)]
        mvals = [reg(signed(p.in_width), f"mx0_{k}",
                     Mux(self.i.payload.n > k, self.i.payload.data[k], smin(p.in_width)), en=1)
                 for k in range(lanes)]
        mvalid = reg(1, "mx0_valid", in_acc, en=1)
        mlast = reg(1, "mx0_last", self.i.payload.last, en=1)
        lvl = 0
        while len(mvals) > 1:
            lvl += 1
            nxt = []
            for j in range(0, len(mvals), 2):
                if j + 1 < len(mvals):
                    a, b = mvals[j], mvals[j + 1]
                    nxt.append(reg(signed(p.in_width), f"mx{lvl}_{j // 2}", Mux(b > a, b, a), en=1))
                else:
                    nxt.append(reg(signed(p.in_width), f"mx{lvl}_{j // 2}", mvals[j], en=1))
            mvals = nxt
            mvalid = reg(1, f"mx{lvl}_valid", mvalid, en=1)
            mlast = reg(1, f"mx{lvl}_last", mlast, en=1)
        mfirst = Signal(init=1)
        with m.If(mvalid):
            m.d.sync += [mx.eq(Mux(mfirst | (mvals[0] > mx), mvals[0], mx)), mfirst.eq(mlast)]

        # ---- pass pipeline: read, exp (shared by both passes) ------------------------
        issuing = Signal()
        in_pass = Signal()
        in_c = Signal()
        m.d.comb += [issuing.eq(in_pass & ~issued_all & adv), rp.addr.eq(ra), rp.en.eq(adv)]
        with m.If(issuing):
            m.d.sync += ra.eq(ra + 1)
            with m.If(ra == nb_m1):
                m.d.sync += issued_all.eq(1)
        at_last = ra == nb_m1
        ok_now = Cat(*[~at_last | (n_last > k) for k in range(lanes)])
        tags = {"valid": reg(1, "r_valid", issuing), "last": reg(1, "r_last", at_last),
                "c": reg(1, "r_c", in_c), "ok": reg(lanes, "r_ok", ok_now)}

        def pipe_tags(stage):
            for key, v in list(tags.items()):
                tags[key] = reg(len(v), f"{stage}_{key}", v)

        base_t, delta_t = p.tables()
        m.submodules.exp_base = rom_base = Memory(shape=unsigned(max(base_t).bit_length()),
                                                  depth=len(base_t), init=base_t)
        m.submodules.exp_delta = rom_delta = Memory(shape=unsigned(max(1, max(delta_t).bit_length())),
                                                    depth=len(delta_t), init=delta_t)
        log2e = Const(log2e_q(), unsigned(LOG2E_BITS + 1))
        sh1 = p.exponent_shift
        ib, F = p.exp_interp_bits, p.exp_bits
        shw = p.max_exp_shift.bit_length()
        e_lanes = []
        for k in range(lanes):
            x = rp.data[k]
            d = reg(signed(p.in_width + 1), f"e1_d{k}", x - mx)                       # E1
            prod1 = reg(signed(p.in_width + LOG2E_BITS + 2), f"e2_p{k}", d * log2e)     # E2
            t = reg(signed(p.in_width + LOG2E_BITS + 3), f"e3_t{k}",                    # E3
                    (prod1 + ((1 << sh1) >> 1)) >> sh1)
            rb_port = rom_base.read_port(domain="sync")                                 # E4
            rd_port = rom_delta.read_port(domain="sync")
            m.d.comb += [rb_port.addr.eq(t[ib:F]), rb_port.en.eq(adv),
                         rd_port.addr.eq(t[ib:F]), rd_port.en.eq(adv)]
            # shift = min(-floor(t) + EXP_GUARD, max_exp_shift) without a negation in series
            # with the compare: -floor(t) + g = ~floor(t) + g + 1, on the low shw bits only
            floor_t = Signal(signed(len(t) - F), name=f"e3_fl{k}")
            m.d.comb += floor_t.eq(t >> F)
            sh4 = reg(shw, f"e4_sh{k}", Mux(floor_t <= EXP_GUARD - p.max_exp_shift,
                                            p.max_exp_shift, (~floor_t[:shw] + EXP_GUARD + 1)[:shw]))
            rem4 = reg(max(1, ib), f"e4_rem{k}", t[:ib] if ib else 0)
            base5 = reg(len(rb_port.data), f"e5_base{k}", rb_port.data)                 # E5
            prod2 = reg(len(rd_port.data) + max(1, ib), f"e5_p{k}", rd_port.data * rem4)
            sh5 = reg(shw, f"e5_sh{k}", sh4)
            mant = reg(len(rb_port.data) + 1, f"e6_m{k}",                               # E6
                       base5 + ((prod2 + ((1 << ib) >> 1)) >> ib))
            sh6 = reg(shw, f"e6_sh{k}", sh5)
            bias = (Const(1, unsigned(p.max_exp_shift + 1)) << sh6) >> 1
            e = reg(p.exp_frac + 1, f"e7_e{k}", ((mant + bias) >> sh6)[:p.exp_frac + 1])  # E7
            e_lanes.append(e)
        for stage in ("e1", "e2", "e3", "e4", "e5", "e6", "e7"):
            pipe_tags(stage)
        ok7 = tags["ok"]

        # ---- pass 1 tail: lane sum tree, sum register -------------------------------
        svals = [Mux(ok7[k], e_lanes[k], 0) for k in range(lanes)]
        svalid, slast = tags["valid"], tags["last"]
        lvl = 0
        while len(svals) > 1:
            lvl += 1
            nxt = []
            for j in range(0, len(svals), 2):
                pair = svals[j] + svals[j + 1] if j + 1 < len(svals) else svals[j]
                nxt.append(reg(p.exp_frac + 1 + lvl, f"s{lvl}_{j // 2}", pair))
            svals = nxt
            svalid = reg(1, f"s{lvl}_valid", svalid)
            slast = reg(1, f"s{lvl}_last", slast)

        # ---- pass 2 tail: multiply by the reciprocal, round, saturate -----------------
        # e * r is wider than one 18x18 multiplier: partial products of <= 17-bit unsigned
        # chunks are registered (M1), then summed (M2), then rounded (output register)
        pw = p.exp_frac + 1 + p.recip_width
        prod3 = []
        for k in range(lanes):
            parts = [reg(pw, f"m1_pp{k}_{i}_{j}", _small_mul(ec, rc) << (ei + rj))
                     for i, (ei, ec) in enumerate(_chunks(e_lanes[k], MUL_CHUNK))
                     for j, (rj, rc) in enumerate(_chunks(recip, MUL_CHUNK))]
            total = parts[0]
            for part in parts[1:]:
                total = total + part
            prod3.append(reg(pw, f"m2_p{k}", total))
        m1 = {key: reg(len(v), f"m1_{key}", v) for key, v in tags.items()}
        m1 = {key: reg(len(v), f"m2_{key}", v) for key, v in m1.items()}
        rs = p.exp_frac + p.recip_guard
        hi = smax(p.out_width)
        out_valid = Signal()
        with m.If(adv):
            m.d.sync += [out_valid.eq(m1["valid"] & m1["c"]), self.o.payload.last.eq(m1["last"]),
                         self.o.payload.n.eq(Mux(m1["last"], n_last, lanes))]
            for k in range(lanes):
                rounded = (prod3[k] + (1 << rs >> 1)) >> rs
                m.d.sync += self.o.payload.data[k].eq(
                    Mux(~m1["ok"][k], 0, Mux(rounded > hi, hi, rounded)))
        m.d.comb += self.o.valid.eq(out_valid)

        # ---- sequencer (one-hot: one flag per phase) -----------------------------------
        st_in, st_max, st_p1, st_div, st_p2 = (Signal(init=int(n == "ingest"), name=f"st_{n}")
                                               for n in ("ingest", "max", "pass1", "div", "pass2"))
        m.d.comb += [self.i.ready.eq(st_in), in_pass.eq(st_p1 | st_p2), in_c.eq(st_p2)]
        with m.If(st_in & in_acc & self.i.payload.last):
            m.d.sync += [st_in.eq(0), st_max.eq(1)]
        with m.If(st_max & mvalid & mlast):  # the vector's maximum is in mx from the next cycle
            m.d.sync += [st_max.eq(0), st_p1.eq(1), ra.eq(0), issued_all.eq(0), ssum.eq(0)]
        with m.If(st_p1 & svalid):
            m.d.sync += ssum.eq(ssum + svals[0])
            with m.If(slast):
                m.d.sync += [st_p1.eq(0), st_div.eq(1), rem.eq(1 << p.exp_frac), cnt.eq(0)]
        with m.If(st_div):  # restoring division, one quotient bit per cycle
            ge = rem >= ssum
            m.d.sync += [recip.eq(Cat(ge, recip[:-1]) if p.recip_width > 1 else ge),
                         rem.eq(Mux(ge, rem - ssum, rem) << 1), cnt.eq(cnt + 1)]
            with m.If(cnt == p.recip_width - 1):
                m.d.sync += [st_div.eq(0), st_p2.eq(1), ra.eq(0), issued_all.eq(0)]
        with m.If(st_p2 & self.o.valid & self.o.ready & self.o.payload.last):
            m.d.sync += [st_p2.eq(0), st_in.eq(1)]
        return m


def generate(params: SoftmaxParams, top: str = "fpgallm_softmax") -> Emitted:
    """Verilog of :class:`Softmax` for ``params``."""
    return to_verilog(Softmax(params), top, params)
