"""Accuracy of the golden engine against the float reference on SmolLM2-135M.

For each weight format (the file's own Q4_1 weights with its Q8_0 embeddings, and W8A8 =
every matrix re-quantized to Q8_0 from the file's values) and each prompt: the float
reference's greedy continuation of ``--tokens`` tokens is fed to the engine (teacher
forcing); we report the top-1 agreement of the engine's argmax at every position, the
greedy prefix length (first position where the argmax differs: up to there the engine's own
greedy output is identical), the per-layer hidden-state cosine (residual stream after each
block, over all positions of prompt + continuation) and the logits cosine.

    python benchmarks/engine_accuracy.py [--tokens 64] [--formats q4_1,w8a8] [--json]
"""

from __future__ import annotations

import argparse
import json

from fpgallm.engine.accuracy import PROMPTS, measure


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--formats", default="q4_1,w8a8")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    from fpgallm.model.load import load_model
    model = load_model("smollm2-135m")
    res = []
    for fmt in a.formats.split(","):
        r = measure(model, fmt, a.tokens, PROMPTS, log=(lambda *x: None) if a.json else print)
        res.append(r)
        if not a.json:
            print(f"{fmt}: top-1 {r['top1']:.3f}, min hidden-state cosine {r['layer_cos_min']:.4f}, "
                  f"{r['seconds_per_token']:.2f} s/token")
    if a.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
