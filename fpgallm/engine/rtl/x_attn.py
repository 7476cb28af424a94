"""ATTN execution unit: grouped-query attention of q = ``V[a]`` over the cached K/V of
positions ``0..S[POS]`` (``golden.Machine.op_ATTN``, bit for bit), and :func:`kv_image`.

Instruction: ``n`` = head_dim (1..``EngineParams.max_head_dim``), ``m`` = heads | kv_heads << 10, ``addr`` =
the layer's KV region (:mod:`fpgallm.engine.kvlayout`), ``imm`` = out frac | K frac << 8
| V frac << 16 (the fraction bits of the cached K and V, written by the compiler);
``frac_a`` (the tag of ``V[a]``) is q's fraction bits.

For each sequence ``s < nseq`` (``L = pos[s] + 1``), kv-head ``kh`` and head ``h`` of its
group (``G = heads / kv_heads``), one head at a time (with ``cmd.chunk`` every lane is a
prompt position of sequence 0 and reads sequence 0's head blocks):

1. *q*: read ``head_dim`` elements of ``V[a]`` at ``h * head_dim`` (``vra``) into the head
   buffer; ``qe = max(0, bit_length(max|q|) - 15)``, the INT16 lanes are
   ``sat16(round_shift(q, qe))``.  Meanwhile three memory reads are queued on ``mr``: the
   exponent bytes of positions ``0..L-1`` (into the exponent buffer), K and V of those
   positions (whole stripe words).
2. *scores* (K pass): one step a cycle; a step is one stripe word of one position when a
   position spans several words, else ``min(positions per word, positions_per_step)``
   positions of one word (SmolLM2 on 4 x 256-bit ports: 2).  The step's K lanes times the
   q lanes (one multiplier per element of the widest step, :func:`step_lanes`: a whole
   stripe word only when a head spans words; q repeated per position), a registered
   adder tree whose level ``log2(stride)`` holds the positions' dot products, ``s *
   score_mult(head_dim)``, shifted by ``-(fq + kf - qe - ke + 6)`` into Q.10 and saturated
   to 24 bits (``golden.shift_by``), packed into beats of ``vector_lanes`` scores for the
   softmax unit (:class:`fpgallm.units.softmax.Softmax`, ``max_length = max_context``).
3. *weighted sum* (V pass, same steps, overlapping the softmax's second pass): each
   probability (Q.15) times its position's V lanes, shifted left by the V exponent, the
   positions of a step folded onto ``head_dim`` lanes and summed exactly into
   per-element accumulators.
4. *output*: ``shift_to(acc, out_frac - 15 - vf)`` written to ``V[dst]`` at ``h *
   head_dim`` (``vw``).

Timing with ports that never stall: :func:`cycles`.  Requires ``head_dim % vector_lanes ==
0`` when heads > 1 (register reads start on a beat).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from fpgallm.engine.compiler import Region
from fpgallm.engine.formats import (
    KV_EXP_BITS,
    Q_BITS,
    SCORE_FRAC,
    SCORE_MULT_BITS,
    attn_acc_bits,
    score_mult,
)
from fpgallm.engine.isa import Op
from fpgallm.engine.kvlayout import kv_layout
from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl import iface
from fpgallm.engine.rtl.iface import (
    ADDR_BITS,
    ELEM_BITS,
    REG_BITS,
    SCALAR_BITS,
    stripe_bits,
)
from fpgallm.engine.rtl.kvhdl import (
    Geometry,
    OneHot,
    bitlen,
    clog2,
    head_banks,
    head_rows,
    is_,
    select,
)
from fpgallm.hdl.requant import shift_right_sat, shift_to
from fpgallm.hdl.shift import step_shift
from fpgallm.units.softmax import Softmax, SoftmaxParams

OPS = (Op.ATTN,)



def kv_image(region: Region, params: EngineParams) -> bytes:
    """The initial bytes of a KV region: zeros (the layout: :mod:`~fpgallm.engine.kvlayout`)."""
    return bytes(region.nbytes)


def softmax_params(p: EngineParams) -> SoftmaxParams:
    return SoftmaxParams(lanes=min(p.vector_lanes, 64), in_width=REG_BITS, in_frac=SCORE_FRAC,
                         max_length=p.max_context)


def positions_per_step(p: EngineParams) -> int:
    """Positions the K and V passes take per cycle when several share a stripe word: the
    largest power of two dividing the softmax lanes, at most 4 and half a word's bytes."""
    ls = softmax_params(p).lanes
    pp = 1
    while pp * 2 <= min(4, stripe_bits(p) // 16) and ls % (pp * 2) == 0:
        pp *= 2
    return pp


def step_lanes(p: EngineParams) -> int:
    """Products per step (K and V pass): a stripe word's elements when the longest head spans
    several words, else those of the widest step -- ``positions_per_step`` positions of the
    longest head's stride, a power of two that never crosses an aligned block of the word."""
    elems = kv_layout(p, 1).stripe // (p.kv_format.bits // 8)
    if kv_layout(p, p.max_head_dim).rows > 1:
        return elems
    return min(elems, positions_per_step(p) << clog2(p.max_head_dim))


def tree_levels(p: EngineParams) -> int:
    return clog2(step_lanes(p))


# Latencies of the shared ports assumed by the cycle model (register read: request accepted
# -> first beat; memory read: request accepted -> first word; write: last beat -> wdone),
# measured on the engine RTL (vregs, memsys, the AXI memory model's default 20-cycle read
# latency): ATTN's cycles then equal the model's + 2 (the controller's dispatch).
PORT_LATENCY = {"vread": 2, "mread": 24, "wdone": 6}
PORT_MREAD_AT = 19    # the memory system's read latency (EngineParams.mem_latency) of "mread"

# pipeline depths (cycles from a step's issue to its result), see elaborate()
K_DEPTH_FIXED = 2 + 3      # stage A (operands), B (products) ... tree ..., D (sum), E (mult), F (score)
V_DEPTH = 3                # A, B, C (accumulate)


Q_BANK_ROWS = 8      # the q head buffer is LUT-RAM from this many stripe words per head on


def q_banked(p: EngineParams) -> bool:
    """Whether the q head buffer is LUT-RAM banks rather than registers."""
    rows, elems = head_rows(p)
    return rows >= Q_BANK_ROWS and elems % p.vector_lanes == 0


def cycles(p: EngineParams, head_dim: int, heads: int, kv_heads: int, lengths, vread_latency: int,
           mread_latency: int) -> int:
    """Cycles from ``cmd`` accepted to ``done`` (ports that never stall; ``lengths`` = the
    attention length ``pos + 1`` of each sequence).  ``vread_latency``: cycles from a
    register read request's acceptance to its first beat; ``mread_latency``: from a memory
    read request's acceptance to its first word (requests queued back to back)."""
    lay = kv_layout(p, head_dim)
    sm = softmax_params(p)
    Lv = p.vector_lanes
    G = heads // kv_heads
    qbeats = -(-head_dim // Lv)
    total = G         # setup: the group size by repeated subtraction
    ppe = min(lay.per_word, positions_per_step(p))
    for L in lengths:
        steps = L * lay.rows if lay.rows > 1 else -(-L // ppe)
        # exponent words arrive after the memory latency, K words right after them
        q_ready = 1 + vread_latency + qbeats + 1
        e_ready = 1 + mread_latency + lay.exp_words(L)
        k_end = max(q_ready, e_ready) + steps
        k_out = k_end + K_DEPTH_FIXED + tree_levels(p) + 1          # last score into the packer
        sm_end = k_out + sm.cycles(L) - 2 * (-(-L // sm.lanes))      # softmax's pass 2 starts
        v_end = sm_end + steps + V_DEPTH
        per_head = v_end + 1 + qbeats + 1 + 1      # OREQ, ODATA, NEXT
        total += heads * per_head
    return total


class Unit(wiring.Component):
    """The ATTN execution unit (contract in the module docstring)."""

    def __init__(self, params: EngineParams):
        self.params = params
        super().__init__(iface.exec_signature(params))

    def elaborate(self, platform):
        p = self.params
        m = Module()
        Lv = p.vector_lanes
        bits = p.kv_format.bits
        kv_max_exp = REG_BITS - (bits - 1)
        smp = softmax_params(p)
        Ls = smp.lanes
        m.submodules.softmax = sm = Softmax(smp)

        ins = Signal(iface.instruction_layout())
        fq = Signal(iface.FRAC_BITS)
        nseq = Signal(4)
        chunk = Signal()                         # lanes share sequence 0's KV cache
        pos = Signal(iface.exec_cmd_layout(p).members["pos"])
        hd = Signal(range(p.max_head_dim + 1))
        g = Geometry(m, p, hd)
        wb, lg_wb = g.wb, g.lg_wb
        E = step_lanes(p)                # products per step
        nl = g.max_rows * E              # head buffer and accumulator lanes (>= max_head_dim)
        W = wb * 8

        heads = Signal(10)
        kvh = Signal(10)
        grp = Signal(10)          # heads per kv-head
        div_rem = Signal(11)
        seq = Signal(3)
        kh = Signal(10)
        gi = Signal(10)
        qstart = Signal(ELEM_BITS + 1)
        base = Signal(ADDR_BITS)
        L = Signal(SCALAR_BITS + 1)
        m.d.comb += L.eq(select(m, [pos[b] for b in range(p.batch)], seq, SCALAR_BITS, "pos_sel") + 1)

        mult_rom = Memory(shape=unsigned(SCORE_MULT_BITS + 1), depth=p.max_head_dim + 1,
                          init=[score_mult(h) for h in range(p.max_head_dim + 1)])
        m.submodules.mult_rom = mult_rom
        mrp = mult_rom.read_port(domain="comb")
        m.d.comb += mrp.addr.eq(hd)
        mult = Signal(SCORE_MULT_BITS + 1)

        # ---- q head buffer ---------------------------------------------------------------
        # Several rows: E banks of LUT-RAM (bank j holds lanes j, j + E, ... at the lane's
        # row), written by lane j % Lv of a beat, read a row at a time; lanes past head_dim
        # are zeroed as they are read.  Up to Q_BANK_ROWS rows (or beats wider than a row):
        # registers, which cost less there (measured: 4 rows banked +615 LUT4, 32 rows -4.8k).
        banked = q_banked(p)
        raw = [] if banked else [Signal(signed(REG_BITS), name=f"q{i}") for i in range(nl)]
        q_in = []
        qmax = Signal(REG_BITS)
        qbeat = Signal(range(nl // Lv + 2))
        qgot = Signal()
        qreqd = Signal()
        qe = Signal(4)
        clear = Signal()
        vacc = self.vra.data.valid & self.vra.data.ready
        mx = qmax
        for j in range(Lv):
            x = self.vra.data.payload.data[j]
            ok = (qbeat * Lv + j) < hd
            a = Signal(REG_BITS, name=f"qabs{j}")
            m.d.comb += a.eq(Mux(ok, Mux(x < 0, -x, x), 0))
            nm = Signal(REG_BITS, name=f"qmx{j}")
            m.d.comb += nm.eq(Mux(a > mx, a, mx))
            mx = nm
            q_in.append(Mux(ok, x, 0))
            for i in range(j, len(raw), Lv):       # (no registers when banked)
                with m.If(vacc & is_(qbeat, i // Lv)):
                    m.d.sync += raw[i].eq(q_in[j])
        with m.If(vacc):
            m.d.sync += [qmax.eq(mx), qbeat.eq(qbeat + 1)]
            with m.If(self.vra.data.payload.last):
                m.d.sync += qgot.eq(1)
        qbl = bitlen(m, qmax, REG_BITS, "qbitlen")
        qe_next = Mux(qbl > Q_BITS - 1, qbl - (Q_BITS - 1), 0)

        # ---- memory reads: exponents, K, V -------------------------------------------------
        nreq = Signal(2)          # requests issued for this head
        exp_words = Signal(SCALAR_BITS + 1)
        m.d.comb += exp_words.eq(((L << 1) + wb - 1) >> lg_wb)
        data_words = Signal(SCALAR_BITS + 10)
        m.d.comb += data_words.eq((L * g.stride + wb - 1) >> lg_wb)
        with m.Switch(nreq):
            with m.Case(0):
                m.d.comb += [self.mr.req.payload.addr.eq(base), self.mr.req.payload.beats.eq(exp_words)]
            with m.Case(1):
                m.d.comb += [self.mr.req.payload.addr.eq(base + g.exp_bytes),
                             self.mr.req.payload.beats.eq(data_words)]
            with m.Default():
                m.d.comb += [self.mr.req.payload.addr.eq(base + g.exp_bytes + g.data_bytes),
                             self.mr.req.payload.beats.eq(data_words)]
        req_on = Signal()
        m.d.comb += self.mr.req.valid.eq(req_on & (nreq < 3))
        with m.If(self.mr.req.valid & self.mr.req.ready):
            m.d.sync += nreq.eq(nreq + 1)

        exp_depth = -(-2 * p.max_context // wb)
        if exp_depth > 1:
            expmem = Memory(shape=unsigned(W), depth=exp_depth, init=[])
            m.submodules.expmem = expmem
            ewp = expmem.write_port()
            erp = expmem.read_port(domain="sync")
        ph = Signal(2)            # data phase: 0 exponents, 1 K, 2 V
        ewa = Signal(range(exp_depth + 1))
        mdat = self.mr.data
        if exp_depth > 1:
            m.d.comb += [ewp.addr.eq(ewa), ewp.data.eq(mdat.payload.data),
                         ewp.en.eq(is_(ph, 0) & mdat.valid & req_on)]
            erdata = erp.data     # the exponent word, a cycle after its address
        else:
            # one word: a register and its registered copy, which is what a 1-deep memory
            # with a synchronous read port is (its 0-bit address has no Verilog declaration);
            # neither is reset, like the memory
            eword = Signal(W, reset_less=True)
            erdata = Signal(W, reset_less=True)
            m.d.sync += erdata.eq(eword)
            with m.If(is_(ph, 0) & mdat.valid & req_on):
                m.d.sync += eword.eq(mdat.payload.data)
        with m.If(is_(ph, 0) & mdat.valid & req_on):
            m.d.sync += ewa.eq(ewa + 1)
            with m.If(mdat.payload.last):
                m.d.sync += ph.eq(1)

        # ---- step sequencer (K pass and V pass) ------------------------------------------
        # A step is one stripe word of one position (a position spans several words) or up
        # to ``ppe = min(positions per word, PP)`` positions of one word.
        PP = positions_per_step(p)
        lg_pp = clog2(PP)
        lg_e = clog2(E)
        lg_eb = clog2(g.eb)
        lg_se = Signal(range(lg_e + 1))     # log2 of the stride in elements, clamped to the word
        m.d.comb += lg_se.eq(Mux(g.case_a, g.lg_s - lg_eb, lg_e))
        lg_pe = Signal(range(lg_pp + 1))
        m.d.comb += lg_pe.eq(Mux(g.lg_p > lg_pp, lg_pp, g.lg_p))
        ppe = Signal(range(PP + 1))
        m.d.comb += ppe.eq(Const(1, PP.bit_length()) << lg_pe)
        lpos = Signal(SCALAR_BITS + 1)     # first position of the step
        wrow = Signal(range(g.max_rows + 1))
        lp = Signal(range(Ls + 1))         # its lane in the softmax output beat (V pass)
        step = Signal()
        kind_v = Signal()                  # 0 K pass, 1 V pass
        pos_end = Signal()
        m.d.comb += pos_end.eq(wrow == g.rows - 1)
        left = Signal(SCALAR_BITS + 1)
        m.d.comb += left.eq(L - lpos)
        npos = Signal(range(PP + 1))       # positions in this step
        m.d.comb += npos.eq(Mux(left < ppe, left, ppe))
        is_last = Signal()
        m.d.comb += is_last.eq(pos_end & (left <= ppe))
        word_end = Signal()
        m.d.comb += word_end.eq(~g.case_a | is_last |
                                ~((lpos + ppe) & ((Const(1, lg_wb + 1) << g.lg_p) - 1)).any())
        off = Signal(range(wb))
        m.d.comb += off.eq(Mux(g.case_a, (lpos << g.lg_s)[:lg_wb], 0))
        with m.If(step):
            with m.If(pos_end):
                m.d.sync += [wrow.eq(0), lpos.eq(lpos + ppe)]
            with m.Else():
                m.d.sync += wrow.eq(wrow + 1)
            with m.If(kind_v & pos_end):
                m.d.sync += lp.eq(Mux(lp + npos >= Ls, 0, lp + npos))
        m.d.comb += self.mr.data.ready.eq((is_(ph, 0) & req_on) | (step & word_end))
        with m.If(step & word_end & mdat.payload.last & (ph == 1)):
            m.d.sync += ph.eq(2)
        m.d.comb += sm.o.ready.eq(step & kind_v & pos_end & ((lp + npos >= Ls) | is_last))
        if exp_depth > 1:
            m.d.comb += [erp.addr.eq(lpos >> (lg_wb - 1)), erp.en.eq(1)]

        # q lanes (K pass): case b: row wrow of the head buffer; case a: element i mod stride
        # of lane i, for the step's positions (zero beyond them)
        qsel = Signal(E * REG_BITS)
        if banked:
            rd = head_banks(m, "qhead", q_in, qbeat, vacc, wrow, E, g.max_rows)
            m.d.comb += qsel.eq(Cat(*[Mux(wrow * E + j < hd, rd[j], 0) for j in range(E)]))
        else:
            rows_cat = [Cat(*raw[r * E:(r + 1) * E]) for r in range(g.max_rows)]
            with m.Switch(wrow):
                for r in range(g.max_rows):
                    with m.Case(r):
                        m.d.comb += qsel.eq(rows_cat[r])
                with m.Default():
                    m.d.comb += qsel.eq(0)
        # probabilities of the step's positions (V pass)
        pvals = [Signal(range(1 << 16), name=f"pv{k}") for k in range(PP)]
        for k in range(PP):
            with m.Switch(lp):
                for i in range(Ls):
                    with m.Case(i):
                        m.d.comb += pvals[k].eq(sm.o.payload.data[i + k].as_unsigned() if i + k < Ls else 0)
                with m.Default():
                    m.d.comb += pvals[k].eq(0)
        # the step's bytes: off is a multiple of the step's span (a power of two <= Bb), so
        # they lie in one aligned block of Bb bytes: pick the block, then shift inside it
        Bb = E * g.eb
        if Bb < wb:
            blk = step_shift(m, mdat.payload.data, off >> clog2(Bb), 8 * Bb, wb // Bb, 8 * Bb, "seg_blk")
            seg_now = Signal(8 * Bb)
            m.d.comb += seg_now.eq(blk >> (off[:clog2(Bb)] * 8))
        else:
            seg_now = Signal(W)
            m.d.comb += seg_now.eq(mdat.payload.data >> (off * 8))

        # stage A: operands
        sA_v, sA_kind, sA_first, sA_end, sA_last = (Signal(name=f"a_{n}") for n in
                                                    ("v", "kind", "first", "end", "last"))
        sA_w = Signal(range(g.max_rows + 1))
        sA_np = Signal(range(PP + 1))
        sA_lsel = Signal(max(1, lg_wb - 1))
        segA = Signal(len(seg_now))
        opA = [Signal(signed(Q_BITS + 1), name=f"opA{i}") for i in range(E)]
        m.d.sync += [sA_v.eq(step), sA_kind.eq(kind_v), sA_first.eq(is_(wrow, 0)), sA_end.eq(pos_end),
                     sA_last.eq(is_last), sA_w.eq(wrow), sA_np.eq(npos),
                     sA_lsel.eq(lpos[:max(1, lg_wb - 1)]), segA.eq(seg_now)]
        for i in range(E):
            xa = Signal(signed(REG_BITS), name=f"qa{i}")     # case a q element of lane i
            pa = Signal(range(1 << 16), name=f"pa{i}")       # probability of lane i's position
            with m.Switch(lg_se):
                for j in range(lg_e + 1):
                    with m.Case(j):
                        k = i >> j
                        # (case a: one row, wrow = 0, so the row read is the head)
                        qi = qsel.word_select(i & ((1 << j) - 1), REG_BITS).as_signed()
                        m.d.comb += xa.eq(Mux(k < npos, qi, 0) if k < PP else 0)
                        m.d.comb += pa.eq(Mux(k < npos, pvals[k], 0) if k < PP else 0)
                with m.Default():
                    m.d.comb += [xa.eq(0), pa.eq(0)]
            xq = Mux(g.case_a, xa, qsel.word_select(i, REG_BITS).as_signed())
            m.d.sync += opA[i].eq(Mux(kind_v, pa, shift_right_sat(m, xq, qe, Q_BITS, f"qa_q{i}")))
        # exponent bytes of the step's positions (expmem data is valid in stage A)
        keA, veA = [], []
        for k in range(PP):
            ebyte = Signal(16, name=f"ebyte{k}")
            with m.Switch(sA_lsel):
                for i in range(wb // 2):
                    with m.Case(i):
                        m.d.comb += ebyte.eq(erdata.word_select(i + k, 16) if i + k < wb // 2 else 0)
                with m.Default():
                    m.d.comb += ebyte.eq(0)
            keA.append(ebyte[:KV_EXP_BITS])
            veA.append(ebyte[8:8 + KV_EXP_BITS])

        # stage B: products
        sB_v, sB_kind, sB_first, sB_end, sB_last = (Signal(name=f"b_{n}") for n in
                                                    ("v", "kind", "first", "end", "last"))
        sB_w = Signal(range(g.max_rows + 1))
        sB_np = Signal(range(PP + 1))
        keB = [Signal(KV_EXP_BITS, name=f"keB{k}") for k in range(PP)]
        veB = [Signal(KV_EXP_BITS, name=f"veB{k}") for k in range(PP)]
        pw = bits + Q_BITS + 1
        prod = [Signal(signed(pw), name=f"prod{i}") for i in range(E)]
        m.d.sync += [sB_v.eq(sA_v), sB_kind.eq(sA_kind), sB_first.eq(sA_first), sB_end.eq(sA_end),
                     sB_last.eq(sA_last), sB_w.eq(sA_w), sB_np.eq(sA_np)]
        m.d.sync += [keB[k].eq(keA[k]) for k in range(PP)] + [veB[k].eq(veA[k]) for k in range(PP)]
        for i in range(E):
            m.d.sync += prod[i].eq(segA.word_select(i, bits).as_signed() * opA[i])

        # ---- V path: stage C shifts by the exponents, folds the positions, accumulates -------
        aw = attn_acc_bits(bits, p.max_context)
        acc = [Signal(signed(aw), name=f"acc{i}") for i in range(nl)]
        shw = pw + kv_max_exp + 1
        shifted = []
        for i in range(E):
            ve_i = Signal(KV_EXP_BITS, name=f"ve_l{i}")
            with m.Switch(lg_se):
                for j in range(lg_e + 1):
                    with m.Case(j):
                        m.d.comb += ve_i.eq(veB[i >> j] if (i >> j) < PP else 0)
                with m.Default():
                    m.d.comb += ve_i.eq(0)
            sh_i = Signal(signed(shw), name=f"vsh{i}")
            m.d.comb += sh_i.eq(prod[i] << ve_i)
            shifted.append(sh_i)
        folded = []
        for i in range(E):
            total = shifted[i]
            for k in range(1, PP):
                t = Signal(signed(shw), name=f"vf{i}_{k}")
                with m.Switch(lg_se):
                    for j in range(lg_e + 1):
                        src = i + k * (1 << j)
                        if i < (1 << j) and src < E:
                            with m.Case(j):
                                m.d.comb += t.eq(shifted[src])
                    with m.Default():
                        m.d.comb += t.eq(0)
                total = total + t
            f_i = Signal(signed(shw + lg_pp), name=f"vfold{i}")
            m.d.comb += f_i.eq(total)
            folded.append(f_i)
        # one adder per step lane: the step's row of accumulators is selected, added to and
        # written back (an adder per accumulator would cost max_rows times as many)
        vC = sB_v & sB_kind
        summed = []
        for i in range(E):
            cur = select(m, [acc[r * E + i] for r in range(g.max_rows)], sB_w, signed(aw), f"acc_rd{i}")
            s_ = Signal(signed(aw), name=f"acc_sum{i}")
            m.d.comb += s_.eq(cur + folded[i])
            summed.append(s_)
        for r in range(g.max_rows):
            with m.If(vC & is_(sB_w, r)):
                m.d.sync += [acc[r * E + i].eq(summed[i]) for i in range(E)]
        v_busy = Signal()                  # V items in flight (A, B)
        m.d.comb += v_busy.eq((sA_v & sA_kind) | (sB_v & sB_kind))

        # ---- K path: adder tree (segment sums tapped at the stride's level), scaling -------
        levels = [list(prod)]
        tags = {"v": sB_v & ~sB_kind, "first": sB_first, "end": sB_end, "last": sB_last, "np": sB_np}
        tags.update({f"ke{k}": keB[k] for k in range(PP)})
        width = pw
        lvl = 0
        vals = list(prod)
        while len(vals) > 1:
            lvl += 1
            width += 1
            nxt = []
            for j in range(0, len(vals), 2):
                s_ = Signal(signed(width), name=f"t{lvl}_{j // 2}")
                m.d.sync += s_.eq(vals[j] + vals[j + 1] if j + 1 < len(vals) else vals[j])
                nxt.append(s_)
            vals = nxt
            levels.append(vals)
            for key, v_ in list(tags.items()):
                r_ = Signal(len(v_), name=f"t{lvl}_{key}")
                m.d.sync += r_.eq(v_)
                tags[key] = r_
        T = lvl
        # delay each level's first PP sums to the root's stage, then tap the stride's level
        taps = []
        for t_, vals_t in enumerate(levels):
            row = []
            for k in range(min(PP, len(vals_t))):
                v_ = vals_t[k]
                for d in range(T - t_):
                    r_ = Signal(signed(width), name=f"tap{t_}_{k}_{d}")
                    m.d.sync += r_.eq(v_)
                    v_ = r_
                row.append(v_)
            taps.append(row)
        dots = []
        for k in range(PP):
            dk = Signal(signed(width), name=f"dot{k}")
            with m.Switch(lg_se):
                for j in range(lg_e + 1):
                    if j < len(taps) and k < len(taps[j]):
                        with m.Case(j):
                            m.d.comb += dk.eq(taps[j][k])
                with m.Default():
                    m.d.comb += dk.eq(0)
            dots.append(dk)
        tv, tfirst, tend, tlast, tnp = tags["v"], tags["first"], tags["end"], tags["last"], tags["np"]
        sw = width + clog2(g.max_rows) + 1
        sacc = Signal(signed(sw))
        ssum = Signal(signed(sw))
        m.d.comb += ssum.eq(Mux(tfirst, dots[0], sacc + dots[0]))
        with m.If(tv):
            m.d.sync += sacc.eq(ssum)
        # stage D: score sums of the finished positions
        dV, dLast = Signal(), Signal()
        dNp = Signal(range(PP + 1))
        dS = [Signal(signed(sw), name=f"dS{k}") for k in range(PP)]
        dKe = [Signal(KV_EXP_BITS, name=f"dKe{k}") for k in range(PP)]
        m.d.sync += [dV.eq(tv & tend), dLast.eq(tlast), dNp.eq(tnp), dS[0].eq(ssum)]
        m.d.sync += [dS[k].eq(dots[k]) for k in range(1, PP)]
        m.d.sync += [dKe[k].eq(tags[f"ke{k}"]) for k in range(PP)]
        # stage E: times the 1/sqrt(hd) multiplier
        eV_, eLast = Signal(), Signal()
        eNp = Signal(range(PP + 1))
        eX = [Signal(signed(sw + SCORE_MULT_BITS + 2), name=f"eX{k}") for k in range(PP)]
        eKe = [Signal(KV_EXP_BITS, name=f"eKe{k}") for k in range(PP)]
        m.d.sync += [eV_.eq(dV), eLast.eq(dLast), eNp.eq(dNp)]
        m.d.sync += [eX[k].eq(dS[k] * mult) for k in range(PP)] + [eKe[k].eq(dKe[k]) for k in range(PP)]
        # stage F: shift into Q.10, saturate, pack into softmax beats
        base_sh = Signal(signed(12))       # fq + kf - qe + 6
        scores = [shift_to(m, eX[k], -(base_sh - eKe[k]), REG_BITS, f"score{k}") for k in range(PP)]
        pk = [Signal(signed(REG_BITS), name=f"pk{i}") for i in range(Ls)]
        pk_n = Signal(range(Ls + 1))
        sv = Signal()
        sv_data = [Signal(signed(REG_BITS), name=f"smi{i}") for i in range(Ls)]
        sv_n = Signal(range(Ls + 1))
        sv_last = Signal()
        nv = []
        for i in range(Ls):
            v_ = Signal(signed(REG_BITS), name=f"pknew{i}")
            m.d.comb += v_.eq(pk[i])
            for k in range(PP):
                if k <= i:
                    with m.If(is_(pk_n, i - k) & (eNp > k)):
                        m.d.comb += v_.eq(scores[k])
            nv.append(v_)
        with m.If(sm.i.valid & sm.i.ready):
            m.d.sync += sv.eq(0)
        with m.If(eV_):
            m.d.sync += [pk[i].eq(nv[i]) for i in range(Ls)]
            with m.If((pk_n + eNp >= Ls) | eLast):
                m.d.sync += [sv.eq(1), sv_n.eq(pk_n + eNp), sv_last.eq(eLast), pk_n.eq(0)]
                m.d.sync += [sv_data[i].eq(nv[i]) for i in range(Ls)]
            with m.Else():
                m.d.sync += pk_n.eq(pk_n + eNp)
        m.d.comb += [sm.i.valid.eq(sv), sm.i.payload.n.eq(sv_n), sm.i.payload.last.eq(sv_last)]
        for i in range(Ls):
            m.d.comb += sm.i.payload.data[i].eq(sv_data[i])

        # ---- output: shift_to(acc, out_frac - 15 - vf) -------------------------------------
        ob = Signal(range(nl // Lv + 2))
        osh = Signal(signed(11))
        o_last = Signal()
        m.d.comb += o_last.eq((ob + 1) * Lv >= hd)
        for j in range(Lv):
            sel = Signal(signed(aw), name=f"osel{j}")
            with m.Switch(ob):
                for k in range(-(-nl // Lv)):
                    if k * Lv + j < nl:
                        with m.Case(k):
                            m.d.comb += sel.eq(acc[k * Lv + j])
                with m.Default():
                    m.d.comb += sel.eq(0)
            y = shift_to(m, sel, osh, REG_BITS, f"out{j}")
            m.d.comb += self.vw.data.payload.data[j].eq(y)
        m.d.comb += self.vw.data.payload.last.eq(o_last)

        # signed copies of the format fields (unsigned subtraction would wrap)
        s_of, s_kf, s_vf, s_fq, s_qe = (Signal(signed(10), name=n) for n in ("s_of", "s_kf", "s_vf", "s_fq", "s_qe"))
        m.d.comb += [s_of.eq(ins.imm[:8]), s_kf.eq(ins.imm[8:16]), s_vf.eq(ins.imm[16:24]),
                     s_fq.eq(fq), s_qe.eq(qe_next)]

        # ---- control ---------------------------------------------------------------------
        with m.If(clear):
            m.d.sync += [qmax.eq(0), qbeat.eq(0), qgot.eq(0), qreqd.eq(0), nreq.eq(0), ph.eq(0),
                         ewa.eq(0), lpos.eq(0), wrow.eq(0), lp.eq(0), sacc.eq(0), pk_n.eq(0)]
            m.d.sync += [r.eq(0) for r in raw] + [a.eq(0) for a in acc]

        with OneHot(m, ['IDLE', 'DIV', 'HEAD', 'QLOAD', 'KWAIT', 'KPASS', 'VPASS', 'VDRAIN', 'OREQ', 'ODATA', 'NEXT'], "IDLE") as fsm:
            self.fsm = fsm   # (debug: state flags)
            with fsm.state("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    c = self.cmd.payload
                    m.d.sync += [ins.eq(c.ins), fq.eq(c.frac_a), nseq.eq(c.nseq), pos.eq(c.pos), chunk.eq(c.chunk),
                                 hd.eq(c.ins.n), heads.eq(c.ins.m[:10]), kvh.eq(c.ins.m[10:20]),
                                 div_rem.eq(c.ins.m[:10]), grp.eq(0),
                                 seq.eq(0), kh.eq(0), gi.eq(0), qstart.eq(0), base.eq(c.ins.addr)]
                    fsm.go("IDLE", "DIV")
            with fsm.state("DIV"):     # group size = heads / kv_heads by repeated subtraction
                m.d.sync += mult.eq(mrp.data)
                with m.If(div_rem >= kvh):
                    m.d.sync += [div_rem.eq(div_rem - kvh), grp.eq(grp + 1)]
                with m.Else():
                    fsm.go("DIV", "HEAD")
            with fsm.state("HEAD"):
                m.d.comb += clear.eq(1)
                m.d.sync += osh.eq(s_of - 15 - s_vf)
                fsm.go("HEAD", "QLOAD")
            with fsm.state("QLOAD"):
                m.d.comb += [req_on.eq(1),
                             self.vra.req.valid.eq(~qreqd), self.vra.req.payload.reg.eq(ins.a),
                             self.vra.req.payload.seq.eq(seq), self.vra.req.payload.start.eq(qstart),
                             self.vra.req.payload.count.eq(hd),
                             self.vra.data.ready.eq(qreqd & ~qgot)]
                with m.If(self.vra.req.valid & self.vra.req.ready):
                    m.d.sync += qreqd.eq(1)
                with m.If(qgot):
                    m.d.sync += [qe.eq(qe_next), base_sh.eq(s_fq + s_kf - s_qe + 6)]
                    fsm.go("QLOAD", "KWAIT")
            with fsm.state("KWAIT"):
                m.d.comb += req_on.eq(1)
                with m.If(ph == 1):
                    fsm.go("KWAIT", "KPASS")
            with fsm.state("KPASS"):
                m.d.comb += [req_on.eq(1), step.eq(mdat.valid)]
                with m.If(step & is_last):
                    m.d.sync += [lpos.eq(0), wrow.eq(0)]
                    fsm.go("KPASS", "VPASS")
            with fsm.state("VPASS"):
                m.d.comb += [req_on.eq(1), kind_v.eq(1), step.eq(mdat.valid & (ph == 2) & sm.o.valid)]
                with m.If(step & is_last):
                    fsm.go("VPASS", "VDRAIN")
            with fsm.state("VDRAIN"):
                with m.If(~v_busy):
                    m.d.sync += ob.eq(0)
                    fsm.go("VDRAIN", "OREQ")
            with fsm.state("OREQ"):
                m.d.comb += [self.vw.req.valid.eq(1), self.vw.req.payload.reg.eq(ins.dst),
                             self.vw.req.payload.seq.eq(seq), self.vw.req.payload.start.eq(qstart),
                             self.vw.req.payload.count.eq(hd)]
                with m.If(self.vw.req.ready):
                    fsm.go("OREQ", "ODATA")
            with fsm.state("ODATA"):
                m.d.comb += self.vw.data.valid.eq(1)
                with m.If(self.vw.data.ready):
                    m.d.sync += ob.eq(ob + 1)
                    with m.If(o_last):
                        fsm.go("ODATA", "NEXT")
            with fsm.state("NEXT"):
                m.d.sync += qstart.eq(qstart + hd)
                with m.If(gi + 1 < grp):
                    m.d.sync += gi.eq(gi + 1)
                    fsm.go("NEXT", "HEAD")
                with m.Elif(kh + 1 < kvh):
                    m.d.sync += [gi.eq(0), kh.eq(kh + 1), base.eq(base + g.head_bytes)]
                    fsm.go("NEXT", "HEAD")
                with m.Elif(seq + 1 < nseq):
                    m.d.sync += [gi.eq(0), kh.eq(0), seq.eq(seq + 1), qstart.eq(0),
                                 base.eq(Mux(chunk, ins.addr, base + g.head_bytes))]
                    fsm.go("NEXT", "HEAD")
                with m.Else():
                    m.d.comb += self.done.eq(1)
                    fsm.go("NEXT", "IDLE")
        return m
