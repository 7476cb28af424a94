"""Estimator benchmark (issue 9, point 7): LLaMA2-7B W4A8 and SmolLM2-135M at batch 1 and 8 on
the boards with HBM and the SoC boards.

Each row is ``fpgallm estimate MODEL --board BOARD --batch B --context N`` with the board's
engine plan (``--vector-lanes`` overrides the vector units' lanes for every row): decode
tokens/s, time to first token (prompt of N tokens, token by token), the board's memory-bound
ceiling and the design's fraction of it, power (device: static + dynamic + memory) and
tokens/J, and the bottleneck.  A model that does not fit prints the reason.

    python benchmarks/estimate_boards.py [--context 1024] [--vector-lanes L] [--json]
"""

from __future__ import annotations

import argparse
import json

from fpgallm.boards import all_boards
from fpgallm.errors import UserError
from fpgallm.estimate.estimator import estimate
from fpgallm.estimate.perf import Knobs, weight_scheme
from fpgallm.model.spec import PRESETS

MODELS = (("llama2-7b", "q4_0"), ("smollm2-135m", "q4_1"))   # W4 (group 32) x INT8 activations
BATCHES = (1, 8)


def boards():
    hbm, soc = [], []
    for name, b in all_boards().items():
        if any(m.type.startswith("HBM") for m in b.memory):
            hbm.append(name)
        elif "Zynq" in b.family or "Versal" in b.family:
            soc.append(name)
    return hbm, soc


def short(bottleneck: str) -> str:
    return bottleneck.split(" (")[0].split(":")[0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--context", type=int, default=1024)
    ap.add_argument("--vector-lanes", type=int, default=None)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    hbm, soc = boards()
    rows = []
    for group, names in (("HBM", hbm), ("SoC", soc)):
        for board in names:
            for model, w in MODELS:
                for B in BATCHES:
                    r = {"group": group, "board": board, "model": model, "weights": w, "batch": B}
                    try:
                        e = estimate(PRESETS[model].spec, board, weight_scheme(w), B, a.context,
                                     Knobs(vector_lanes=a.vector_lanes))
                    except UserError as exc:
                        r["error"] = str(exc)
                    else:
                        pe, pw = e.perf, e.power
                        r.update(tokens_per_s=pe.tokens_per_s, ttft_s=pe.ttft_s,
                                 ceiling=pe.ceiling_tokens_per_s, fraction=pe.ceiling_fraction,
                                 watts=pw.total_w, board_watts=pw.board_w, tokens_per_j=pw.tokens_per_j,
                                 dsp=e.utilization["dsp"], bottleneck=pe.bottleneck,
                                 engine=f"{pe.params.mem_ports}x{pe.params.port_width}b@{pe.params.clock_mhz:g}",
                                 lanes=f"{pe.params.gemv_lanes}/{pe.params.vector_lanes}")
                    rows.append(r)
    if a.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"fpgallm estimate, context {a.context}, vector lanes "
          f"{a.vector_lanes or 'planned per board'} (lanes: GEMV / vector, after fitting the board); "
          f"W = device static + dynamic + memory")
    print(f"{'':4s} {'board':<8s} {'model':<13s} {'B':>1s} {'ports':>13s} {'lanes':>5s} {'tok/s':>8s} {'TTFT s':>8s} "
          f"{'ceiling':>8s} {'frac':>6s} {'DSP':>5s} {'W':>6s} {'tok/J':>7s}  bottleneck")
    for r in rows:
        head = f"{r['group']:4s} {r['board']:<8s} {r['model']:<13s} {r['batch']:>1d}"
        if "error" in r:
            print(f"{head}  does not fit: {r['error']}")
            continue
        print(f"{head} {r['engine']:>13s} {r['lanes']:>5s} {r['tokens_per_s']:>8.3g} {r['ttft_s']:>8.3g} {r['ceiling']:>8.4g} "
              f"{r['fraction']:>6.1%} {r['dsp']:>5.0%} {r['watts']:>6.3g} {r['tokens_per_j']:>7.3g}  "
              f"{short(r['bottleneck'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
