"""Prefill GEMM: chunks on the batch GEMV datapaths against the systolic array (units/gemm.py).

The question this answers: should the engine get a separate systolic GEMM array for prefill
(``EngineParams.systolic``, issue 7 point 1)?  For each batch ``B`` of the SmolLM2-135M
engine (4 x 256-bit ports, 8 GEMV lanes x 32 MACs, the real scheme's shapes) it prints

* the time to first token of ONE prompt prefilled in chunks of ``B`` positions on the
  batch-``B`` engine (the cycle model, equal to the RTL within 5 %), against the batch-1
  engine's token-by-token prefill, and the GEMV's multiply-accumulates a cycle (``B``
  copies of the INT4 datapath);
* the best output-stationary array that could replace those copies for the chunk's
  matrices: ``R = B`` rows (the prompt positions live in the ``B`` lanes of the vector
  registers) and as many columns as :class:`fpgallm.units.gemm.GemmParams` allows with a
  tile ``k`` of 32 (the engine's activations carry one exponent per 32 columns, so each
  32-column partial sum must leave the array before it is scaled: ``k = 32 >= R + pe_cols``),
  INT4 weights packed two to a multiplier; its matrix cycles per chunk against the batch
  GEMV's, and the weight bits per cycle it consumes against the ports' bits.  Those columns
  need the weights in a layout of their own (column beats of ``cols`` rows); fed from the
  engine's one matrix layout (a row tile of ``gemv_lanes`` rows at a time, the GEMV's
  stream order) the array has ``gemv_lanes`` columns: the last column ("in layout").

    python benchmarks/prefill_gemm.py [--prompt 64] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys


def largest_array(rows: int, k: int, weights) -> object:
    """The widest :class:`GemmParams` of ``rows`` rows whose tiles can be ``k`` long (the
    unit's own validation decides), INT4 pairs in one multiplier."""
    from fpgallm.units.gemm import GemmParams

    best = None
    for cols in range(2, 2 * k + 1, 2):
        try:
            best = GemmParams(rows=rows, cols=cols, weights=weights, max_k=k, dsp_pack=True)
        except ValueError:
            break
    return best


def measure(prompt: int = 64, batches=(1, 2, 4, 8)) -> list[dict]:
    from fpgallm.engine import compiler as C
    from fpgallm.engine.cycles import CycleModel
    from fpgallm.engine.isa import Op
    from fpgallm.engine.params import EngineParams
    from fpgallm.engine.rtl import iface
    from fpgallm.estimate import perf as P
    from fpgallm.model.quant import Q4_1, Q8_0
    from fpgallm.model.spec import PRESETS
    from fpgallm.units.gemm import GemmParams, GemmWeights
    from fpgallm.units.gemv import ACT_GROUP

    spec = PRESETS["smollm2-135m"].spec
    scheme = {name: (Q8_0 if "embd" in name or "output" in name else Q4_1) for name in spec.matrix_names()}
    base = EngineParams(gemv_lanes=8, gemv_macs=32, mem_ports=4, port_width=256, max_dim=spec.d_model,
                        max_ffn=spec.d_ffn, max_vocab=spec.vocab_size, max_context=prompt,
                        vector_lanes=16, mem_latency=19,
                        weight_formats=C.model_weight_formats(C.ShapeModel(spec, scheme)))
    token_by_token = None
    out = []
    for B in batches:
        p = dataclasses.replace(base, batch=B)
        c = C.compile_shapes(spec, p, scheme, context=prompt)
        ttft = P.prefill_chunked_cycles(c, prompt)
        token_by_token = token_by_token or ttft
        cm = CycleModel(c)
        gemvs = [ins for ins in cm.body() if ins.op is Op.GEMV]
        gemv_cycles = sum(cm.unit_cost(ins, [1] * B) for ins in gemvs)
        W = iface.stripe_bits(p)
        macs = B * p.gemv_lanes * (W // (p.gemv_lanes * 4))      # the INT4 datapaths' MACs a cycle
        g = largest_array(B, ACT_GROUP, GemmWeights.INT4)
        # every matrix a job of B x cols by cols x rows (rows padded to the array's columns),
        # its 32-column tiles back to back: GemmParams.cycles
        def job_cycles(gp):
            return sum(gp.cycles(B, ins.m, -(-ins.n // gp.cols) * gp.cols) for ins in gemvs)

        array_cycles = job_cycles(g)
        # fed from the engine's one weight layout: a row tile (gemv_lanes rows) at a time
        layout_cycles = job_cycles(GemmParams(rows=B, cols=p.gemv_lanes, weights=GemmWeights.INT4,
                                              max_k=ACT_GROUP, dsp_pack=True))
        out.append({"batch": B, "ttft_cycles": ttft, "ttft_speedup": token_by_token / ttft,
                    "gemv_macs": macs, "gemv_matrix_cycles": gemv_cycles,
                    "array": f"{g.rows}x{g.cols}", "array_macs": g.rows * g.cols,
                    "array_matrix_cycles": array_cycles, "array_over_gemv": array_cycles / gemv_cycles,
                    "array_weight_bits_per_cycle": g.cols * 4, "port_bits_per_cycle": W,
                    "layout_array": f"{B}x{p.gemv_lanes}", "layout_array_over_gemv": layout_cycles / gemv_cycles})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    rows = measure(a.prompt)
    if a.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"SmolLM2-135M, one prompt of {a.prompt} tokens, 4 x 256-bit ports, 8 GEMV lanes x 32 MACs")
    print(f"{'B':>2} {'TTFT cycles':>12} {'speedup':>8} {'GEMV MACs':>10} {'GEMV cyc/chunk':>15} "
          f"{'array':>6} {'arr MACs':>9} {'arr cyc/chunk':>14} {'arr/GEMV':>9} {'arr bits/cyc':>13} "
          f"{'in layout':>10}")
    for r in rows:
        print(f"{r['batch']:>2} {r['ttft_cycles']:>12,d} {r['ttft_speedup']:>7.2f}x {r['gemv_macs']:>10d} "
              f"{r['gemv_matrix_cycles']:>15,d} {r['array']:>6} {r['array_macs']:>9d} "
              f"{r['array_matrix_cycles']:>14,d} {r['array_over_gemv']:>8.2f}x "
              f"{r['array_weight_bits_per_cycle']:>6d} / {r['port_bits_per_cycle']} "
              f"{r['layout_array']:>4} {r['layout_array_over_gemv']:>5.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
