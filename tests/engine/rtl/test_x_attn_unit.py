"""KVAPPEND and ATTN execution units in the Amaranth simulator with Python port models
(tests/engine/rtl/attnports.py), bit for bit against the golden Machine's arithmetic, and the
cycle model against the simulated cycles."""

from __future__ import annotations

import numpy as np
import pytest

from fpgallm.engine import golden as G
from fpgallm.engine.isa import Instruction, Op
from fpgallm.engine.params import EngineParams, KVFormat
from fpgallm.engine.rtl import x_attn, x_kv
from fpgallm.engine.kvlayout import kv_layer_bytes, kv_layout, kv_state_bytes
from tests.engine.rtl import attnports as portsim

REG_LIM = 1 << 23


class FakeMachine(G.Machine):
    """The golden Machine's KVAPPEND / ATTN on hand-made registers (no compiled model)."""

    def __init__(self, p: EngineParams, hd: int, kvh: int, ctx: int, addr: int):
        self.p = p
        self.B = 1
        self.chunk = False
        self.S = np.zeros((p.batch, 16), np.int64)
        self.V = {}
        shape = (p.batch, kvh, ctx, hd)
        self.kv = {addr: {"k": np.zeros(shape, np.int64), "v": np.zeros(shape, np.int64),
                          "ke": np.zeros(shape[:3], np.int64), "ve": np.zeros(shape[:3], np.int64),
                          "kf": None, "vf": None}}

        class _C:
            context = ctx
        self.c = _C()


def rand_vec(rng, n, scale_bits):
    """Random 24-bit values with a per-head magnitude of ``scale_bits`` bits."""
    return rng.integers(-(1 << scale_bits), 1 << scale_bits, n, dtype=np.int64)


def first_mismatch(got, want):
    got, want = np.asarray(got), np.asarray(want)
    bad = np.nonzero(got != want)[0]
    if bad.size:
        i = int(bad[0])
        return f"first mismatch at index {i}: rtl {int(got[i])}, golden {int(want[i])} ({bad.size} differ)"
    return None


