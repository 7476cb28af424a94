"""The compiler's matrix layout and weight-prefetch hints: matrices lie in memory in the order
the program reads them, so a decode step's GEMVs read one stream; with a prefetch buffer the
program gets one ``PREFETCH`` per stream and nothing else changes (same logits)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fpgallm.engine import compiler as C
from fpgallm.engine.golden import GoldenEngine, default_params
from fpgallm.engine.isa import Instruction, Op
from fpgallm.model.load import load_model


def compiled(name: str, prefetch_words: int = 0):
    m = load_model(name)
    p = dataclasses.replace(default_params(m.spec, 32, C.model_weight_formats(m)), prefetch_words=prefetch_words)
    return m, C.compile_model(m, p, context=32)


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gpt2"])
def test_gemvs_read_one_contiguous_stream(name):
    _m, c = compiled(name)
    gemvs = [ins for ins in c.program if ins.op is Op.GEMV]
    for i, (a, b) in enumerate(zip(gemvs, gemvs[1:])):
        end = a.addr + c.image.by_addr[a.addr].nbytes
        assert b.addr == end, f"GEMV {i + 1} reads {b.addr:#x}, the previous matrix ends at {end:#x}"
    assert C.prefetch_streams(c.program, c.image) == [
        (0, gemvs[0].addr, sum(c.image.by_addr[g.addr].nbytes for g in gemvs) // c.image.stripe)]


def test_read_order():
    names = ["token_embd.weight", "blk.0.ffn_down.weight", "blk.0.attn_k.weight", "blk.1.attn_q.weight",
             "blk.0.attn_q.weight", "blk.0.ffn_up.weight", "output.weight"]
    assert C.read_order(names) == ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight",
                                   "blk.0.ffn_up.weight", "blk.0.ffn_down.weight", "blk.1.attn_q.weight",
                                   "output.weight"]
    # tied embeddings: the table is the LM head, read last
    tied = ["blk.0.attn_v.weight", "blk.0.attn_q.weight", "token_embd.weight"]
    assert C.read_order(tied) == ["blk.0.attn_q.weight", "blk.0.attn_v.weight", "token_embd.weight"]


def test_prefetch_streams_split_where_matrices_are_not_contiguous():
    img = C.MemoryImage(1, 16)
    a = img.add("a", 64, "matrix")
    b = img.add("b", 32, "matrix")
    img.add("x", 16, "vector")                   # a vector between b and c
    c = img.add("c", 48, "matrix")
    prog = [Instruction(Op.NORM), Instruction(Op.GEMV, addr=a.addr), Instruction(Op.GEMV, addr=b.addr),
            Instruction(Op.QUANT), Instruction(Op.GEMV, addr=c.addr), Instruction(Op.GEMV, addr=a.addr)]
    assert C.prefetch_streams(prog, img) == [(0, a.addr, 6), (3, c.addr, 3), (5, a.addr, 4)]
    out, marks = C.with_prefetch(prog + [Instruction(Op.HALT)], {"x": 4, "y": 1}, img)
    assert [i.op for i in out] == [Op.PREFETCH, Op.NORM, Op.GEMV, Op.GEMV, Op.PREFETCH, Op.QUANT,
                                   Op.GEMV, Op.PREFETCH, Op.GEMV, Op.HALT]
    assert (out[4].addr, out[4].n | out[4].m << 20) == (c.addr, 3)
    assert marks == {"x": 6, "y": 2}


def test_prefetch_hints_change_nothing_but_timing():
    """tiny-llama with a 64-word prefetch buffer: one PREFETCH in front of the same program,
    marks moved with it, the golden engine's logits identical, the cycle model's GEMVs
    cheaper by the memory latency they no longer wait for."""
    m, plain = compiled("tiny-llama")
    _m, pf = compiled("tiny-llama", 64)
    assert pf.program[0].op is Op.PREFETCH and pf.program[1:] == plain.program
    assert {k: v + 1 for k, v in plain.marks.items()} == pf.marks
    ids = m.tokenizer.encode("The cat sat")
    logits = []
    for c in (plain, pf):
        g = GoldenEngine(m, c.params, context=32)
        logits.append(g.teacher_forced(ids))
    assert np.array_equal(logits[0], logits[1])
    from fpgallm.engine.cycles import CycleModel

    a, b = CycleModel(plain), CycleModel(pf)
    lat = plain.params.mem_latency
    for ins in a.body():
        saved = a.cost(ins, 1) - b.cost(ins, 1)
        if ins.op is Op.GEMV:   # the two round trips (header, body) the activation load hid not
            assert 0 < saved <= 2 * lat, (ins, saved)
        else:
            assert saved == 0, (ins, saved)
    assert b.cost(pf.program[0], 1) == 3
