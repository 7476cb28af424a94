"""EMBED execution unit of the decode engine.

``EMBED dst, mode, n, addr, imm``: for every sequence ``b`` of the run,
``V[dst][0:n] = golden.embed_row(W, S[TOKEN][b], imm[7:0])``: row ``S[TOKEN]`` of the packed
matrix at ``addr`` (the layout of :func:`fpgallm.engine.rtl.x_gemv.matrix_image`, so a tied LM
head and the embedding table are one region), dequantized to fixed point with ``imm[7:0]``
fraction bits with one rounding:
``t = (q * dm) << (max_shift - dr) [+ mm << (max_shift - mr)]``, then
``shift_to(t, emax - max_shift + frac)`` (``emax = acc_exp + guard`` from the header).

The row lives in row tile ``token // gemv_lanes`` as lane ``token % gemv_lanes``: the unit reads
the header, then that row tile's stripe words (``tile_words``, the other lanes' weights pass
unused: a row tile is ``gemv_lanes`` rows, a few stripe words per hundred columns), and emits
one element per cycle (``n`` cycles per sequence plus the memory latency; EMBED is a small
fraction of a token's cycles).  One element datapath per weight format of
``params.weight_formats`` (the lane extraction and the minimum term differ).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring

from fpgallm.engine import compiler as C
from fpgallm.engine.isa import Op
from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl import iface
from fpgallm.engine.rtl.x_gemv import (
    MatrixStream,
    _log2,
    check_params,
    div_const,
    is_,
    select_bits,
    shift_params,
    shift_to_pre,
)
from fpgallm.hdl.requant import round_sat

__all__ = ["OPS", "Unit", "cycles"]

OPS = (Op.EMBED,)


def cycles(p: EngineParams, pm, n: int, nseq: int, mem_latency: int = 0) -> int:
    """Cycles of :class:`Unit` with no stall (measured in tests/engine/rtl/test_x_gemv_unit.py):
    the header fetch, then per sequence a memory round trip, one cycle per element and per
    scale word of the row tile (``mem_latency`` as in :func:`x_gemv.cycles`)."""
    S = pm.params.scale_words_before(pm.dm.shape[1] - 1)
    return nseq * (n + S + mem_latency + 6) + mem_latency + 3


class Unit(wiring.Component):
    """EMBED execution unit (module docstring).  Contract: :mod:`fpgallm.engine.rtl.iface`."""

    def __init__(self, params: EngineParams):
        check_params(params)
        self.params = params
        self.gps = {f: C.engine_gemv_params(params, f) for f in params.weight_formats}
        super().__init__(iface.exec_signature(params))

    def elaborate(self, platform):
        p = self.params
        m = Module()
        W = iface.stripe_bits(p)
        WB = W // 8
        P, L, B = p.gemv_lanes, p.vector_lanes, p.batch
        TW = max(gp.fmt.bits + 1 + gp.scale_bits + gp.max_shift + 2 for gp in self.gps.values())
        cmd = self.cmd.payload

        busy, start = Signal(), Signal()
        dst, fcode, gcode = Signal(4), Signal(2), Signal(2)
        n = Signal(iface.ELEM_BITS)
        addr = Signal(iface.ADDR_BITS)
        frac = Signal(8)
        nseq = Signal(4)
        tile = [Signal(iface.SCALAR_BITS, name=f"tile{b}") for b in range(B)]
        lane = [Signal(range(max(2, P)), name=f"lane{b}") for b in range(B)]
        m.d.comb += self.cmd.ready.eq(~busy)
        m.d.sync += start.eq(0)
        with m.If(self.cmd.valid & ~busy):
            ins = cmd.ins
            m.d.sync += [busy.eq(1), start.eq(1), dst.eq(ins.dst), fcode.eq(ins.mode[:2]),
                         gcode.eq(ins.mode[2:4]), n.eq(ins.n), addr.eq(ins.addr),
                         frac.eq(ins.imm[:8]), nseq.eq(cmd.nseq)]
            for b in range(B):
                tq = div_const(m, cmd.token[b], P, iface.SCALAR_BITS, f"tok_q{b}")
                m.d.sync += [tile[b].eq(tq), lane[b].eq(cmd.token[b] - tq * P)]

        seq = Signal(3)
        cur_tile = Signal(iface.SCALAR_BITS)
        cur_lane = Signal(range(max(2, P)))
        for b in range(B):
            with m.If(is_(seq, b)):
                m.d.comb += [cur_tile.eq(tile[b]), cur_lane.eq(lane[b])]

        # --- per-format: stream parser and the element of the current word -----------------
        acc_exp = Signal(signed(16))
        tw = Signal(24)
        sh = Signal(signed(18))
        row_addr = Signal(iface.ADDR_BITS)
        streaming = Signal()
        in_valid = Signal()
        in_t = Signal(signed(TW))
        k = Signal(8)
        k_last = Signal()
        adv = Signal()
        fsel, mss = {}, {}
        guard_sh = Signal(signed(8))
        for f, gp in self.gps.items():
            fsel[f] = Signal(name=f"sel_{f.name}")
            m.d.comb += fsel[f].eq(busy & is_(fcode, C.WFMT_CODE[f]))
            ms = mss[f] = m.submodules[f"ms_{f.name}"] = MatrixStream(gp)
            K, bits = gp.k, gp.fmt.bits
            kl = _log2(K)
            if f.grouped:
                gwords = Mux(gcode == 1, 32 >> kl, Mux(gcode == 2, 64 >> kl, 128 >> kl))
                groups = Mux(gcode == 1, n >> 5, Mux(gcode == 2, n >> 6, n >> 7))
            else:
                gwords, groups = n >> kl, 1
            m.d.comb += [ms.group_words.eq(gwords), ms.groups.eq(groups)]
            with m.If(fsel[f]):
                m.d.comb += [guard_sh.eq(gp.guard - gp.max_shift), k_last.eq(k == K - 1)]
                with m.If(streaming):
                    m.d.comb += [ms.i.valid.eq(self.mr.data.valid),
                                 ms.i.payload.eq(self.mr.data.payload.data),
                                 self.mr.data.ready.eq(ms.i.ready),
                                 in_valid.eq(ms.o.valid),
                                 ms.o.ready.eq(adv & (k == K - 1))]
                lane_w = select_bits(m, ms.o.payload.w, cur_lane, K * bits, f"lw_{f.name}")
                qraw = select_bits(m, lane_w, k[:kl], bits, f"q_{f.name}") if K > 1 else lane_w
                q = qraw.as_signed() if gp.fmt.is_signed else Cat(qraw, 0).as_signed()
                lb = gp.scale_lane_bits
                sl = select_bits(m, ms.o.payload.s, cur_lane, lb, f"sl_{f.name}")
                sb, rw = gp.scale_bits, gp.shift_width
                dm, dr = sl[:sb].as_signed(), sl[sb:sb + rw]
                t = (q * dm) << (gp.max_shift - dr)[:rw]
                if gp.fmt.has_min:
                    mm, mr = sl[sb + rw:2 * sb + rw].as_signed(), sl[2 * sb + rw:2 * sb + 2 * rw]
                    t = t + (mm << (gp.max_shift - mr)[:rw])
                m.d.comb += in_t.eq(t)

        # --- element pipeline: t -> bias / clip -> shift + saturate -> beats of L ----------
        neg, rsh, lsh = shift_params(m, sh, TW, "cv")
        outv = Signal()
        m.d.comb += adv.eq(~outv | self.vw.data.ready)
        v1, v2 = Signal(), Signal()
        t1 = Signal(signed(TW))
        pre2 = Signal(signed(TW))
        pre2r = Signal()
        pre = shift_to_pre(m, t1, neg, rsh, lsh, "cv")
        gbuf = [Signal(signed(iface.REG_BITS), name=f"g{i}") for i in range(L)]
        obuf = [Signal(signed(iface.REG_BITS), name=f"o{i}") for i in range(L)]
        gcnt = Signal(range(max(2, L)))
        ecnt = Signal(iface.ELEM_BITS)
        olast = Signal()
        with m.If(adv):
            m.d.sync += [v1.eq(in_valid & streaming), t1.eq(in_t), v2.eq(v1),
                         pre2.eq(pre[0]), pre2r.eq(pre[1])]
            with m.If(in_valid & streaming):
                m.d.sync += k.eq(Mux(k_last, 0, k + 1))
        with m.If(self.vw.data.valid & self.vw.data.ready):
            m.d.sync += outv.eq(0)
        elem = round_sat(m, pre2, pre2r, iface.REG_BITS, "cvs")
        last_elem = ecnt == n - 1
        with m.If(adv & v2):
            for i in range(L):
                with m.If(is_(gcnt, i)):
                    m.d.sync += gbuf[i].eq(elem)
            m.d.sync += ecnt.eq(Mux(last_elem, 0, ecnt + 1))
            with m.If((gcnt == L - 1) | last_elem):
                m.d.sync += [gcnt.eq(0), outv.eq(1), olast.eq(last_elem)]
                for i in range(L):
                    m.d.sync += obuf[i].eq(Mux(is_(gcnt, i), elem, gbuf[i]))
            with m.Else():
                m.d.sync += gcnt.eq(gcnt + 1)
        m.d.comb += [self.vw.data.valid.eq(outv), self.vw.data.payload.last.eq(olast)]
        for i in range(L):
            m.d.comb += self.vw.data.payload.data[i].eq(obuf[i])
        with m.If(start):
            m.d.sync += [k.eq(0), gcnt.eq(0), ecnt.eq(0), seq.eq(0)]

        # --- control ---------------------------------------------------------------------
        IDLE, HREQ, HDAT, ADDR, VREQ, MREQ, STREAM = range(1, 8)   # (no state 0: lint)
        st = Signal(range(8), init=IDLE)
        with m.If(st == IDLE):
            with m.If(start):
                m.d.sync += st.eq(HREQ)
        with m.Elif(st == HREQ):
            m.d.comb += [self.mr.req.valid.eq(1), self.mr.req.payload.addr.eq(addr),
                         self.mr.req.payload.beats.eq(1)]
            with m.If(self.mr.req.ready):
                m.d.sync += st.eq(HDAT)
        with m.Elif(st == HDAT):
            m.d.comb += self.mr.data.ready.eq(1)
            with m.If(self.mr.data.valid):
                d = self.mr.data.payload.data
                m.d.sync += [acc_exp.eq(d[:16].as_signed()), tw.eq(d[16:40]), st.eq(ADDR)]
        with m.Elif(st == ADDR):
            m.d.sync += [row_addr.eq(addr + WB + cur_tile * tw * WB),
                         sh.eq(acc_exp + guard_sh + frac), st.eq(VREQ)]
        with m.Elif(st == VREQ):
            m.d.comb += [self.vw.req.valid.eq(1), self.vw.req.payload.reg.eq(dst),
                         self.vw.req.payload.seq.eq(seq), self.vw.req.payload.start.eq(0),
                         self.vw.req.payload.count.eq(n)]
            with m.If(self.vw.req.ready):
                m.d.sync += st.eq(MREQ)
        with m.Elif(st == MREQ):
            m.d.comb += [self.mr.req.valid.eq(1), self.mr.req.payload.addr.eq(row_addr),
                         self.mr.req.payload.beats.eq(tw)]
            with m.If(self.mr.req.ready):
                m.d.sync += st.eq(STREAM)
        with m.Elif(st == STREAM):
            m.d.comb += streaming.eq(1)
            with m.If(self.vw.data.valid & self.vw.data.ready & olast):
                m.d.sync += seq.eq(seq + 1)
                with m.If(seq == nseq - 1):
                    m.d.comb += self.done.eq(1)
                    m.d.sync += [busy.eq(0), st.eq(IDLE)]
                with m.Else():
                    m.d.sync += st.eq(ADDR)
        return m