def run_case(p, hd, heads, kvh, positions_per_seq, seed, magnitudes=(20, 12), frac=(14, 12, 11, 10),
             check_cycles=True, stall=0.0):
    """KVAPPEND at every position of each sequence's list (in order), then ATTN at the
    last; compares the KV bytes after every KVAPPEND and the ATTN output."""
    rng = np.random.default_rng(seed)
    print(f"seed {seed}: hd={hd} heads={heads} kv_heads={kvh} positions={positions_per_seq}")
    B = len(positions_per_seq)
    kvd, d = kvh * hd, heads * hd
    addr = 0
    nbytes = kv_layer_bytes(p, hd, kvh)
    mem = bytearray(nbytes)
    ctx = p.max_context
    gm = FakeMachine(p, hd, kvh, ctx, addr)
    gm.B = B
    fq, fk, fv, fo = frac
    kv_unit = x_kv.Unit(p)
    steps = max(len(x) for x in positions_per_seq)
    kv_ins = Instruction(Op.KVAPPEND, a=3, b=4, n=kvd, m=hd, addr=addr)
    kv_cycles = []
    for t in range(steps):
        pos = [x[min(t, len(x) - 1)] for x in positions_per_seq]
        regs = {}
        kk = np.stack([rand_vec(rng, kvd, int(rng.integers(1, magnitudes[0] + 1))) for _ in range(B)])
        vv = np.stack([rand_vec(rng, kvd, int(rng.integers(1, magnitudes[1] + 1))) for _ in range(B)])
        if t == 0:   # extremes: full-scale, zero and tiny head vectors
            kk[0, :hd] = rng.choice([-REG_LIM, REG_LIM - 1], hd)
            vv[0, :hd] = 0
            if kvh > 1:
                kk[0, hd:2 * hd] = 0
                vv[0, hd:2 * hd] = rng.choice([-REG_LIM, REG_LIM - 1], hd)
        for b in range(B):
            regs[(3, b)] = list(kk[b])
            regs[(4, b)] = list(vv[b])
        gm.V[3], gm.V[4] = G.Reg(kk, fk), G.Reg(vv, fv)
        gm.S[:B, 0] = pos
        gm.op_KVAPPEND(kv_ins)
        cyc = portsim.run_unit(x_kv.Unit(p) if t else kv_unit, p,
                               portsim.make_cmd(p, kv_ins, pos=pos), regs, mem, stall=stall, seed=seed + t)
        kv_cycles.append(cyc)
        want = kv_state_bytes(p, gm.kv[addr], nbytes)
        msg = first_mismatch(np.frombuffer(bytes(mem), np.uint8), np.frombuffer(want, np.uint8))
        assert msg is None, f"KVAPPEND step {t} pos {pos}: KV bytes {msg}"
        if check_cycles:
            model = x_kv.cycles(p, kvd, hd, B, portsim.VREAD_LATENCY, portsim.WDONE_LATENCY,
                                  serial_writes=False)
            assert cyc == model, f"KVAPPEND cycles: rtl {cyc}, model {model}"
    # ATTN at the final positions
    qv = np.stack([rand_vec(rng, d, int(rng.integers(4, 23))) for _ in range(B)])
    regs = {(2, b): list(qv[b]) for b in range(B)}
    gm.V[2] = G.Reg(qv, fq)
    pos = [x[-1] for x in positions_per_seq]
    gm.S[:B, 0] = pos
    ins = Instruction(Op.ATTN, dst=5, a=2, n=hd, m=heads | kvh << 10, addr=addr,
                      imm=fo | fk << 8 | fv << 16)
    gm.op_ATTN(ins)
    cyc = portsim.run_unit(x_attn.Unit(p), p, portsim.make_cmd(p, ins, frac_a=fq, pos=pos), regs, mem,
                           stall=stall, seed=seed)
    for b in range(B):
        msg = first_mismatch(regs[(5, b)][:d], gm.V[5].v[b])
        assert msg is None, f"ATTN seq {b}: {msg}"
    model = x_attn.cycles(p, hd, heads, kvh, [x + 1 for x in pos], portsim.VREAD_LATENCY,
                          portsim.MREAD_LATENCY)
    print(f"KVAPPEND cycles {kv_cycles}; ATTN cycles rtl {cyc} model {model} "
          f"(lengths {[x + 1 for x in pos]})")
    if check_cycles:
        assert cyc == model, f"ATTN cycles: rtl {cyc}, model {model}"
    return cyc


SMALL = dict(mem_ports=2, port_width=64, max_dim=256, max_ffn=256, vector_lanes=4,
             max_context=32, max_vocab=64)


def test_layout_sizes():
    p = EngineParams()
    lay = kv_layout(p, 64)            # SmolLM2: 64 B per position, 2 per 128 B word
    assert (lay.stride, lay.rows, lay.per_word) == (64, 1, 2)
    assert lay.head_bytes == 2 * 2048 + 2 * 2048 * 64
    lay = kv_layout(EngineParams(mem_ports=2, port_width=64), 80)
    assert (lay.stride, lay.rows, lay.per_word) == (80, 5, 1)
    lay = kv_layout(EngineParams(kv_format=KVFormat.INT16), 24)
    assert (lay.stride, lay.rows, lay.per_word) == (64, 1, 2)


@pytest.mark.parametrize("hd,heads,kvh", [(16, 4, 2), (8, 2, 1), (4, 4, 1)])
def test_attn_rows_share_word(hd, heads, kvh, seed):
    # 16-byte stripe words: hd=4 -> 4 positions per word, hd=8 -> 2 (one step each);
    # hd=16 -> 1 word per position
    p = EngineParams(**SMALL)
    run_case(p, hd, heads, kvh, [[0, 1, 2, 3, 4]], seed)


def test_attn_multiword_batch(seed):
    p = EngineParams(**{**SMALL, "batch": 2})
    # hd=32 -> 2 words per position; two sequences at different positions
    run_case(p, 32, 2, 2, [[0, 1, 2, 5], [3, 4, 6, 9]], seed + 1)


def test_attn_int16_kv(seed):
    p = EngineParams(**{**SMALL, "kv_format": KVFormat.INT16})
    run_case(p, 8, 3, 1, [[0, 1, 2]], seed + 2)


