"""SmolLM2-135M (the real Q4_1 GGUF weights) on the engine RTL in Verilator: full decode
steps (30 layers and the LM head), bit-exact against the golden engine.

Prints per program run the simulated cycles, the wall time, simulated cycles per second,
the cycle model's prediction and the efficiency: simulated cycles / ideal, the ideal being
the bytes that must stream per token (weights, norm and RoPE rows, the KV cache read and
appended, the logits) / bytes per cycle of the configured ports.

    python benchmarks/engine_rtl_smollm2.py [--steps 2] [--vector-lanes 16]
        [--prefetch-words 256] [--rate 4/5] [--json]

``--prefetch-words N`` gives the engine a weight prefetch buffer of N stripe words
(``EngineParams.prefetch_words``; 0: none): the model's matrices then stream as one
``PREFETCH`` stream that keeps reading while the vector units and attention work
(default 256, the configuration of the heavy test).  ``--rate num/den`` slows the simulated
memory to num/den beats per cycle per port (a DDR below its peak); the efficiency is then
also given against the ideal at that rate.

Exit status 1 when a run's logits differ from the golden engine's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def config(vector_lanes: int = 16, context: int = 64, batch: int = 1, prefetch_words: int = 0):
    """The 4-port engine for SmolLM2-135M: 4 x 256-bit ports (128 B/cycle), 8 GEMV lanes x
    32 MACs (one 4-bit weight word per cycle), the memory read latency of the simulation
    memory model."""
    from fpgallm.engine import compiler as C
    from fpgallm.engine.golden import DEFAULT_MEM_LATENCY
    from fpgallm.engine.params import EngineParams
    from fpgallm.model.load import load_model

    m = load_model("smollm2-135m")
    s = m.spec
    p = EngineParams(gemv_lanes=8, gemv_macs=32, mem_ports=4, port_width=256, max_dim=s.d_model,
                     max_ffn=s.d_ffn, max_vocab=s.vocab_size, max_context=context, batch=batch,
                     vector_lanes=vector_lanes, mem_latency=DEFAULT_MEM_LATENCY,
                     weight_formats=C.model_weight_formats(m), prefetch_words=prefetch_words)
    return m, p


def ideal_cycles(compiled, length: int) -> float:
    """Bytes that must stream in one run at attention length ``length`` / bytes per cycle."""
    from fpgallm.engine.cycles import CycleModel
    from fpgallm.estimate.perf import bytes_moved

    rd = wr = 0
    for ins in CycleModel(compiled).body():
        r, w = bytes_moved(compiled, ins, length)
        rd += r
        wr += w
    return (rd + wr) / compiled.params.bytes_per_cycle


def run(steps: int = 2, vector_lanes: int = 16, log=print, prefetch_words: int = 0,
        rate: tuple[int, int] = (1, 1)) -> dict:
    """``rate``: beats per cycle of each simulated memory port (num, den); below 1/1 the
    memory is slower than the ports and ``cycles_over_rate_ideal`` compares with the
    bytes at that rate."""
    import numpy as np

    from fpgallm.engine.cycles import CycleModel
    from fpgallm.engine.golden import GoldenEngine
    from fpgallm.engine.rtl.simrun import RtlSim

    m, p = config(vector_lanes, prefetch_words=prefetch_words)
    ids = m.tokenizer.encode("The capital of France is")[:steps]
    t0 = time.time()
    g = GoldenEngine(m, p, context=p.max_context)
    log(f"compiled in {time.time() - t0:.1f} s: image {g.compiled.image.nbytes / 2**20:.1f} MiB, "
        f"{len(g.compiled.program)} instructions")
    sched = [([t], [i]) for i, t in enumerate(ids)]
    gold = []
    for tokens, positions in sched:
        nxt = g.step(tokens, positions)
        gold.append((next(iter(g.machine.stored.values())).v[:1].copy(), int(nxt[0])))
    t1 = time.time()
    from fpgallm.engine.rtl.simtop import MemTiming

    sim = RtlSim(g.compiled, log=log, progress=True,
                 timing=MemTiming(read_latency=p.mem_latency + 1, rate_num=rate[0], rate_den=rate[1]))
    build_s = time.time() - t1
    t2 = time.time()
    res = sim.steps(sched, regions=("logits",))
    wall = time.time() - t2
    cm = CycleModel(g.compiled)
    rows, exact = [], True
    for i, ((tokens, positions), st, (want, want_next)) in enumerate(zip(sched, res, gold)):
        have = sim.logits(st, 1)
        same = bool(np.array_equal(have, want)) and st.tokens[0] == want_next
        exact &= same
        model = cm.run([positions[0] + 1])[0]
        ideal = ideal_cycles(g.compiled, positions[0] + 1)
        rows.append({"position": positions[0], "cycles": st.cycles, "model_cycles": model,
                     "model_error": model / st.cycles - 1, "ideal_cycles": round(ideal),
                     "cycles_over_ideal": st.cycles / ideal,
                     "cycles_over_rate_ideal": st.cycles * rate[0] / (ideal * rate[1]), "bit_exact": same,
                     "next_id": st.tokens[0]})
    total = sum(r["cycles"] for r in rows)
    return {"model": "smollm2-135m", "params": {"mem_ports": p.mem_ports, "port_width": p.port_width,
                                                "gemv_lanes": p.gemv_lanes, "gemv_macs": p.gemv_macs,
                                                "vector_lanes": p.vector_lanes,
                                                "mem_latency": p.mem_latency,
                                                "prefetch_words": p.prefetch_words,
                                                "memory_rate": f"{rate[0]}/{rate[1]}"},
            "build_s": round(build_s, 1), "sim_wall_s": round(wall, 1),
            "sim_cycles_per_s": round(total / wall), "runs": rows, "bit_exact": exact}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2, help="program runs (prompt tokens), default 2")
    ap.add_argument("--vector-lanes", type=int, default=16)
    ap.add_argument("--prefetch-words", type=int, default=256)
    ap.add_argument("--rate", default="1/1", help="memory beats per cycle per port, num/den (default 1/1)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    r = run(a.steps, a.vector_lanes, log=lambda msg: print(msg, file=sys.stderr, flush=True),
            prefetch_words=a.prefetch_words, rate=tuple(int(x) for x in a.rate.split("/")))
    if a.json:
        print(json.dumps(r, indent=2))
    else:
        print(f"SmolLM2-135M on the engine RTL ({r['params']}): build {r['build_s']} s, "
              f"simulation {r['sim_wall_s']} s, {r['sim_cycles_per_s']} simulated cycles/s")
        for x in r["runs"]:
            print(f"  position {x['position']}: {x['cycles']} cycles (model {x['model_cycles']}, "
                  f"{x['model_error']:+.2%}), ideal {x['ideal_cycles']}, "
                  f"cycles / ideal = {x['cycles_over_ideal']:.3f} (at the memory's rate "
                  f"{x['cycles_over_rate_ideal']:.3f}), bit-exact {x['bit_exact']}")
    return 0 if r["bit_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
