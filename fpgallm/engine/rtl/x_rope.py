"""Execution unit of ``ROPE``: rotate ``m`` heads of ``n = head_dim`` elements of ``V[a]``
into ``V[dst]`` at position ``S[POS]`` of each sequence, with the cos/sin of the table in
memory at ``addr``; ``mode`` HALVES 0 (pairs ``(x[f], x[f + n/2])``) / ADJACENT 1 (pairs
``(x[2f], x[2f+1])``).

Arithmetic: exactly ``golden.rope`` = :func:`fpgallm.units.rope.golden_table` (the rope
unit's rotation :func:`fpgallm.units.rope.rotate`, sin/cos Q1.14 from the table):
``y0 = sat24(round_shift(x0*c - x1*s, 14))``, ``y1 = sat24(round_shift(x0*s + x1*c, 14))``.

Table layout (:func:`rope_image`): one row per position, pair ``f`` of a row as two int16
little-endian, ``cos`` then ``sin`` (4 bytes), rows padded to whole stripe words: row stride
``row_beats(n) * SB`` bytes with ``row_beats(n) = ceil(2n / SB)``, ``SB`` the stripe bytes.

Dataflow, per sequence: the row ``S[POS]`` is read (``mr``) into a pair buffer (flip-flops,
``max_head_dim / 2`` pairs), then the heads stream through a 2-stage rotation pipeline of
``L = vector_lanes`` pair lanes:

- ADJACENT: one read of ``m*n`` elements on ``vra``, one write on ``vw``; a beat is ``L/2``
  pairs.
- HALVES: per head, ``vra`` reads the low half and ``vrb`` the high half (``n/2`` elements
  each); the low results are written at once, the high ones are held in a FIFO of
  ``max_head_dim / (2L)`` beats and written after them (one write request per head).

``dst == a`` is allowed.  Requirements (the compiler's models meet them; ``ValueError`` here
for the params): ``vector_lanes`` a power of two >= 2; at run time ``n <= max_head_dim``,
``n`` a multiple of ``L`` (ADJACENT) or ``2L`` (HALVES).  Timing: :func:`cycles`.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered

from fpgallm.engine import compiler as C
from fpgallm.engine.isa import Op
from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl import iface
from fpgallm.engine.rtl.vecutil import CmdLatch, lanes_log2
from fpgallm.hdl.fixed import hdl_round_shift, hdl_saturate
from fpgallm.hdl.pipeline import stall_pipeline

OPS = (Op.ROPE,)

W = iface.REG_BITS
CS_BITS = 16


def max_head_dim(p: EngineParams) -> int:
    """The head_dim the pair buffer holds: ``EngineParams.max_head_dim`` (at most
    ``max_dim``, even), at least one beat of pairs (``2 * vector_lanes``)."""
    return max(2 * p.vector_lanes, min(p.max_head_dim, p.max_dim) // 2 * 2)


def stripe_bytes(p: EngineParams) -> int:
    return iface.stripe_bits(p) // 8


def row_beats(p: EngineParams, hd: int) -> int:
    """Stripe words of one table row (``hd / 2`` pairs of 4 bytes)."""
    return -(-(2 * hd) // stripe_bytes(p))


def rope_image(tab: dict, params: EngineParams) -> bytes:
    """Bytes of the RoPE table region: ``tab["cos"]``, ``tab["sin"]`` ``[context, hd/2]``
    (Q1.14) as rows of interleaved int16 ``(cos, sin)`` pairs, padded to whole stripe words."""
    cos = np.asarray(tab["cos"], np.int64)
    sin = np.asarray(tab["sin"], np.int64)
    ctx, half = cos.shape
    stride = row_beats(params, 2 * half) * stripe_bytes(params)
    rows = np.zeros((ctx, stride // 2), np.int16)
    rows[:, 0:2 * half:2] = cos
    rows[:, 1:2 * half:2] = sin
    return rows.astype("<i2").tobytes()


def region_bytes(params: EngineParams, context: int, hd: int) -> int:
    """Size of the table region (used by the compiler)."""
    return context * row_beats(params, hd) * stripe_bytes(params)


FIXED_CYCLES = 5    # command latch, address, request; 2 pipeline stages; done
SEQ_CYCLES = 1      # per sequence: the switch from the table fetch to streaming


def cycles(p: EngineParams, n: int, heads: int, nseq: int, mode: int, mem_latency: int = 0) -> int:
    """Cycles of one ``ROPE`` (no stalls; ``mem_latency``: cycles from a memory read request
    to its first word beyond one).  Per sequence the table row is fetched, then the heads
    stream (``heads * n / L`` output beats); HALVES drains each sequence's last high half
    (``n / 2L`` beats) while the next sequence's row is fetched."""
    L = p.vector_lanes
    beats = heads * n // L
    fetch = row_beats(p, n) + mem_latency
    c = nseq * (fetch + beats + SEQ_CYCLES) + FIXED_CYCLES
    sb = stripe_bytes(p)
    if sb & (sb - 1):                  # row_beats by repeated subtraction before the fetch
        c += row_beats(p, n) + 1
    if mode == C.ROPE_HALVES:
        c -= (nseq - 1) * min(n // (2 * L), fetch + SEQ_CYCLES)
    return c


def _issue(m, req, start, nseq, nunits, reg, base, step, count, name):
    """Requests for ``seq = 0..nseq-1`` x ``unit = 0..nunits-1``: start ``base + unit*step``."""
    seq = Signal(4, name=f"{name}_seq")
    u = Signal(iface.ELEM_BITS, name=f"{name}_unit")
    off = Signal(iface.ELEM_BITS + 1, name=f"{name}_off")
    pending = Signal(name=f"{name}_pending")
    m.d.comb += [req.valid.eq(pending), req.payload.reg.eq(reg), req.payload.seq.eq(seq),
                 req.payload.start.eq(base + off), req.payload.count.eq(count)]
    with m.If(start):
        m.d.sync += [seq.eq(0), u.eq(0), off.eq(0), pending.eq(1)]
    with m.Elif(req.valid & req.ready):
        with m.If(u + 1 == nunits):
            m.d.sync += [u.eq(0), off.eq(0), seq.eq(seq + 1)]
            with m.If(seq + 1 == nseq):
                m.d.sync += pending.eq(0)
        with m.Else():
            m.d.sync += [u.eq(u + 1), off.eq(off + step)]


class Unit(wiring.Component):
    """The ``ROPE`` execution unit (contract in the module docstring)."""

    def __init__(self, params: EngineParams):
        self.params = params
        if lanes_log2(params, "x_rope") < 1:
            raise ValueError(f"x_rope: EngineParams.vector_lanes must be >= 2, got {params.vector_lanes}")
        if params.max_dim < 2 * params.vector_lanes:
            raise ValueError(f"x_rope: EngineParams.vector_lanes must be <= max_dim/2, "
                             f"got {params.vector_lanes}")
        super().__init__(iface.exec_signature(params))

    def elaborate(self, platform):
        p = self.params
        L = p.vector_lanes
        lk = lanes_log2(p, "x_rope")
        SB = stripe_bytes(p)
        PPW = SB // 4                      # pairs per stripe word
        NP = max_head_dim(p) // 2          # pairs in the buffer
        m = Module()

        cl = CmdLatch(m, self.cmd, p)
        c = cl.c
        n = c.ins.n
        adj = Signal(name="adjacent")
        m.d.comb += adj.eq(c.ins.mode == C.ROPE_ADJACENT)

        # ---- per-command quantities (valid from the cycle after start) ----
        mn = Signal(2 * iface.ELEM_BITS, name="mn")
        rowb = Signal(range(2 * max_head_dim(p) // 4 + 2), name="row_beats")
        seq_in = Signal(2 * iface.ELEM_BITS, name="seq_in_beats")     # input beats per sequence
        head_in = Signal(iface.ELEM_BITS, name="head_in_beats")       # input beats per head
        half_beats = Signal(iface.ELEM_BITS, name="half_beats")       # n / (2L)
        m.d.comb += [seq_in.eq(Mux(adj, mn >> lk, mn >> (lk + 1))),
                     half_beats.eq(n >> (lk + 1)),
                     head_in.eq(Mux(adj, n >> lk, n >> (lk + 1)))]
        calc = Signal(name="calc")        # computing row_beats = ceil(2n / SB)
        rem = Signal(signed(iface.ELEM_BITS + 3), name="calc_rem")
        if SB & (SB - 1) == 0:
            sk = SB.bit_length() - 1
            with m.If(cl.start):
                m.d.sync += [mn.eq(n * c.ins.m), rowb.eq((2 * n + SB - 1) >> sk)]
        else:
            with m.If(cl.start):
                m.d.sync += [mn.eq(n * c.ins.m), rowb.eq(0), rem.eq(2 * n), calc.eq(1)]
            with m.Elif(calc):
                with m.If(rem > 0):
                    m.d.sync += [rem.eq(rem - SB), rowb.eq(rowb + 1)]
                with m.Else():
                    m.d.sync += calc.eq(0)

        # ---- table row of each sequence into the pair buffer ----
        cos = [Signal(signed(CS_BITS), name=f"cos{f}") for f in range(NP)]
        sin = [Signal(signed(CS_BITS), name=f"sin{f}") for f in range(NP)]
        tseq = Signal(4, name="tseq")
        t_req = Signal(name="t_req")
        t_fill = Signal(name="t_fill")
        t_ready = Signal(name="t_ready")
        fword = Signal(range(max(2, -(-NP // PPW) + 1)), name="fill_word")
        go = Signal(name="t_go")          # (re)start the fetch for sequence tseq
        with m.If(cl.start):
            m.d.sync += [tseq.eq(0), t_ready.eq(0), t_fill.eq(0)]
        m.d.sync += go.eq(cl.start)
        with m.If(go & ~calc):
            m.d.sync += [t_req.eq(1), go.eq(0)]
        with m.Elif(go):
            m.d.sync += go.eq(1)
        pos = Signal(iface.SCALAR_BITS, name="pos")
        m.d.comb += pos.eq(c.pos[0])
        for s in range(1, p.batch):
            with m.If(tseq == s):
                m.d.comb += pos.eq(c.pos[s])
        m.d.comb += [self.mr.req.valid.eq(t_req),
                     self.mr.req.payload.addr.eq(c.ins.addr + pos * rowb * SB),
                     self.mr.req.payload.beats.eq(rowb)]
        with m.If(self.mr.req.valid & self.mr.req.ready):
            m.d.sync += [t_req.eq(0), t_fill.eq(1), fword.eq(0)]
        m.d.comb += self.mr.data.ready.eq(t_fill)
        word = self.mr.data.payload.data
        with m.If(self.mr.data.valid & self.mr.data.ready):
            m.d.sync += fword.eq(fword + 1)
            for f in range(NP):
                with m.If((fword == f // PPW) if f // PPW else ~fword.any()):
                    i = f % PPW
                    m.d.sync += [cos[f].eq(word[32 * i:32 * i + 16].as_signed()),
                                 sin[f].eq(word[32 * i + 16:32 * i + 32].as_signed())]
            with m.If(self.mr.data.payload.last):
                m.d.sync += [t_fill.eq(0), t_ready.eq(1)]

        # ---- register requests ----
        nunits = Mux(adj, 1, c.ins.m)
        _issue(m, self.vra.req, cl.start, c.nseq, nunits, c.ins.a, 0, n,
               Mux(adj, mn, n >> 1), "ra")
        _issue(m, self.vrb.req, cl.start & ~adj, c.nseq, c.ins.m, c.ins.a, n >> 1, n, n >> 1, "rb")
        _issue(m, self.vw.req, cl.start, c.nseq, nunits, c.ins.dst, 0, n, Mux(adj, mn, n), "wr")

        # ---- input: A (and B), gated by the table of the current sequence ----
        in_valid = Signal(name="in_valid")
        in_ready = Signal(name="in_ready")
        m.d.comb += in_valid.eq(cl.busy & t_ready & self.vra.data.valid & (adj | self.vrb.data.valid))
        m.d.comb += [self.vra.data.ready.eq(in_valid & in_ready),
                     self.vrb.data.ready.eq(in_valid & in_ready & ~adj)]
        pipe_ready = Signal(name="pipe_o_ready")
        pipe_valid = Signal(name="pipe_o_valid")
        advance, _ = stall_pipeline(m, in_valid, in_ready, pipe_valid, pipe_ready, 2, name="rot")

        kb = Signal(iface.ELEM_BITS, name="head_beat")
        icnt = Signal(2 * iface.ELEM_BITS, name="in_count")
        with m.If(cl.start):
            m.d.sync += [kb.eq(0), icnt.eq(0)]
        with m.Elif(in_valid & in_ready):
            m.d.sync += [kb.eq(Mux(kb + 1 == head_in, 0, kb + 1)), icnt.eq(icnt + 1)]
            with m.If(icnt + 1 == seq_in):
                m.d.sync += [icnt.eq(0), kb.eq(0), t_ready.eq(0)]
                with m.If(tseq + 1 != c.nseq):
                    m.d.sync += [tseq.eq(tseq + 1), t_req.eq(1)]

        A = self.vra.data.payload.data
        B = self.vrb.data.payload.data
        ra = [Signal(signed(W), name=f"ra{j}") for j in range(L)]
        rb = [Signal(signed(W), name=f"rb{j}") for j in range(L)]
        for j in range(L):
            # pair index of lane j: kb*L/2 + j (ADJACENT, lanes < L/2) or kb*L + j (HALVES)
            cand_h = [(cos[k * L + j], sin[k * L + j]) for k in range(NP // L)]
            if j < L // 2:
                cand_a = [(cos[k * (L // 2) + j], sin[k * (L // 2) + j]) for k in range(NP // (L // 2))]
                ca = Array(x[0] for x in cand_a)[kb]
                sa = Array(x[1] for x in cand_a)[kb]
                a_in = Mux(adj, A[2 * j], A[j])
                b_in = Mux(adj, A[2 * j + 1], B[j])
            else:
                ca = sa = 0
                a_in, b_in = A[j], B[j]
            ch = Array(x[0] for x in cand_h)[kb]
            sh = Array(x[1] for x in cand_h)[kb]
            cj = Signal(signed(CS_BITS), name=f"c{j}")
            sj = Signal(signed(CS_BITS), name=f"s{j}")
            m.d.comb += [cj.eq(Mux(adj, ca, ch)), sj.eq(Mux(adj, sa, sh))]
            prods = [Signal(signed(W + CS_BITS), name=f"{nm}{j}") for nm in ("ac", "bs", "as", "bc")]
            with m.If(advance):
                m.d.sync += [prods[0].eq(a_in * cj), prods[1].eq(b_in * sj),
                             prods[2].eq(a_in * sj), prods[3].eq(b_in * cj),
                             ra[j].eq(hdl_saturate(hdl_round_shift(prods[0] - prods[1], C.ROPE_FRAC,
                                                                   C.ROPE_FRAC), W)),
                             rb[j].eq(hdl_saturate(hdl_round_shift(prods[2] + prods[3], C.ROPE_FRAC,
                                                                   C.ROPE_FRAC), W))]

        # ---- output: ADJACENT directly; HALVES low half directly, high half via the FIFO ----
        # the high half, NP // L beats; a 2-beat half gets a third entry, as Amaranth's
        # 2-entry buffered FIFO holds one beat in a 1-deep memory with a 0-bit address
        hi_beats = max(1, NP // L)
        m.submodules.hi = hi = SyncFIFOBuffered(width=L * W, depth=3 if hi_beats == 2 else hi_beats)
        phase_hi = Signal(name="phase_hi")
        ob = Signal(iface.ELEM_BITS, name="half_beat")      # beat within the half (HALVES)
        wcnt = Signal(2 * iface.ELEM_BITS, name="out_count")  # beats within the write request
        wlen = Signal(2 * iface.ELEM_BITS, name="write_beats")
        tot = Signal(2 * iface.ELEM_BITS + 4, name="out_total")
        m.d.comb += wlen.eq(Mux(adj, mn >> lk, n >> lk))
        m.d.comb += hi.w_data.eq(Cat(*rb))
        vwd = self.vw.data
        with m.If(adj):
            m.d.comb += [vwd.valid.eq(pipe_valid), pipe_ready.eq(vwd.ready)]
            for j in range(L // 2):
                m.d.comb += [vwd.payload.data[2 * j].eq(ra[j]), vwd.payload.data[2 * j + 1].eq(rb[j])]
        with m.Elif(~phase_hi):
            # a low beat leaves only together with its high beat into the FIFO
            m.d.comb += [vwd.valid.eq(pipe_valid & hi.w_rdy), pipe_ready.eq(vwd.ready & hi.w_rdy),
                         hi.w_en.eq(pipe_valid & vwd.ready & hi.w_rdy)]
            for j in range(L):
                m.d.comb += vwd.payload.data[j].eq(ra[j])
        with m.Else():
            m.d.comb += [vwd.valid.eq(hi.r_rdy), hi.r_en.eq(vwd.ready)]
            for j in range(L):
                m.d.comb += vwd.payload.data[j].eq(hi.r_data[W * j:W * (j + 1)].as_signed())
        m.d.comb += vwd.payload.last.eq(wcnt + 1 == wlen)

        m.d.sync += self.done.eq(0)
        with m.If(cl.start):
            m.d.sync += [phase_hi.eq(0), ob.eq(0), wcnt.eq(0), tot.eq(0)]
        with m.Elif(vwd.valid & vwd.ready):
            m.d.sync += [wcnt.eq(Mux(wcnt + 1 == wlen, 0, wcnt + 1)), tot.eq(tot + 1)]
            with m.If(~adj):
                m.d.sync += ob.eq(Mux(ob + 1 == half_beats, 0, ob + 1))
                with m.If(ob + 1 == half_beats):
                    m.d.sync += phase_hi.eq(~phase_hi)
            with m.If(tot + 1 == (mn >> lk) * c.nseq):
                m.d.sync += [self.done.eq(1)] + cl.finish()
        return m

