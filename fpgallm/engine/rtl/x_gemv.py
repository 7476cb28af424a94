"""GEMV execution unit of the decode engine, and the matrix memory layout.

``GEMV dst, a, mode, n, m, addr, imm``: ``V[dst][0:n] = shift_to(acc, acc_exp - frac_a + imm[7:0])``
with ``acc = golden.gemv_blocked(W, V[a][0:m], exps(V[a]))`` for every sequence of the run
(``cmd.nseq``), bit-exact with :meth:`fpgallm.engine.golden.Machine.op_GEMV`.

Matrix in memory (:func:`matrix_image`, sizes :func:`fpgallm.engine.compiler.matrix_bytes`)
-----------------------------------------------------------------------------------------
One stream of stripe words (``W = mem_ports * port_width`` bits, the GEMV's ``word_bits``):

* a header word: bits 15:0 ``acc_exp`` (signed), 39:16 stripe words per row tile, 63:40
  row tiles (rows padded to the lanes / ``gemv_lanes``);
* every row tile (``gemv_lanes`` rows) in turn: the weight words of its groups
  (:meth:`~fpgallm.units.gemv.PackedMatrix.weight_words` order), with the tile's scale
  beats (:meth:`~fpgallm.units.gemv.PackedMatrix.scale_words`, ``scale_beat_bits`` each)
  concatenated into one bit stream, cut into stripe words, and each such *scale word*
  placed just before the first group whose beat it completes
  (:meth:`~fpgallm.units.gemv.GemvParams.scale_words_before`): no padding but at the end
  of a tile, so the scales cost ``ceil(groups * scale_beat_bits / W)`` words per tile
  (SmolLM2's Q4_1 at 8 lanes x 1024 bits: 5.1 bits per weight, GGUF's is 5.0).

So the unit reads ONE memory stream in consumption order; a scale word costs one cycle
of the stream like any other word, so the GEMV streams at ``bytes / (W/8)`` cycles.

Hardware decisions
------------------
* **One GEMV datapath per weight format in ``params.weight_formats``, the group chosen at
  run time.**  The format fixes the multiplier operands (int8, int4, uint4), the MACs per
  lane (``K = W / (lanes * bits)``: int4 needs twice the multipliers of int8 to keep up with
  the stream) and the minimum path; the group (32/64/128, ``mode[3:2]``) only changes when
  the group accumulator closes (a counter compare on :class:`~fpgallm.units.gemv.Gemv`'s
  ``group_words`` port), so one datapath per format serves every group: 4 datapaths at most,
  2 for a Q4_1 + Q8_0 model such as SmolLM2-135M (engine ``weight_formats`` should list only
  what the models need: each datapath costs its multipliers and Verilator build time).  A
  fully run-time format datapath would share the int4/int8 multipliers but costs a wider
  multiplier per int4 weight and muxing on the critical path; not done.
* **Batch**: ``batch`` copies of the datapath of each format share the weight stream: a
  weight word is fetched once and applied to all ``nseq`` vectors in the same cycle (B x the
  MACs); the copies run in lockstep (one ``w``/``s`` broadcast, outputs taken together).
* Activations: ``m`` elements of ``V[a]`` (int8 after ``QUANT``) and their ``m / 32``
  exponents are loaded into each copy's activation RAM, sequence by sequence, while the
  header is fetched: the first half of the words through ``vra`` straight into the Gemv,
  the second half at the same time through ``vrb`` into a buffer (half the activation RAM)
  that is drained after the first half at one word a cycle (:func:`load_split`): the Gemv
  takes its activation words in order, and the vector ports deliver ``vector_lanes``
  elements a cycle each, less than a word of ``K``.
* Output: each row tile's ``lanes`` accumulators go through ``shift_to`` (round half up,
  saturate to 24 bits; a bias stage, then shift and saturate) into a collect buffer of
  ``C = max(lanes, vector_lanes)`` rows per sequence, double buffered; each chunk is written
  with one ``vw`` request per sequence.

Timing (no stall; measured in the tests, :meth:`fpgallm.engine.cycles.CycleModel.cost`):
``max(header fetch, load) + tiles * tile_words + pipeline + writes`` (:func:`cycles`).
"""

from __future__ import annotations

import math

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory

from fpgallm.engine import compiler as C
from fpgallm.engine.isa import Op
from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl import iface
from fpgallm.hdl.requant import round_sat, shift_left_sat, shift_right_floor
from fpgallm.hdl.shift import step_shift
from fpgallm.units.gemv import Gemv, GemvParams, PackedMatrix

__all__ = ["OPS", "Unit", "matrix_image", "MatrixStream", "check_params", "cycles", "load_split"]

OPS = (Op.GEMV,)


