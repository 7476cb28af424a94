"""The weight prefetch buffer on the engine RTL (Verilator): the same program runs with and
without ``EngineParams.prefetch_words``, on the simulation memory at its full rate (one beat
per cycle per port) and at a reduced rate (a memory that delivers ``num/den`` beats per
cycle, as DDR does after refresh, bank and turnaround losses).

Prints per configuration the simulated cycles per program run, the cycles the buffer saves
(the cycle model's prediction beside it: the model assumes one beat per cycle), and the
cycles over the ideal at the memory's rate (the bytes that must stream / the bytes the
memory delivers per cycle; benchmarks/engine_rtl_smollm2.py's ideal).

    python benchmarks/engine_prefetch.py [--model tiny-llama] [--words 128] [--runs 2]
        [--rate 4/5] [--json]

(SmolLM2-135M on 4 x 256-bit ports: benchmarks/engine_rtl_smollm2.py --prefetch-words N.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def measure(model: str, words: int, runs: int, rate: tuple[int, int], log=print) -> dict:
    from fpgallm.engine import compiler as C
    from fpgallm.engine.cycles import CycleModel
    from fpgallm.engine.golden import GoldenEngine
    from fpgallm.engine.params import EngineParams
    from fpgallm.engine.rtl.simrun import RtlSim
    from fpgallm.engine.rtl.simtop import MemTiming
    from fpgallm.estimate.calibration import ENGINE_CONTEXT, ENGINE_POINTS
    from fpgallm.model.load import load_model

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from engine_rtl_smollm2 import ideal_cycles

    _name, kw = ENGINE_POINTS[f"{model}-b1"]

    m = load_model(model)
    s = m.spec
    out = {"model": model, "engine": dict(kw), "prefetch_words": words, "runs": runs,
           "rate": f"{rate[0]}/{rate[1]}", "points": []}
    ids = m.tokenizer.encode("The cat sat on the mat")[:runs]
    sched = [([t], [i]) for i, t in enumerate(ids)]
    for r in ((1, 1), rate):
        row = {"rate": f"{r[0]}/{r[1]}"}
        for pf in (0, words):
            p = EngineParams(max_dim=s.d_model, max_ffn=s.d_ffn, max_vocab=s.vocab_size,
                             max_context=ENGINE_CONTEXT, mem_latency=19, prefetch_words=pf,
                             weight_formats=C.model_weight_formats(m), **kw)
            g = GoldenEngine(m, p, context=ENGINE_CONTEXT)
            t0 = time.time()
            sim = RtlSim(g.compiled, timing=MemTiming(read_latency=p.mem_latency + 1,
                                                      rate_num=r[0], rate_den=r[1]))
            steps = sim.steps(sched, regions=("logits",))
            cyc = [st.cycles for st in steps]
            cm = CycleModel(g.compiled)
            model_c = [cm.run([pos[0] + 1])[0] for _t, pos in sched]
            ideal = [ideal_cycles(g.compiled, pos[0] + 1) * r[1] / r[0] for _t, pos in sched]
            row[pf] = {"cycles": cyc, "model": model_c,
                       "over_ideal": [round(c / i, 4) for c, i in zip(cyc, ideal)],
                       "wall_s": round(time.time() - t0, 1)}
            log(f"{model} rate {r[0]}/{r[1]} prefetch {pf}: cycles {cyc} (model {model_c})")
        a, b = row[0], row[words]
        row["saved"] = [x - y for x, y in zip(a["cycles"], b["cycles"])]
        row["model_saved"] = [x - y for x, y in zip(a["model"], b["model"])]
        row["speedup"] = [round(x / y, 4) for x, y in zip(a["cycles"], b["cycles"])]
        out["points"].append(row)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny-llama", choices=("tiny-llama",))
    ap.add_argument("--words", type=int, default=128)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--rate", default="4/5", help="reduced memory rate num/den (default 4/5)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    num, den = (int(x) for x in a.rate.split("/"))
    r = measure(a.model, a.words, a.runs, (num, den), log=lambda s: print(s, file=sys.stderr, flush=True))
    if a.json:
        print(json.dumps(r, indent=1, default=str))
        return 0
    print(f"{r['model']} engine {r['engine']}, prefetch buffer {r['prefetch_words']} words")
    for row in r["points"]:
        print(f"  memory rate {row['rate']}: cycles per run {row[0]['cycles']} -> "
              f"{row[r['prefetch_words']]['cycles']} with the buffer: saved {row['saved']} "
              f"({row['speedup']} x; the cycle model says {row['model_saved']}); cycles / ideal at "
              f"this rate {row[0]['over_ideal']} -> {row[r['prefetch_words']]['over_ideal']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
