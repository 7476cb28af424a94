"""GEMV / EMBED streaming efficiency of the engine RTL on a real model: per token, the
cycles of the GEMV and EMBED instructions (cycles.gemv_cycles / embed_cycles, equal to the
RTL's in tests/engine/rtl/test_x_gemv_unit.py) against the ideal, the matrix bytes that must
stream (GGUF block bytes: Q8_0 34 B / 32 weights, Q4_1 20 B, Q4_0 18 B; int8-row 1 B +
2 B per row) / bytes per cycle, and the bytes of the engine's own layout.

    python benchmarks/engine_gemv_efficiency.py [--model smollm2-135m] [--batch 1]
"""

from __future__ import annotations

import argparse


def gguf_bytes(pm) -> int:
    from fpgallm.units.weights import WeightFormat as F
    f = pm.params.fmt
    n = pm.rows * pm.cols
    return {F.INT8_GROUP: n * 34 // 32, F.INT4_GROUP_MIN: n * 20 // 32,
            F.INT4_GROUP: n * 18 // 32, F.INT8_ROW: n + 2 * pm.rows}[f]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--mem-ports", type=int, default=4)
    ap.add_argument("--port-width", type=int, default=256)
    ap.add_argument("--lanes", type=int, default=8)
    ap.add_argument("--vector-lanes", type=int, default=8)
    a = ap.parse_args()
    from fpgallm.engine import compiler as C
    from fpgallm.engine.cycles import CycleModel
    from fpgallm.engine.isa import Op
    from fpgallm.engine.params import EngineParams
    from fpgallm.model.load import load_model
    from fpgallm.model.model import QuantizedModel

    m = load_model(a.model)
    s = m.spec
    qm = QuantizedModel.from_model(m)
    fmts = tuple(sorted({C.scheme_format(qm.scheme_of(n))[0] for n in s.matrix_names()},
                        key=lambda f: f.value))
    p = EngineParams(gemv_lanes=a.lanes, mem_ports=a.mem_ports, port_width=a.port_width,
                     max_dim=s.d_model, max_ffn=s.d_ffn, max_vocab=s.vocab_size, max_context=256,
                     batch=a.batch, vector_lanes=a.vector_lanes, weight_formats=fmts)
    comp = C.compile_model(qm, p, context=256, calib_ids=list(range(1, 17)))
    cm = CycleModel(comp)
    cyc = ideal = own = 0
    emb = 0
    for ins in comp.program:
        if ins.op is Op.GEMV:
            r = comp.image.by_addr[ins.addr]
            cyc += cm.cost(ins, 1)
            ideal += gguf_bytes(r.data)
            own += r.nbytes
        elif ins.op is Op.EMBED:
            emb += cm.cost(ins, 1)
    bpc = p.bytes_per_cycle
    print(f"{a.model}: formats {[f.value for f in fmts]}, {a.mem_ports} x {a.port_width} bit ports "
          f"({bpc} B/cycle), {a.lanes} GEMV lanes, batch {a.batch}")
    print(f"GEMV per token: {cyc} cycles; ideal (GGUF bytes / B per cycle) {ideal / bpc:.0f}; "
          f"engine layout bytes / B per cycle {own / bpc:.0f}")
    print(f"GEMV cycles / ideal = {cyc * bpc / ideal:.4f}; layout bytes / GGUF bytes = {own / ideal:.4f}")
    print(f"EMBED per token: {emb} cycles ({emb * bpc / ideal:.4f} of the ideal)")


if __name__ == "__main__":
    main()