def check_params(p: EngineParams) -> None:
    """What the GEMV / EMBED units need of ``p`` (ValueError naming the field otherwise)."""
    W = iface.stripe_bits(p)
    if W < C.MATRIX_HEADER_BITS:
        raise ValueError(f"EngineParams: mem_ports * port_width must be >= {C.MATRIX_HEADER_BITS} "
                         f"bits for the GEMV unit, got {W}")
    P, L = p.gemv_lanes, p.vector_lanes
    if P % L and L % P:
        raise ValueError(f"EngineParams: gemv_lanes {P} and vector_lanes {L} must divide one another")
    if C.ACT_GROUP % L and L % C.ACT_GROUP:
        raise ValueError(f"EngineParams.vector_lanes must divide or be a multiple of "
                         f"{C.ACT_GROUP}, got {L}")
    for f in p.weight_formats:
        gp = C.engine_gemv_params(p, f)
        if gp.scale_beat_bits > W:
            raise ValueError(f"EngineParams: gemv_lanes {P} x {gp.scale_lane_bits} scale bits of "
                             f"{f.value} = {gp.scale_beat_bits} must fit one stripe word "
                             f"(mem_ports * port_width = {W})")


def load_split(p: EngineParams, gp: GemvParams, m: int) -> tuple[int, int]:
    """``(h, b)``: words of an ``m``-column activation vector loaded through ``vra`` (straight
    into the Gemv) and through ``vrb`` (buffered, drained after them at one word a cycle)."""
    cw = m // gp.k
    R = max(C.ACT_GROUP // gp.k, p.vector_lanes // gp.k, 1)
    h = -(-cw // (2 * R)) * R
    return h, cw - h


def cycles(p: EngineParams, pm: PackedMatrix, n: int, m: int, nseq: int, mem_latency: int = 0) -> int:
    """Cycles of :class:`Unit` from the command accepted to ``done`` with no stall (measured
    in tests/engine/rtl/test_x_gemv_unit.py): per sequence the activation load (the first
    half of the words at ``vector_lanes`` elements a cycle from ``vra`` while ``vrb`` loads
    the second half into a buffer, then the buffer at a word a cycle) overlapping the
    header fetch (two memory round trips; ``mem_latency``: cycles from a read request to
    its first word beyond one), then one stripe word a cycle for ``ceil(n / lanes)`` row
    tiles, the GEMV pipeline, and the last chunk's register writes (a request and its beats
    per sequence)."""
    gp = C.engine_gemv_params(p, pm.params.fmt)
    P, L = p.gemv_lanes, p.vector_lanes
    words = -(-n // P) * pm.params.tile_stream_words(m)
    h, b = load_split(p, gp, m)
    load = nseq * (-(-h * gp.k // L) + b + 3) + 2
    last_beats = -(-((n - 1) % max(P, L) + 1) // L)
    return (max(load, 2 * mem_latency + 7) + words + gp.latency + 1
            + nseq * (1 + last_beats))


# --- memory image ----------------------------------------------------------------------------

def matrix_image(pm: PackedMatrix, params: EngineParams) -> bytes:
    """The bytes of a matrix region (module docstring, "Matrix in memory")."""
    p = pm.params
    W = iface.stripe_bits(params)
    if p.word_bits != W:
        raise ValueError(f"matrix_image: matrix packed for {p.word_bits}-bit words, the engine "
                         f"streams {W}-bit stripe words")
    wb = W // 8
    P, K, b = p.lanes, p.k, p.fmt.bits
    rows, cols = pm.q.shape
    tiles = rows // P
    G = pm.dm.shape[1]
    gw = (cols // G) // K
    tw = p.tile_stream_words(cols)
    if tw >= 1 << 24 or tiles >= 1 << 24:
        raise ValueError(f"matrix_image: {rows} x {cols} too large for the header")
    hdr = (pm.acc_exp & 0xFFFF) | (tw << 16) | (tiles << 40)
    nh = -(-C.MATRIX_HEADER_BITS // W)
    header = hdr.to_bytes(nh * wb, "little")
    # weight words: (tiles, words, W/8) bytes
    u = pm.q.astype(np.int64) & ((1 << b) - 1)
    u = u.reshape(tiles, P, cols // K, K).transpose(0, 2, 1, 3).reshape(tiles, cols // K, P * K)
    if b == 4:
        u = u[..., 0::2] | (u[..., 1::2] << 4)
    wbytes = u.astype(np.uint8)
    # scale beats: one bit stream per row tile, (tiles, S words, W/8) bytes
    fields = [(pm.dm, p.scale_bits), (pm.dr, p.shift_width)]
    if p.fmt.has_min:
        fields += [(pm.mm, p.scale_bits), (pm.mr, p.shift_width)]
    lane = np.zeros((rows, G), np.int64)
    off = 0
    for arr, w in fields:
        lane |= (np.asarray(arr, np.int64) & ((1 << w) - 1)) << off
        off += w
    LB = off
    SB = P * LB
    S = p.scale_words_before(G - 1)
    bits = ((lane[..., None] >> np.arange(LB)) & 1).astype(np.uint8)           # (rows, G, LB)
    bits = bits.reshape(tiles, P, G, LB).transpose(0, 2, 1, 3).reshape(tiles, G * SB)
    padded = np.zeros((tiles, S * W), np.uint8)
    padded[:, :G * SB] = bits
    sbytes = np.packbits(padded, axis=-1, bitorder="little").reshape(tiles, S, wb)
    # the order of one tile's words: scale word j just before the first group needing it
    order = []
    done = 0
    for g in range(G):
        need = p.scale_words_before(g)
        order += [("s", j) for j in range(done, need)]
        done = need
        order += [("w", g * gw + j) for j in range(gw)]
    allw = np.concatenate([sbytes, wbytes], axis=1)
    idx = np.array([j if kind == "s" else S + j for kind, j in order], np.int64)
    body = allw[:, idx]
    assert body.shape[1] == tw
    return header + body.tobytes()


# --- hardware helpers -----------------------------------------------------------------------

def _log2(v: int) -> int:
    assert v & (v - 1) == 0, v
    return v.bit_length() - 1


def is_(x, v: int):
    """``x == v``, lint-clean for ``v == 0`` (Yosys emits ``!x``: WIDTHTRUNC)."""
    return ~x.any() if v == 0 else x == v


def div_const(m: Module, x, d: int, nbits: int, name: str):
    """``floor(x / d)`` for unsigned ``x < 2**nbits`` and a constant ``d``: a shift for a power
    of two, else a multiply by ``ceil(2**s / d)``, ``s = nbits + ceil(log2 d)`` (exact)."""
    q = Signal(nbits, name=name)
    if d & (d - 1) == 0:
        m.d.comb += q.eq(x >> _log2(d))
    else:
        s = nbits + (d - 1).bit_length()
        mult = -(-(1 << s) // d)
        prod = Signal(nbits + mult.bit_length(), name=f"{name}_p")
        m.d.comb += [prod.eq(x * mult), q.eq(prod >> s)]
    return q


def select_bits(m: Module, value, idx, width: int, name: str):
    """``value.word_select(idx, width)`` as a multiplexer (lint-clean; 0 past the end)."""
    return step_shift(m, value, idx, width, -(-len(value) // width), width, name)


class MatrixStream(wiring.Component):
    """Splits the single memory stream of a matrix body into weight words and scale beats.

    ``i``: stripe words (row tiles in the layout of :func:`matrix_image`); ``o``: one beat per
    weight word with the scale beat of its group (``s``, valid for every word of the group)
    and ``last_group`` (the group's last word: the scale beat is consumed).  Scale words are
    recognised by the same rule the image is written with: before a group's first word, a
    word is a scale word while fewer than ``scale_beat_bits`` scale bits are buffered.  The
    buffer is two words and a bit pointer (``scale_beat_bits <= W``).  ``group_words``
    (weight words per group) and ``groups`` (groups per row tile) are held during a job; the
    parser returns to its initial state after every whole row tile.  A scale word takes one
    cycle of the stream, weight words pass through combinationally.
    """

    def __init__(self, gp: GemvParams):
        self.gp = gp
        W, SB = gp.word_bits, gp.scale_beat_bits
        if SB > W:
            raise ValueError(f"MatrixStream: a scale beat ({gp.lanes} lanes x {gp.scale_lane_bits} "
                             f"bits = {SB}) must fit one {W}-bit stripe word; lower gemv_lanes "
                             f"or widen the memory")
        super().__init__({
            "i": wiring.In(stream.Signature(unsigned(W))),
            "o": wiring.Out(stream.Signature(data.StructLayout(
                {"w": unsigned(W), "s": unsigned(SB), "last_group": unsigned(1)}))),
            "group_words": wiring.In(unsigned(iface.ELEM_BITS)),
            "groups": wiring.In(unsigned(iface.ELEM_BITS)),
        })

    def elaborate(self, platform):
        gp = self.gp
        W, SB = gp.word_bits, gp.scale_beat_bits
        m = Module()
        b0, b1 = Signal(W), Signal(W)
        nw = Signal(2)                       # buffered scale words
        ptr = Signal(range(W))               # next scale bit in b0
        wig = Signal(iface.ELEM_BITS)        # word in group
        git = Signal(iface.ELEM_BITS)        # group in tile
        avail = Signal(range(2 * W + 1))
        m.d.comb += avail.eq(nw * W - ptr)
        # ptr moves by SB and SB - W: always a multiple of gcd(SB, W), so of its largest
        # power-of-two divisor g
        g = math.gcd(SB, W)
        g &= -g
        sbits = step_shift(m, Cat(b0, b1), ptr >> _log2(g), g, W // g, SB, "sbits")
        need_scale = ~wig.any() & (avail < SB)
        last_word = wig + 1 == self.group_words
        m.d.comb += [self.o.payload.w.eq(self.i.payload),
                     self.o.payload.s.eq(sbits[:SB]),
                     self.o.payload.last_group.eq(last_word)]
        with m.If(need_scale):
            m.d.comb += self.i.ready.eq(1)
            with m.If(self.i.valid):
                with m.If(~nw.any()):
                    m.d.sync += b0.eq(self.i.payload)
                with m.Else():
                    m.d.sync += b1.eq(self.i.payload)
                m.d.sync += nw.eq(nw + 1)
        with m.Else():
            m.d.comb += [self.o.valid.eq(self.i.valid), self.i.ready.eq(self.o.ready)]
            with m.If(self.i.valid & self.o.ready):
                with m.If(last_word):
                    m.d.sync += wig.eq(0)
                    with m.If(git + 1 == self.groups):
                        m.d.sync += [git.eq(0), ptr.eq(0), nw.eq(0)]
                    with m.Else():
                        m.d.sync += git.eq(git + 1)
                        with m.If(ptr + SB >= W):
                            m.d.sync += [b0.eq(b1), nw.eq(nw - 1), ptr.eq(ptr + SB - W)]
                        with m.Else():
                            m.d.sync += ptr.eq(ptr + SB)
                with m.Else():
                    m.d.sync += wig.eq(wig + 1)
        return m


class XLoader(wiring.Component):
    """Vector beats (``L`` 24-bit lanes holding int8; or with ``raw`` whole words of K int8 on
    ``rin``) and exponent beats -> the Gemv's ``x`` stream (K int8 and the exponent of their
    32-column group; without ``use_exp`` the exponent field is 0 and ``ein`` unused),
    ``words`` x beats per part; ``x_last`` marks a part's last word."""

    def __init__(self, p: EngineParams, gp: GemvParams, raw: bool = False, use_exp: bool = True):
        self.L, self.K = p.vector_lanes, gp.k
        self.raw, self.use_exp = raw, use_exp
        super().__init__({
            "vin": wiring.In(stream.Signature(iface.vec_beat_layout(p))),
            "rin": wiring.In(stream.Signature(unsigned(8 * gp.k))),
            "ein": wiring.In(stream.Signature(iface.exp_beat_layout())),
            "x": wiring.Out(stream.Signature(gp.x_layout())),
            "x_last": wiring.Out(1),
            "words": wiring.In(unsigned(iface.ELEM_BITS)),
            "clear": wiring.In(1),
        })

    def elaborate(self, platform):
        L, K = self.L, self.K
        m = Module()
        widx = Signal(iface.ELEM_BITS)
        epw = C.ACT_GROUP // K          # x words per exponent
        ec = Signal(range(max(2, epw)))
        ecur = Signal(iface.EXP_BITS)
        need_e = ~ec.any()
        have = Signal()
        xbits = Signal(8 * K)
        last = widx == self.words - 1
        take = self.x.valid & self.x.ready
        if not self.use_exp:
            need_e = Const(0)
        m.d.comb += [self.x_last.eq(last),
                     self.x.valid.eq(have & (~need_e | self.ein.valid)),
                     self.ein.ready.eq(have & need_e & self.x.ready),
                     self.x.payload.x.as_value().eq(xbits),
                     self.x.payload.e.eq(Mux(need_e, self.ein.payload.exp, ecur))]
        with m.If(take):
            m.d.sync += [widx.eq(Mux(last, 0, widx + 1)), ec.eq(Mux(last | (ec == epw - 1), 0, ec + 1))]
            with m.If(need_e):
                m.d.sync += ecur.eq(self.ein.payload.exp)
        lanes = self.vin.payload.data
        if self.raw:
            m.d.comb += [have.eq(self.rin.valid), xbits.eq(self.rin.payload), self.rin.ready.eq(take)]
        elif L <= K:
            R = K // L
            full = Signal()
            cnt = Signal(range(max(2, R)))
            buf = Signal(8 * K)
            m.d.comb += [have.eq(full), xbits.eq(buf), self.vin.ready.eq(~full | take)]
            with m.If(take):
                m.d.sync += full.eq(0)
            with m.If(self.vin.valid & self.vin.ready):
                for j in range(R):
                    with m.If(is_(cnt, j)):
                        m.d.sync += buf[j * 8 * L:(j + 1) * 8 * L].eq(Cat(*[lanes[i][:8] for i in range(L)]))
                with m.If(cnt == R - 1):
                    m.d.sync += [cnt.eq(0), full.eq(1)]
                with m.Else():
                    m.d.sync += cnt.eq(cnt + 1)
        else:
            R = L // K
            j = Signal(range(max(2, R)))
            m.d.comb += [have.eq(self.vin.valid),
                         self.vin.ready.eq(take & (last | (j == R - 1)))]
            for jj in range(R):
                with m.If(is_(j, jj)):
                    m.d.comb += xbits.eq(Cat(*[lanes[jj * K + i][:8] for i in range(K)]))
            with m.If(take):
                m.d.sync += j.eq(Mux(last | (j == R - 1), 0, j + 1))
        with m.If(self.clear):
            m.d.sync += [widx.eq(0), ec.eq(0)]
        return m


def shift_params(m: Module, sh, acc_width: int, name: str):
    """Registers derived from the signed shift ``sh`` of :func:`golden.shift_to`: ``neg``,
    the right shift ``r = min(-sh, acc_width + 1)`` and the left shift ``l = min(sh, 24)``."""
    neg = Signal(name=f"{name}_neg")
    r = Signal(range(acc_width + 2), name=f"{name}_r")
    lsh = Signal(range(iface.REG_BITS + 1), name=f"{name}_l")
    m.d.sync += [neg.eq(sh < 0),
                 r.eq(Mux(-sh > acc_width + 1, acc_width + 1, -sh)),
                 lsh.eq(Mux(sh > iface.REG_BITS, iface.REG_BITS, sh))]
    return neg, r, lsh


def shift_to_pre(m: Module, x, neg, r, lsh, name: str):
    """Stage 1 of ``shift_to``: ``(floor(x / 2**r), rounding bit)`` when ``neg``, else
    ``(saturate(x << lsh, 24), 0)``; stage 2 is :func:`fpgallm.hdl.requant.round_sat`."""
    fl, rb = shift_right_floor(m, x, r, f"{name}_r")
    left = shift_left_sat(m, x, lsh, iface.REG_BITS, f"{name}_l")
    return Mux(neg, fl, left), rb & neg


# --- the unit ---------------------------------------------------------------------------------

class Unit(wiring.Component):
    """GEMV execution unit (module docstring).  Contract: :mod:`fpgallm.engine.rtl.iface`."""

    def __init__(self, params: EngineParams):
        try:
            check_params(params)
        except ValueError:
            self._MustUse__silence = True   # rejected, so never elaborated: no unused warning
            raise
        self.params = params
        self.gps = {f: C.engine_gemv_params(params, f) for f in params.weight_formats}
        super().__init__(iface.exec_signature(params))

    def elaborate(self, platform):
        p = self.params
        m = Module()
        WB = iface.stripe_bits(p) // 8
        P, L, B = p.gemv_lanes, p.vector_lanes, p.batch
        CH = max(P, L)                 # rows per collect chunk
        TPC = CH // P                  # row tiles per chunk
        AW = max(gp.acc_width for gp in self.gps.values())
        cmd = self.cmd.payload

        # --- instruction registers ------------------------------------------------------
        busy = Signal()
        dst, a = Signal(4), Signal(4)
        fcode, gcode = Signal(2), Signal(2)
        n, mcols = Signal(iface.ELEM_BITS), Signal(iface.ELEM_BITS)
        addr = Signal(iface.ADDR_BITS)
        imm8, frac_a = Signal(8), Signal(iface.FRAC_BITS)
        nseq = Signal(4)
        tiles = Signal(iface.ELEM_BITS)
        start = Signal()
        m.d.comb += self.cmd.ready.eq(~busy)
        m.d.sync += start.eq(0)
        with m.If(self.cmd.valid & ~busy):
            ins = cmd.ins
            m.d.sync += [busy.eq(1), start.eq(1), dst.eq(ins.dst), a.eq(ins.a),
                         fcode.eq(ins.mode[:2]), gcode.eq(ins.mode[2:4]), n.eq(ins.n),
                         mcols.eq(ins.m), addr.eq(ins.addr), imm8.eq(ins.imm[:8]),
                         frac_a.eq(cmd.frac_a), nseq.eq(cmd.nseq),
                         tiles.eq(div_const(m, ins.n + P - 1, P, iface.ELEM_BITS + 1, "tiles_q"))]

        # --- datapaths per format -------------------------------------------------------
        fsel, gemvs, mss, lds, ldb, ldd = {}, {}, {}, {}, {}, {}
        hwords, bwords, m1 = {}, {}, {}
        for f, gp in self.gps.items():
            fsel[f] = Signal(name=f"sel_{f.name}")
            m.d.comb += fsel[f].eq(busy & is_(fcode, C.WFMT_CODE[f]))
            gemvs[f] = [Gemv(gp) for _ in range(B)]
            for b, g in enumerate(gemvs[f]):
                m.submodules[f"gemv_{f.name}_{b}"] = g
            mss[f] = m.submodules[f"ms_{f.name}"] = MatrixStream(gp)
            lds[f] = m.submodules[f"ld_{f.name}"] = XLoader(p, gp)
            ldb[f] = m.submodules[f"ldb_{f.name}"] = XLoader(p, gp, use_exp=False)
            ldd[f] = m.submodules[f"ldd_{f.name}"] = XLoader(p, gp, raw=True)
            kl = _log2(gp.k)
            cols_words = mcols >> kl
            if f.grouped:
                # group = 32 << (gcode - 1): words per group and groups per row tile
                gwords = Mux(gcode == 1, 32 >> kl, Mux(gcode == 2, 64 >> kl, 128 >> kl))
                groups = Mux(gcode == 1, mcols >> 5, Mux(gcode == 2, mcols >> 6, mcols >> 7))
            else:
                gwords, groups = cols_words, 1
            # the vector is loaded in two parts at once: words [0, h) through vra (straight into
            # the Gemv), words [h, cols_words) through vrb into a buffer drained after them;
            # h is half the words rounded up to whole exponent groups and vector beats
            R = max(C.ACT_GROUP // gp.k, p.vector_lanes // gp.k, 1)
            rl = _log2(R)
            hwords[f] = Signal(iface.ELEM_BITS, name=f"h_{f.name}")
            bwords[f] = Signal(iface.ELEM_BITS, name=f"bw_{f.name}")
            m1[f] = Signal(iface.ELEM_BITS, name=f"m1_{f.name}")
            m.d.comb += [hwords[f].eq(((cols_words + 2 * R - 1) >> (rl + 1)) << rl),
                         bwords[f].eq(cols_words - hwords[f]), m1[f].eq(hwords[f] << kl)]
            m.d.comb += [mss[f].group_words.eq(gwords), mss[f].groups.eq(groups),
                         lds[f].words.eq(hwords[f]), lds[f].clear.eq(start),
                         ldb[f].words.eq(bwords[f]), ldb[f].clear.eq(start),
                         ldd[f].words.eq(bwords[f]), ldd[f].clear.eq(start)]
            for g in gemvs[f]:
                m.d.comb += [g.cols_words.eq(cols_words), g.row_tiles.eq(tiles),
                             g.out_mult.eq(0), g.out_shift.eq(0)]
                if gp.runtime_group:
                    m.d.comb += g.group_words.eq(gwords)

        # --- memory: header, then the body stream ---------------------------------------
        acc_exp = Signal(signed(16))
        tw = Signal(24)
        body = Signal(iface.BEATS_BITS)
        sh = Signal(signed(18))
        IDLE, HREQ, HDAT, MUL, BREQ, BODY = range(1, 7)     # (no state 0: lint-clean compares)
        mst = Signal(range(8), init=IDLE)
        with m.If(mst == IDLE):
            with m.If(start):
                m.d.sync += mst.eq(HREQ)
        with m.Elif(mst == HREQ):
            m.d.comb += [self.mr.req.valid.eq(1), self.mr.req.payload.addr.eq(addr),
                         self.mr.req.payload.beats.eq(1)]
            with m.If(self.mr.req.ready):
                m.d.sync += mst.eq(HDAT)
        with m.Elif(mst == HDAT):
            m.d.comb += self.mr.data.ready.eq(1)
            with m.If(self.mr.data.valid):
                d = self.mr.data.payload.data
                m.d.sync += [acc_exp.eq(d[:16].as_signed()), tw.eq(d[16:40]), mst.eq(MUL)]
        with m.Elif(mst == MUL):
            m.d.sync += [body.eq(tiles * tw), sh.eq(acc_exp - frac_a + imm8), mst.eq(BREQ)]
        with m.Elif(mst == BREQ):
            m.d.comb += [self.mr.req.valid.eq(1), self.mr.req.payload.addr.eq(addr + WB),
                         self.mr.req.payload.beats.eq(body)]
            with m.If(self.mr.req.ready):
                m.d.sync += mst.eq(BODY)
        with m.Elif(mst == BODY):
            for f in self.gps:
                with m.If(fsel[f]):
                    m.d.comb += [mss[f].i.valid.eq(self.mr.data.valid),
                                 mss[f].i.payload.eq(self.mr.data.payload.data),
                                 self.mr.data.ready.eq(mss[f].i.ready)]
            with m.If(~busy):
                m.d.sync += mst.eq(IDLE)

        # weights and scales broadcast to the active copies (lockstep)
        for f in self.gps:
            ms = mss[f]
            rdy = [gemvs[f][b].w.ready | (b >= nseq) for b in range(B)]
            all_ready = Signal(name=f"wrdy_{f.name}")
            m.d.comb += [all_ready.eq(Cat(*rdy).all()), ms.o.ready.eq(all_ready & fsel[f])]
            for b, g in enumerate(gemvs[f]):
                m.d.comb += [g.w.valid.eq(ms.o.valid & all_ready & (b < nseq) & fsel[f]),
                             g.w.payload.as_value().eq(ms.o.payload.w),
                             g.s.valid.eq(ms.o.valid & fsel[f]),
                             g.s.payload.as_value().eq(ms.o.payload.s)]

        # --- activations: per sequence, part A (vra) and part B (vrb, buffered), exponents
        # (era) for A then for the drained B words -----------------------------------------
        lseq = Signal(3)
        L_REQ, L_A, L_D, L_END = 1, 2, 3, 4
        lst = Signal(range(5), init=L_REQ)
        rq_a, rq_b, rq_e = Signal(), Signal(), Signal()
        bmax = max(gp.max_cols // gp.k for gp in self.gps.values())
        bdepth = max(2, -(-bmax // 2))
        bwidth = max(8 * gp.k for gp in self.gps.values())
        m.submodules.xbuf = xbuf = Memory(shape=unsigned(bwidth), depth=bdepth, init=[])
        bw_port = xbuf.write_port()
        br_port = xbuf.read_port(domain="sync")
        bwcnt = Signal(range(bdepth + 1))
        bridx = Signal(range(bdepth + 1))
        bvalid = Signal()
        cur_h, cur_b, cur_m1 = Signal(iface.ELEM_BITS), Signal(iface.ELEM_BITS), Signal(iface.ELEM_BITS)
        for f in self.gps:
            with m.If(fsel[f]):
                m.d.comb += [cur_h.eq(hwords[f]), cur_b.eq(bwords[f]), cur_m1.eq(m1[f])]
        has_b = cur_b.any()
        with m.If(start):
            m.d.sync += [lseq.eq(0), lst.eq(L_REQ), rq_a.eq(0), rq_b.eq(0), rq_e.eq(0)]
        in_req = busy & ~start & (lst == L_REQ)
        m.d.comb += [self.vra.req.valid.eq(in_req & ~rq_a),
                     self.vra.req.payload.reg.eq(a), self.vra.req.payload.seq.eq(lseq),
                     self.vra.req.payload.start.eq(0), self.vra.req.payload.count.eq(cur_m1),
                     self.vrb.req.valid.eq(in_req & ~rq_b & has_b),
                     self.vrb.req.payload.reg.eq(a), self.vrb.req.payload.seq.eq(lseq),
                     self.vrb.req.payload.start.eq(cur_m1),
                     self.vrb.req.payload.count.eq(mcols - cur_m1),
                     self.era.req.valid.eq(in_req & ~rq_e),
                     self.era.req.payload.reg.eq(a), self.era.req.payload.seq.eq(lseq),
                     self.era.req.payload.start.eq(0), self.era.req.payload.count.eq(mcols >> 5)]
        with m.If(in_req):
            ga = rq_a | self.vra.req.ready
            gb = rq_b | self.vrb.req.ready | ~has_b
            ge = rq_e | self.era.req.ready
            m.d.sync += [rq_a.eq(ga), rq_b.eq(gb), rq_e.eq(ge)]
            with m.If(ga & gb & ge):
                m.d.sync += [lst.eq(L_A), rq_a.eq(0), rq_b.eq(0), rq_e.eq(0), bwcnt.eq(0),
                             bridx.eq(0), bvalid.eq(0)]
        next_seq = Signal()
        with m.If(next_seq):
            m.d.sync += lseq.eq(lseq + 1)
            with m.If(lseq == nseq - 1):
                m.d.sync += lst.eq(L_END)
            with m.Else():
                m.d.sync += lst.eq(L_REQ)
        for f in self.gps:
            ld, lb, lddr = lds[f], ldb[f], ldd[f]
            with m.If(fsel[f]):
                # part B: vrb -> gearbox -> buffer
                m.d.comb += [lb.vin.valid.eq(self.vrb.data.valid), lb.vin.payload.eq(self.vrb.data.payload),
                             self.vrb.data.ready.eq(lb.vin.ready), lb.x.ready.eq(1),
                             bw_port.addr.eq(bwcnt), bw_port.data.eq(lb.x.payload.x.as_value()),
                             bw_port.en.eq(lb.x.valid)]
                with m.If(lb.x.valid):
                    m.d.sync += bwcnt.eq(bwcnt + 1)
                # part A: vra -> gearbox + exponents -> Gemv
                with m.If(lst == L_A):
                    m.d.comb += [ld.vin.valid.eq(self.vra.data.valid), ld.vin.payload.eq(self.vra.data.payload),
                                 self.vra.data.ready.eq(ld.vin.ready),
                                 ld.ein.valid.eq(self.era.data.valid), ld.ein.payload.eq(self.era.data.payload),
                                 self.era.data.ready.eq(ld.ein.ready)]
                    for b, g in enumerate(gemvs[f]):
                        m.d.comb += [g.x.valid.eq(ld.x.valid & is_(lseq, b)), g.x.payload.eq(ld.x.payload)]
                        with m.If(is_(lseq, b)):
                            m.d.comb += ld.x.ready.eq(g.x.ready)
                    with m.If(ld.x.valid & ld.x.ready & ld.x_last):
                        with m.If(has_b):
                            m.d.sync += lst.eq(L_D)
                        with m.Else():
                            m.d.comb += next_seq.eq(1)
                # drain: buffer (one-word read-ahead) + exponents -> Gemv
                with m.If(lst == L_D):
                    take = lddr.rin.valid & lddr.rin.ready
                    fetch = (~bvalid | take) & (bridx < bwcnt) & (bridx < cur_b)
                    m.d.comb += [br_port.addr.eq(bridx), br_port.en.eq(fetch),
                                 lddr.rin.valid.eq(bvalid), lddr.rin.payload.eq(br_port.data),
                                 lddr.ein.valid.eq(self.era.data.valid), lddr.ein.payload.eq(self.era.data.payload),
                                 self.era.data.ready.eq(lddr.ein.ready)]
                    with m.If(fetch):
                        m.d.sync += [bridx.eq(bridx + 1), bvalid.eq(1)]
                    with m.Elif(take):
                        m.d.sync += bvalid.eq(0)
                    for b, g in enumerate(gemvs[f]):
                        m.d.comb += [g.x.valid.eq(lddr.x.valid & is_(lseq, b)), g.x.payload.eq(lddr.x.payload)]
                        with m.If(is_(lseq, b)):
                            m.d.comb += lddr.x.ready.eq(g.x.ready)
                    with m.If(lddr.x.valid & lddr.x.ready & lddr.x_last):
                        m.d.comb += next_seq.eq(1)

        # --- outputs: take a row tile of every active copy, shift_to, collect, write ------
        neg, rsh, lsh = shift_params(m, sh, AW, "cv")
        o_valid = Signal()
        o_acc = [[Signal(signed(AW), name=f"oacc{b}_{i}") for i in range(P)] for b in range(B)]
        o_ready = Signal()
        for f in self.gps:
            with m.If(fsel[f]):
                m.d.comb += o_valid.eq(Cat(*[gemvs[f][b].o.valid | (b >= nseq) for b in range(B)]).all())
                for b in range(B):
                    m.d.comb += gemvs[f][b].o.ready.eq(o_ready & o_valid & (b < nseq))
                    for i in range(P):
                        m.d.comb += o_acc[b][i].eq(gemvs[f][b].o.payload[i])
        s1v = Signal()
        s1 = [[Signal(signed(AW), name=f"s1_{b}_{i}") for i in range(P)] for b in range(B)]
        s1r = [[Signal(name=f"s1r_{b}_{i}") for i in range(P)] for b in range(B)]
        pre = [[shift_to_pre(m, o_acc[b][i], neg, rsh, lsh, f"cv{b}_{i}") for i in range(P)]
               for b in range(B)]
        post = [[round_sat(m, s1[b][i], s1r[b][i], iface.REG_BITS, f"cvs{b}_{i}") for i in range(P)]
                for b in range(B)]
        col_full = Signal()
        s1_move = s1v & ~col_full
        m.d.comb += o_ready.eq(~s1v | s1_move)
        with m.If(o_valid & o_ready):
            m.d.sync += s1v.eq(1)
            for b in range(B):
                for i in range(P):
                    m.d.sync += [s1[b][i].eq(pre[b][i][0]), s1r[b][i].eq(pre[b][i][1])]
        with m.Elif(s1_move):
            m.d.sync += s1v.eq(0)
        col = [[Signal(signed(iface.REG_BITS), name=f"col{b}_{i}") for i in range(CH)] for b in range(B)]
        tin = Signal(range(max(2, TPC)))
        otile = Signal(iface.ELEM_BITS)
        with m.If(start):
            m.d.sync += [otile.eq(0), tin.eq(0), col_full.eq(0)]
        with m.If(s1_move):
            for t in range(TPC):
                with m.If(is_(tin, t)):
                    for b in range(B):
                        for i in range(P):
                            m.d.sync += col[b][t * P + i].eq(post[b][i])
            m.d.sync += otile.eq(otile + 1)
            with m.If((tin == TPC - 1) | (otile == tiles - 1)):
                m.d.sync += [tin.eq(0), col_full.eq(1)]
            with m.Else():
                m.d.sync += tin.eq(tin + 1)

        # write buffer and the two write FSMs (requests, data beats)
        wbusy = Signal()
        wbuf = [[Signal(signed(iface.REG_BITS), name=f"wbuf{b}_{i}") for i in range(CH)] for b in range(B)]
        wstart = Signal(iface.ELEM_BITS + 1)
        rq_b, d_b = Signal(4), Signal(4)
        d_j = Signal(range(max(2, CH // L)))
        rq_done, d_done = Signal(), Signal()
        wcount = Signal(iface.ELEM_BITS + 1)
        m.d.comb += wcount.eq(Mux(n - wstart > CH, CH, n - wstart))
        with m.If(start):
            m.d.sync += [wbusy.eq(0), wstart.eq(0)]
        with m.If(col_full & ~wbusy):
            m.d.sync += [wbusy.eq(1), col_full.eq(0), rq_b.eq(0), d_b.eq(0), d_j.eq(0),
                         rq_done.eq(0), d_done.eq(0)]
            for b in range(B):
                for i in range(CH):
                    m.d.sync += wbuf[b][i].eq(col[b][i])
        vw = self.vw
        m.d.comb += [vw.req.valid.eq(wbusy & ~rq_done), vw.req.payload.reg.eq(dst),
                     vw.req.payload.seq.eq(rq_b), vw.req.payload.start.eq(wstart),
                     vw.req.payload.count.eq(wcount)]
        with m.If(vw.req.valid & vw.req.ready):
            m.d.sync += rq_b.eq(rq_b + 1)
            with m.If(rq_b == nseq - 1):
                m.d.sync += rq_done.eq(1)
        beat_last = (d_j + 1) * L >= wcount
        m.d.comb += [vw.data.valid.eq(wbusy & ~d_done), vw.data.payload.last.eq(beat_last)]
        for b in range(B):
            for jj in range(CH // L):
                with m.If(is_(d_b, b) & is_(d_j, jj)):
                    for i in range(L):
                        m.d.comb += vw.data.payload.data[i].eq(wbuf[b][jj * L + i])
        with m.If(vw.data.valid & vw.data.ready):
            with m.If(beat_last):
                m.d.sync += [d_j.eq(0), d_b.eq(d_b + 1)]
                with m.If(d_b == nseq - 1):
                    m.d.sync += d_done.eq(1)
            with m.Else():
                m.d.sync += d_j.eq(d_j + 1)
        finished = Signal()
        m.d.comb += finished.eq(wbusy & rq_done & d_done)
        with m.If(finished):
            m.d.sync += [wbusy.eq(0), wstart.eq(wstart + CH)]
            with m.If(wstart + CH >= n):
                m.d.comb += self.done.eq(1)
                m.d.sync += busy.eq(0)
        return m
