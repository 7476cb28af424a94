"""Decode speed of the float NumPy reference on SmolLM2-135M (or another MODEL), in tokens/s.

    python benchmarks/float_decode_speed.py [MODEL] [--tokens N] [--repeats R]

Loads the model (dequantizes once), prefills a short prompt, then times R runs of N greedy
decode steps with the KV cache (``Reference.generate``; decode steps use one BLAS thread).
Prints load time, prefill tokens/s and the decode tokens/s of every run and the best
(wall clock), plus tokens per CPU-second of this process, which shows what the code does
when other jobs share the two cores.
"""

from __future__ import annotations

import argparse
import os
import time

from fpgallm.model.load import load_model
from fpgallm.model.reference import Reference

PROMPT = "It is a truth universally acknowledged, that a single man in possession of a good fortune,"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default="smollm2-135m")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")
    t0 = time.perf_counter()
    model = load_model(args.model)
    ref = Reference(model)
    print(f"{model.spec.name}: load + dequantize {time.perf_counter() - t0:.2f} s")
    ids = model.tokenizer.encode(PROMPT)
    cache = ref.new_cache(len(ids))
    t0 = time.perf_counter()
    ref.prefill(ids, cache)
    dt = time.perf_counter() - t0
    print(f"prefill {len(ids)} tokens: {dt:.3f} s ({len(ids) / dt:.1f} tokens/s)")
    rates, cpu_rates = [], []
    for r in range(args.repeats):
        # 1 token from the prefill's logits + N decode steps, timed inside generate()
        g = ref.generate(ids, args.tokens + 1, stop_at_eos=False)
        steps = len(g.ids) - 1
        rates.append(steps / g.decode_seconds)
        cpu_rates.append(steps / max(1e-9, g.decode_cpu_seconds))
        print(f"run {r + 1}: {steps} decode steps in {g.decode_seconds:.2f} s = {rates[-1]:.1f} tokens/s "
              f"(process CPU time: {cpu_rates[-1]:.1f} tokens per CPU-second)")
    print(f"text: {model.tokenizer.decode(g.ids)!r}")
    print(f"decode tokens/s (best of {args.repeats}): {max(rates):.1f}  "
          f"[tokens per CPU-second {max(cpu_rates):.1f}; the two differ when other processes share the cores]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
