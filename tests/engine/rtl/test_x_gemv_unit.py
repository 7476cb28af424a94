"""x_gemv / x_embed against the golden engine's arithmetic, in Amaranth's Python simulator
with Python models of the ports (tests/engine/rtl/portsim.py), and the matrix image layout."""

from __future__ import annotations

import numpy as np
import pytest

from fpgallm.engine import compiler as C
from fpgallm.engine import golden as G
from fpgallm.engine.isa import Instruction, Op
from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl import x_gemv
from fpgallm.units import gemv as gemv_u
from fpgallm.units.weights import WeightFormat
from tests.engine.rtl.portsim import cmd, run_unit

F = WeightFormat
# background port models are closed mid-await when the simulation ends
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def small_params(fmts, batch=1, lanes=2, port_width=128, mem_ports=1, vlanes=4):
    return EngineParams(gemv_lanes=lanes, mem_ports=mem_ports, port_width=port_width, max_dim=256,
                        max_ffn=256, max_vocab=256, vregs=8, batch=batch, vector_lanes=vlanes,
                        weight_formats=tuple(fmts), max_context=16, mem_bytes=1 << 20)


def random_matrix(p: EngineParams, fmt, group, rows, cols, rng, scale_log2=0.0):
    gp = C.gemv_params(p, fmt, group)
    w = rng.standard_normal((rows, cols)) * np.exp2(rng.uniform(-6, 0, size=(rows, 1)) + scale_log2)
    pad = (-rows) % gp.lanes
    w = np.concatenate([w, np.zeros((pad, cols))])
    return gemv_u.quantize(gp, w)


