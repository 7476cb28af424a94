"""Speed of the golden engine (wall-clock seconds per decode token on this machine) and the
cycle model's cycles per token / tokens per second of the engine it describes.

    python benchmarks/engine_speed.py [--model smollm2-135m] [--tokens 8] [--batch 1]
"""

from __future__ import annotations

import argparse
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--tokens", type=int, default=8)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--context", type=int, default=256)
    a = ap.parse_args()
    from fpgallm.engine.cycles import cycles_per_token
    from fpgallm.engine.golden import GoldenEngine
    from fpgallm.engine.params import EngineParams
    from fpgallm.model.load import load_model
    m = load_model(a.model)
    s = m.spec
    params = EngineParams(max_dim=max(s.d_model, 64), max_ffn=max(s.d_ffn, 64), max_vocab=s.vocab_size,
                          max_context=a.context, batch=a.batch)
    t0 = time.time()
    eng = GoldenEngine(m, params, context=a.context)
    print(f"{a.model}: compiled in {time.time() - t0:.1f} s: {len(eng.compiled.program)} instructions, "
          f"memory image {eng.compiled.image.nbytes / 2**20:.1f} MiB {eng.compiled.image.summary()}")
    ids = (m.tokenizer.encode("The quick brown fox") if m.tokenizer else [1, 2, 3])[:4]
    B = a.batch
    eng.machine.reset()
    eng.step([ids[0]] * B, [0] * B)          # warm-up (weight conversion)
    t0 = time.time()
    for k in range(a.tokens):
        eng.step([ids[k % len(ids)]] * B, [k + 1] * B)
    dt = (time.time() - t0) / a.tokens
    print(f"golden engine: {dt:.2f} s per decode step of {B} sequence(s) ({B / dt:.2f} tokens/s)")
    p = eng.compiled.params
    for L in (1, 128, a.context):
        r = cycles_per_token(eng.compiled, L)
        top = sorted(r["by_op"].items(), key=lambda kv: -kv[1])[:4]
        print(f"cycle model at {L:4d} positions: {r['cycles']} cycles per step -> "
              f"{r['tokens_per_s']:.1f} tokens/s at {p.clock_mhz:.0f} MHz, "
              f"{p.peak_bandwidth_gbs:.1f} GB/s peak; top: {top}")


if __name__ == "__main__":
    main()
