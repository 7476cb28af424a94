"""Performance model: the golden engine's cycle model on a weights-free compile.

The estimator's cycles must be the golden engine's cycles: a compile with weights and a
compile of the same spec and scheme without weights give the same program, layout and
cycle counts, for prefill (token by token) and decode, batch 1 and 2, with and without
memory latency.
"""

import dataclasses
import math

import pytest

from fpgallm.boards import all_boards, get_board
from fpgallm.engine import compiler as C
from fpgallm.engine.cycles import CycleModel, cycles_per_token
from fpgallm.engine.golden import GoldenEngine
from fpgallm.engine.isa import Op
from fpgallm.engine.params import EngineParams
from fpgallm.errors import UserError
from fpgallm.estimate import perf as P
from fpgallm.model.load import load_model
from fpgallm.model.quant import Q4_1, Q8_0
from fpgallm.model.spec import PRESETS
from tests.benchutil import load_benchmark


def _params(spec, **kw):
    return EngineParams(max_dim=max(spec.d_model, 64), max_ffn=max(spec.d_ffn, 64),
                        max_vocab=spec.vocab_size, max_context=64, **kw)


def _same_layout(a: C.Compiled, b: C.Compiled):
    assert len(a.program) == len(b.program)
    for i, (x, y) in enumerate(zip(a.program, b.program)):
        # the fraction bits (imm) come from calibration; everything else must be identical
        xa, ya = dataclasses.replace(x, imm=0), dataclasses.replace(y, imm=0)
        assert xa == ya, f"instruction {i}: {x.text()} != {y.text()}"
    assert [(r.name, r.addr, r.nbytes, r.kind) for r in a.image.regions] == \
        [(r.name, r.addr, r.nbytes, r.kind) for r in b.image.regions]
    assert a.symbols == b.symbols and a.context == b.context


@pytest.mark.parametrize("name,scheme,batch,latency", [
    ("tiny-llama", Q8_0, 1, 0), ("tiny-llama", Q4_1, 2, 23), ("tiny-gpt2", Q8_0, 1, 5)])
def test_weights_free_compile_gives_golden_cycles(name, scheme, batch, latency):
    m = load_model(name)
    params = _params(m.spec, batch=batch, mem_latency=latency)
    eng = GoldenEngine(m, params, scheme=scheme)
    shapes = C.compile_shapes(m.spec, params, scheme)
    _same_layout(eng.compiled, shapes)
    # every matrix: the descriptor has the packed matrix's shape and byte count
    for r, s in zip(eng.compiled.image.regions, shapes.image.regions):
        if r.kind == "matrix":
            assert (s.data.rows, s.data.cols, s.data.params) == (r.data.rows, r.data.cols, r.data.params)
            assert C.matrix_bytes(s.data) == C.matrix_bytes(r.data) == r.nbytes
    # prefill: the golden engine runs the prompt token by token and counts cycles
    ids = m.tokenizer.encode("Hello, cycles!")
    N = len(ids)
    eng.machine.reset()
    per_step = []
    for pos, t in enumerate(ids):
        before = eng.machine.cycles
        eng.step([t] * batch, [pos] * batch)
        per_step.append(eng.machine.cycles - before)
    assert eng.machine.cycles == P.prefill_cycles(shapes, N)
    # decode: each step's cycles = the estimator's program cycles at that length
    for pos, got in enumerate(per_step):
        want, by_op = P.program_cycles(shapes, pos + 1)
        assert got == want, f"position {pos}: golden {got}, estimator {want}"
        assert by_op == cycles_per_token(eng.compiled, pos + 1)["by_op"]
    est = P.perf_of_compiled(shapes, N)
    assert est.decode_cycles == per_step[-1]
    assert est.tokens_per_s == batch * params.clock_mhz * 1e6 / per_step[-1]
    assert est.ttft_s == eng.machine.cycles / (params.clock_mhz * 1e6)


@pytest.mark.parametrize("batch,latency", [(2, 23), (3, 0)])
def test_one_prompt_in_chunks_gives_golden_cycles(batch, latency):
    """The estimator's time to first token of one prompt on a batch-B engine is the golden
    engine's: the cycles of every run greedy generation makes until the first new token
    (prompt chunks of B positions, then the last prompt token)."""
    m = load_model("tiny-llama")
    params = _params(m.spec, batch=batch, mem_latency=latency)
    eng = GoldenEngine(m, params, scheme=Q8_0)
    shapes = C.compile_shapes(m.spec, params, Q8_0)
    ids = m.tokenizer.encode("Hello, cycles in chunks!")
    runs, _ = eng.recorded_runs([ids], 1)
    assert [len(pos) for (_tok, pos, _chunk), *_ in runs] == \
        [min(batch, len(ids) - 1 - s) for s in range(0, len(ids) - 1, batch)] + [1]
    golden = sum(cycles for *_, cycles in runs)
    assert P.prefill_chunked_cycles(shapes, len(ids)) == golden
    est = P.perf_of_compiled(shapes, len(ids))
    assert est.prefill_chunked_cycles == golden
    assert est.ttft_one_prompt_s == golden / (params.clock_mhz * 1e6)
    # B prompts together token by token take longer than one prompt in chunks
    assert est.prefill_cycles > golden