def random_activation(B, cols, rng):
    x = rng.integers(-128, 128, size=(B, cols))
    e = rng.integers(0, C.ACT_EXP_MAX + 1, size=(B, cols // 32))
    x[:, :7] = -128
    return x, e


def words_from_image(img: bytes, W: int) -> list[int]:
    wb = W // 8
    return [int.from_bytes(img[i:i + wb], "little") for i in range(0, len(img), wb)]


@pytest.mark.parametrize("fmt,group", [(F.INT8_ROW, 0), (F.INT8_GROUP, 32), (F.INT4_GROUP, 64),
                                       (F.INT4_GROUP_MIN, 32), (F.INT4_GROUP_MIN, 128)])
@pytest.mark.parametrize("lanes,port_width", [(2, 128), (8, 256)])
def test_matrix_image_layout(fmt, group, lanes, port_width):
    """The image is the header, then per row tile chunks of (scale words, weight words), the
    packer's words in order; its size is compiler.matrix_bytes."""
    rng = np.random.default_rng(3)
    p = small_params([fmt], lanes=lanes, port_width=port_width)
    pm = random_matrix(p, fmt, group, 3 * lanes, 256, rng)
    img = x_gemv.matrix_image(pm, p)
    assert len(img) == C.matrix_bytes(pm)
    gp = pm.params
    W = gp.word_bits
    words = words_from_image(img, W)
    hdr = words[0]
    tw = gp.tile_stream_words(pm.cols)
    assert (hdr & 0xFFFF) == pm.acc_exp & 0xFFFF and (hdr >> 16) & 0xFFFFFF == tw
    assert hdr >> 40 == pm.rows // gp.lanes
    ww, sw = pm.weight_words(), pm.scale_words()
    G_ = pm.dm.shape[1]
    gw = pm.cols // G_ // gp.k
    SB = gp.scale_beat_bits
    pos = 1
    for t in range(pm.rows // gp.lanes):
        sbits, nbits = 0, 0     # the tile's scale bit stream, as read so far
        for gi in range(G_):
            while nbits < (gi + 1) * SB:
                sbits |= words[pos] << nbits
                nbits += W
                pos += 1
            assert (sbits >> (gi * SB)) & ((1 << SB) - 1) == sw[t * G_ + gi], (t, gi)
            for j in range(gw):
                assert words[pos] == ww[t * (pm.cols // gp.k) + gi * gw + j], (t, gi, j)
                pos += 1
    assert pos == len(words)


def gemv_case(p, fmt, group, rows, cols, B, rng, frac_a=9, imm=12, scale_log2=0.0):
    pm = random_matrix(p, fmt, group, rows, cols, rng, scale_log2)
    x, e = random_activation(B, cols, rng)
    img = x_gemv.matrix_image(pm, p)
    acc = G.gemv_blocked(pm, x, e)[:, :rows]
    want = G.shift_to(acc, pm.acc_exp - frac_a + imm)
    ins = Instruction(Op.GEMV, dst=3, a=1, mode=C.wmode(fmt, group), n=rows, m=cols, addr=0, imm=imm)
    vregs = {(1, b): x[b] for b in range(B)}
    exps = {(1, b): e[b] for b in range(B)}
    return pm, img, ins, vregs, exps, want


@pytest.mark.parametrize("fmt,group,rows,cols,lanes,vlanes,stall,pw", [
    (F.INT8_GROUP, 32, 6, 64, 2, 4, 0.0, 128),
    (F.INT8_ROW, 0, 5, 96, 2, 4, 0.3, 128),
    (F.INT4_GROUP, 64, 8, 128, 2, 8, 0.0, 128),
    (F.INT4_GROUP_MIN, 32, 7, 96, 4, 2, 0.3, 256),
    (F.INT4_GROUP_MIN, 128, 4, 128, 2, 4, 0.0, 128),
    (F.INT8_GROUP, 32, 19, 256, 8, 8, 0.2, 256),
])
def test_gemv_unit_pysim(fmt, group, rows, cols, lanes, vlanes, stall, pw):
    seed = 11
    print("seed", seed)
    rng = np.random.default_rng(seed)
    p = small_params([fmt], lanes=lanes, vlanes=vlanes, port_width=pw)
    pm, img, ins, vregs, exps, want = gemv_case(p, fmt, group, rows, cols, 1, rng)
    unit = x_gemv.Unit(p)
    ports, cycles = run_unit(unit, p, [cmd(p, ins, frac_a=9)], img, vregs, exps, stall=stall, seed=seed)
    got = ports.vregs[(3, 0)][:rows]
    bad = np.flatnonzero(got != want[0])
    assert bad.size == 0, f"row {bad[0]}: rtl {got[bad[0]]} golden {want[0][bad[0]]}"
    print("cycles", cycles)


def test_scale_beat_must_fit_a_stripe_word():
    with pytest.raises(ValueError, match=r"gemv_lanes 4 x 34 scale bits of int4-group-min = 136 "
                                         r"must fit one stripe word \(mem_ports \* port_width = 128\)"):
        x_gemv.Unit(small_params([F.INT4_GROUP_MIN], lanes=4))


def test_gemv_unit_all_formats_batch_pysim():
    """One unit with all four formats and batch 2: a GEMV per format, with 2 and 1 sequences,
    back to back, under random stalls on every port."""
    seed = 21
    print("seed", seed)
    rng = np.random.default_rng(seed)
    fmts = [F.INT8_ROW, F.INT8_GROUP, F.INT4_GROUP, F.INT4_GROUP_MIN]
    p = small_params(fmts, batch=2, lanes=2, vlanes=4)
    unit = x_gemv.Unit(p)
    cases = [(F.INT8_GROUP, 64, 5, 128, 2), (F.INT4_GROUP_MIN, 32, 6, 64, 2),
             (F.INT8_ROW, 0, 4, 64, 1), (F.INT4_GROUP, 128, 3, 128, 2)]
    mem = b""
    cmds, wants, vregs, exps = [], [], {}, {}
    for i, (fmt, group, rows, cols, nseq) in enumerate(cases):
        pm, img, ins, vr, ex, want = gemv_case(p, fmt, group, rows, cols, nseq, rng, frac_a=5 + i, imm=10 + i)
        addr = len(mem)
        mem += img + bytes((-len(img)) % (p.bytes_per_cycle))
        from dataclasses import replace
        ins = replace(ins, a=i + 1, dst=8 + i, addr=addr)
        vregs.update({(i + 1, b): v for (_, b), v in vr.items()})
        exps.update({(i + 1, b): v for (_, b), v in ex.items()})
        cmds.append(cmd(p, ins, frac_a=5 + i, nseq=nseq))
        wants.append((8 + i, want))
    ports, cycles = run_unit(unit, p, cmds, mem, vregs, exps, stall=0.25, seed=seed)
    for (reg, want), (fmt, group, rows, cols, nseq) in zip(wants, cases):
        for b in range(nseq):
            got = ports.vregs[(reg, b)][:rows]
            bad = np.flatnonzero(got != want[b])
            assert bad.size == 0, f"{fmt.value} seq {b} row {bad[0]}: rtl {got[bad[0]]} golden {want[b][bad[0]]}"
        assert (reg, nseq) not in ports.vregs   # no write to a sequence outside the run
    print("cycles", cycles)


@pytest.mark.parametrize("fmts,batch,lanes,vlanes", [
    ([F.INT8_GROUP, F.INT4_GROUP_MIN], 2, 2, 4),
    ([F.INT8_ROW, F.INT4_GROUP], 1, 4, 2),
])
def test_embed_unit_pysim(fmts, batch, lanes, vlanes):
    """EMBED of every format of the unit: rows S[TOKEN] of each sequence, bit-exact with
    golden.embed_row, back to back, with random stalls."""
    from fpgallm.engine.rtl import x_embed

    seed = 31
    print("seed", seed)
    rng = np.random.default_rng(seed)
    p = small_params(fmts, batch=batch, lanes=lanes, vlanes=vlanes)
    unit = x_embed.Unit(p)
    mem, cmds, wants = b"", [], []
    for i, fmt in enumerate(fmts):
        group = 0 if fmt is F.INT8_ROW else (64 if i % 2 else 32)
        rows, cols = 11, 128
        pm = random_matrix(p, fmt, group, rows, cols, rng)
        addr = len(mem)
        img = x_gemv.matrix_image(pm, p)
        mem += img + bytes((-len(img)) % p.bytes_per_cycle)
        toks = [int(t) for t in rng.integers(0, rows, size=batch)]
        toks[0] = rows - 1
        frac = 14 + i
        ins = Instruction(Op.EMBED, dst=2 + i, mode=C.wmode(fmt, group), n=cols, addr=addr, imm=frac)
        cmds.append(cmd(p, ins, nseq=batch, tokens=toks))
        wants.append([G.embed_row(pm, t, frac)[:cols] for t in toks])
    ports, cycles = run_unit(unit, p, cmds, mem, {}, {}, stall=0.2, seed=seed)
    for i, want in enumerate(wants):
        for b, w in enumerate(want):
            got = ports.vregs[(2 + i, b)][:len(w)]
            bad = np.flatnonzero(got != w)
            assert bad.size == 0, f"{fmts[i].value} seq {b} elem {bad[0]}: rtl {got[bad[0]]} golden {w[bad[0]]}"
    print("cycles", cycles)


@pytest.mark.parametrize("fmt,group,lanes,vlanes,pw,batch", [
    (F.INT8_GROUP, 32, 2, 4, 128, 1), (F.INT4_GROUP_MIN, 32, 2, 4, 128, 2),
    (F.INT8_ROW, 0, 4, 2, 256, 1), (F.INT4_GROUP, 64, 8, 8, 256, 2)])
def test_gemv_and_embed_cycles_equal_the_model(fmt, group, lanes, vlanes, pw, batch):
    """No stall: the units' cycles (cmd accepted -> done) equal x_gemv.cycles /
    x_embed.cycles (CycleModel's GEMV / EMBED branches), memory- and load-bound."""
    from fpgallm.engine.rtl import x_embed
    gemv_cycles, embed_cycles = x_gemv.cycles, x_embed.cycles

    rng = np.random.default_rng(41)
    p = small_params([fmt], lanes=lanes, vlanes=vlanes, port_width=pw, batch=batch)
    gunit, eunit = x_gemv.Unit(p), x_embed.Unit(p)
    bad = []
    for rows, cols in [(lanes * 4, 64), (lanes * 3 + 1, 128), (lanes * 8, 256)]:
        for lat in (0, 12):
            for nseq in range(1, batch + 1):
                pm, img, ins, vregs, exps, want = gemv_case(p, fmt, group, rows, cols, nseq, rng)
                _, cyc = run_unit(gunit, p, [cmd(p, ins, frac_a=9, nseq=nseq)], img, vregs, exps,
                                  mem_latency=lat)
                model = gemv_cycles(p, pm, rows, cols, nseq, lat)
                if cyc[0] != model:
                    bad.append(("GEMV", rows, cols, lat, nseq, cyc[0], model))
                eins = Instruction(Op.EMBED, dst=2, mode=C.wmode(fmt, group), n=cols, imm=12)
                _, cyc = run_unit(eunit, p, [cmd(p, eins, nseq=nseq, tokens=[rows - 1, 0][:nseq])],
                                  img, {}, {}, mem_latency=lat)
                model = embed_cycles(p, pm, cols, nseq, lat)
                if cyc[0] != model:
                    bad.append(("EMBED", rows, cols, lat, nseq, cyc[0], model))
    assert not bad, "(op, rows, cols, latency, nseq, rtl, model): " + str(bad)


@pytest.mark.parametrize("batch", [1, 2])
def test_units_lint_clean(batch):
    """verilator --lint-only -Wall: clean but for DECLFILENAME (Amaranth writes a unit's
    submodules into its one file)."""
    from fpgallm.engine.rtl import x_embed
    from fpgallm.hdl.emit import to_verilog
    from fpgallm.sim.runner import lint

    p = small_params([F.INT8_ROW, F.INT8_GROUP, F.INT4_GROUP, F.INT4_GROUP_MIN], batch=batch, lanes=2,
                     vlanes=4 if batch == 1 else 2)
    for mod in (x_gemv, x_embed):
        msgs = lint(to_verilog(mod.Unit(p), "x_unit", p), extra_args=("-Wno-DECLFILENAME",))
        assert msgs == [], f"{mod.__name__}: " + "\n".join(msgs[:20])


@pytest.mark.parametrize("scale_log2,frac_a,imm", [(12.0, 0, 3), (14.0, 0, 22), (-10.0, 22, 0), (0.0, 4, 20)])
def test_gemv_unit_shift_and_saturation_pysim(scale_log2, frac_a, imm):
    """Left shifts (sh >= 0), right shifts by more than the accumulator, saturation both ways."""
    rng = np.random.default_rng(51)
    fmt, group = F.INT8_GROUP, 32
    p = small_params([fmt], lanes=2, vlanes=4)
    pm, img, ins, vregs, exps, want = gemv_case(p, fmt, group, 9, 128, 1, rng, frac_a=frac_a, imm=imm,
                                                scale_log2=scale_log2)
    sh = pm.acc_exp - frac_a + imm
    print("shift", sh, "saturated", int((np.abs(want) >= (1 << 23) - 1).sum()))
    ports, _ = run_unit(x_gemv.Unit(p), p, [cmd(p, ins, frac_a=frac_a)], img, vregs, exps)
    got = ports.vregs[(3, 0)][:9]
    bad = np.flatnonzero(got != want[0])
    assert bad.size == 0, f"shift {sh}: row {bad[0]}: rtl {got[bad[0]]} golden {want[0][bad[0]]}"