def test_attn_full_context(seed):
    p = EngineParams(**{**SMALL, "max_context": 16})
    run_case(p, 8, 2, 2, [list(range(16))], seed + 3, check_cycles=True)


@pytest.mark.parametrize("mod", [x_kv, x_attn])
def test_lint_clean(mod):
    from fpgallm.hdl.emit import to_verilog
    from fpgallm.sim.runner import lint
    p = EngineParams(**SMALL)
    # DECLFILENAME: x_attn's softmax is a second module in the same file
    assert lint(to_verilog(mod.Unit(p), mod.__name__.split(".")[-1], p),
                extra_args=("-Wno-DECLFILENAME",)) == []


def test_attn_padded_head_dims(seed):
    # hd=12: 12 of 16 stride bytes used; hd=40: 3 words per position, the last one partial
    p = EngineParams(**{**SMALL, "batch": 2})
    run_case(p, 12, 2, 1, [[0, 1, 2]], seed + 4)
    run_case(p, 40, 1, 1, [[2, 0, 1]], seed + 5)       # positions written out of order


def test_attn_smollm2_geometry(seed):
    # SmolLM2-135M's attention (head_dim 64, 3 heads per kv-head) on the default 4 x 256-bit
    # ports: two positions per 128-byte stripe word, 128 multipliers
    p = EngineParams(max_dim=576, max_ffn=1536, max_context=64, vector_lanes=8, max_vocab=64)
    run_case(p, 64, 3, 1, [[0, 1, 2, 3, 4]], seed + 6)


@pytest.mark.parametrize("hd", [4, 32])
def test_attn_under_backpressure(hd, seed):
    # every port stalls at random (30% of cycles): results must not change
    p = EngineParams(**{**SMALL, "batch": 2})
    run_case(p, hd, 2, 1, [[0, 1, 2, 3, 4], [5, 6, 7, 1, 8]], seed + 7, check_cycles=False, stall=0.3)


def test_attn_head_dim_max(seed):
    # MAX_HEAD_DIM = 256: 16 stripe words per position
    run_case(EngineParams(**SMALL), 256, 1, 1, [[0, 1, 2]], seed + 8)


def test_attn_head_buffers_sized_to_the_model(seed):
    # max_head_dim 24 (not a power of two): head buffers of 2 stripe words (32 lanes); a
    # head of the maximum, a smaller one, and one that shares a word with another position
    p = EngineParams(**{**SMALL, "max_head_dim": 24, "batch": 2})
    run_case(p, 24, 4, 2, [[0, 1, 2, 3], [4, 5, 6, 7]], seed + 11)
    run_case(p, 16, 2, 1, [[0, 1, 2]] * 2, seed + 12)
    run_case(p, 4, 2, 2, [[0, 1, 2, 3, 4]] * 2, seed + 13)


def test_attn_narrow_port_int16_batch3(seed):
    # one 32-bit port (4-byte stripe words), INT16 KV, 2 vector lanes, batch 3
    p = EngineParams(mem_ports=1, port_width=32, max_dim=64, max_ffn=64, vector_lanes=2,
                     max_context=8, max_vocab=64, kv_format=KVFormat.INT16, batch=3)
    run_case(p, 8, 2, 2, [[0, 1, 2], [3, 1, 4], [2, 5, 7]], seed + 9)
    run_case(p, 1, 1, 1, [[0, 1, 2, 3]], seed + 10)     # head_dim 1: 2 positions per word


@pytest.mark.parametrize("hd", [16, 12, 8, 4])
def test_wide_word_narrow_heads(hd, seed):
    # 4 x 256-bit ports and heads of at most 16: ATTN's steps are 4 positions x 16 lanes, 64
    # of the word's 128 elements (the step's aligned block is picked from the word, then
    # shifted inside it); KVAPPEND writes the row repeated per aligned block under strobes
    p = EngineParams(**{**SMALL, "mem_ports": 4, "port_width": 256, "max_head_dim": 16, "batch": 2})
    assert x_attn.step_lanes(p) == 64 < kv_layout(p, 1).stripe
    run_case(p, hd, 2, 1, [[0, 1, 2, 3, 4, 5, 6, 9], [8, 3, 5, 1, 2, 11, 12, 13]], seed + 9)