def test_prefill_gemm_figures():
    """benchmarks/prefill_gemm.py, the measurements behind prefill on the batch datapaths
    instead of a systolic array (docs/ARCHITECTURE.md): one SmolLM2 prompt in chunks of 8
    reaches its first token > 4x sooner than token by token; the widest array whose tiles
    fit the 32-column activation exponents at R = 8 rows is 8 x 48 and its matrix cycles are
    > 3x the batch GEMV's; fed from the engine's matrix layout (8 columns) > 8x, slower
    than prefilling token by token."""
    rows = {r["batch"]: r for r in load_benchmark("prefill_gemm").measure(64, (1, 8))}
    print(rows)
    assert rows[1]["ttft_speedup"] == 1.0 and rows[8]["ttft_speedup"] > 4
    assert rows[8]["array"] == "8x48" and rows[8]["array_macs"] == 384
    assert rows[8]["gemv_macs"] == 2048
    assert all(r["array_over_gemv"] > 2.5 for r in rows.values())
    assert rows[8]["array_over_gemv"] > 3
    assert rows[8]["layout_array_over_gemv"] > 8


def test_memory_latency_is_paid_at_least_once_per_memory_instruction_and_fetch():
    spec = PRESETS["tiny-llama"].spec
    cyc = [P.program_cycles(C.compile_shapes(spec, _params(spec, mem_latency=lat)), 10)[0]
           for lat in (100, 200, 300)]
    c = C.compile_shapes(spec, _params(spec))
    from fpgallm.engine.cycles import MEM_OPS, CycleModel
    from fpgallm.engine.rtl.controller import fetch_geometry
    n_mem = sum(ins.op in MEM_OPS for ins in CycleModel(c).body())
    fetches = -(-(len(CycleModel(c).body()) + 1) // fetch_geometry(c.params)[1])
    assert n_mem > 0
    assert cyc[2] - cyc[1] == cyc[1] - cyc[0]          # linear in the latency
    assert cyc[1] - cyc[0] >= 100 * (n_mem + fetches)


def test_prefill_shortcut_equals_brute_force():
    spec = PRESETS["smollm2-135m"].spec
    c = C.compile_shapes(spec, _params(spec, mem_latency=30, vector_lanes=16), Q4_1, context=48)
    cm = CycleModel(c)
    brute = sum(cm.run(l)[0] for l in range(1, 49))
    assert P.prefill_cycles(c, 48) == brute
    # one prompt in chunks of 8 on a batch-8 engine: positions 0..46 in 6 runs (lane i of the
    # run at s attends over s + i + 1 positions; the last run has 7 lanes), then position 47
    c8 = C.compile_shapes(spec, _params(spec, mem_latency=30, vector_lanes=16, batch=8), Q4_1, context=48)
    cm8 = CycleModel(c8)
    runs = [list(range(s + 1, min(s + 8, 47) + 1)) for s in range(0, 47, 8)] + [[48]]
    assert [len(r) for r in runs] == [8] * 5 + [7, 1]
    assert P.prefill_chunked_cycles(c8, 48) == sum(cm8.run(r)[0] for r in runs)


def test_llama2_7b_compiles_without_weights():
    spec = PRESETS["llama2-7b"].spec
    params = EngineParams(gemv_lanes=64, mem_ports=16, port_width=256, max_dim=4096, max_ffn=11008,
                          max_vocab=32000, max_context=1024, mem_bytes=1 << 40)
    c = C.compile_shapes(spec, params, Q4_1, context=1024)
    gp = C.gemv_params(params, *C.scheme_format(Q4_1))
    # every matrix region: the bytes of that packed shape: 4-bit weights plus a scale and a
    # minimum per 32 weights (2 x 17 bits per 128 weight bits = 26.6 %), padding

    want, floor = 0, 0
    for n in spec.matrix_names():
        rows, cols = spec.tensor_shapes()[n]
        want += C.matrix_bytes(C.MatrixShape(gp, rows, cols))
        floor += rows * cols // 2
    assert c.image.summary()["matrix"] == want
    assert floor * 1.2 < want < floor * 1.4
    assert c.image.summary()["kv"] == 32 * 2 * 32 * 1024 * (128 + 1)
    gemvs = [i for i in c.program if i.op is Op.GEMV]
    assert len(gemvs) == 32 * 7 + 1


def test_tokens_per_s_ceiling_and_bytes_arithmetic():
    spec = PRESETS["llama2-7b"].spec
    board = get_board("u280")
    e = P.estimate_perf(spec, board, Q4_1, batch=8, context=256)
    p = e.params
    assert e.tokens_per_s == pytest.approx(8 * p.clock_mhz * 1e6 / e.decode_cycles, rel=1e-12)
    assert e.ttft_s == pytest.approx(e.prefill_cycles / (p.clock_mhz * 1e6), rel=1e-12)
    assert e.ceiling_tokens_per_s == pytest.approx(460.8e9 / (e.bytes_per_run / 8), rel=1e-12)
    assert e.ceiling_fraction == pytest.approx(e.tokens_per_s / e.ceiling_tokens_per_s, rel=1e-12)
    # bytes per run: every layer matrix and the LM head once, one embedding row per sequence,
    # the KV cache of 256 positions per sequence, plus small vectors (norm weights, RoPE rows,
    # KV appends, the logits)
    gp = C.gemv_params(p, *C.scheme_format(Q4_1))
    embd = C.matrix_bytes(C.MatrixShape(gp, 32000, 4096))
    kv_read = 8 * 32 * 2 * 32 * 256 * 129
    want = e.weight_bytes - embd + 8 * -(-embd // 32000) + kv_read
    assert 0 < e.bytes_read - want < 2e6, (e.bytes_read, want)
    # batch 8 shares the weights: more tokens/s than batch 1 at the same context
    e1 = P.estimate_perf(spec, board, Q4_1, batch=1, context=256)
    assert e.tokens_per_s > e1.tokens_per_s
    assert e1.bytes_per_token > e.bytes_per_token


def test_longer_context_costs_more():
    spec = PRESETS["smollm2-135m"].spec
    board = get_board("kv260")
    a = P.estimate_perf(spec, board, Q4_1, context=128)
    b = P.estimate_perf(spec, board, Q4_1, context=2048)
    assert b.decode_cycles > a.decode_cycles and b.tokens_per_s < a.tokens_per_s
    assert b.prefill_cycles > 16 * a.prefill_cycles


def test_estimate_params_are_realisable_on_every_board():
    """Ports never promise more than the memory's peak; the GEMV word and lanes fit the unit;
    the latency is the stated nanoseconds at the clock."""
    for name, board in all_boards().items():
        try:
            p, mem, notes = P.estimate_params(board)
        except UserError as e:
            assert "no writable off-chip memory" in str(e), (name, e)
            continue
        assert p.peak_bandwidth_gbs <= mem.peak_gbps * 1.0001, name
        assert p.mem_ports * p.port_width <= P.GEMV_MAX_WORD_BITS, name
        assert p.gemv_lanes <= P.GEMV_MAX_LANES, name
        assert p.mem_latency == math.ceil(P.memory_latency_ns(mem) * p.clock_mhz / 1000), name
        C.gemv_params(p, *C.scheme_format(Q4_1))      # the GEMV accepts the word


def test_user_ports_beyond_the_memory_are_refused():
    board = get_board("kv260")
    with pytest.raises(UserError) as e:
        P.estimate_params(board, knobs=P.Knobs(ports=2, port_width=1024))
    assert str(e.value) == ("the engine's ports (2 x 1024 bits at 250 MHz = 64.0 GB/s) exceed the DDR4 "
                            "peak of kv260 (19.2 GB/s); lower --ports, --port-width or --clock-mhz")


def test_model_too_big_for_board_memory():
    with pytest.raises(UserError) as e:
        P.estimate_perf(PRESETS["llama3-8b"].spec, get_board("kv260"), Q4_1, context=1024)
    assert str(e.value).startswith("llama3-8b does not fit kv260: off-chip memory for weights 4.73 GiB")
    assert str(e.value).endswith("the engine's DDR4 (ps_ddr) has 4.00 GiB")


def test_real_model_with_weights_equals_weights_free():
    """SmolLM2-135M as shipped (Q4_1 matrices, Q8_0 embedding): the compile of the real
    weights and the weights-free compile of its spec and per-matrix schemes count the same
    cycles (decode and prefill) and lay out the same image."""
    m = load_model("smollm2-135m")
    p = EngineParams(max_dim=576, max_ffn=1536, max_vocab=49152, max_context=64, mem_latency=40,
                     vector_lanes=16, batch=2)
    real = C.compile_model(m, p, context=64)
    schemes = {n: m.tensors[n].scheme for n in m.spec.matrix_names()}
    shapes = C.compile_shapes(m.spec, p, schemes, context=64)
    _same_layout(real, shapes)
    for length in (1, 17, 64):
        assert P.program_cycles(real, length) == P.program_cycles(shapes, length)
    assert P.prefill_cycles(real, 64) == P.prefill_cycles(shapes, 64)
    assert P.scheme_names(schemes) == "Q4_1 (token_embd.weight Q8_0)"
