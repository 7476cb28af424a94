"""Accuracy of the golden engine against the float reference (used by
``benchmarks/engine_accuracy.py`` and the slow SmolLM2 test).

:func:`measure`: the float reference's greedy continuation is fed to the engine (teacher
forcing); top-1 agreement of the engine's argmax at every generated position, greedy prefix
length (first disagreement: up to there the engine's own greedy output is identical),
per-layer hidden-state cosine (residual stream after each block, every position) and the
logits cosine.
"""

from __future__ import annotations

import time

import numpy as np

PROMPTS = ["The capital of France is",
           "Once upon a time, there was a little robot who",
           "def fibonacci(n):"]


def cos(a, b):
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-30)


def measure(model, fmt, tokens, prompts, log=print):
    from fpgallm.engine.golden import GoldenEngine
    from fpgallm.model.model import QuantizedModel, quantize_model
    from fpgallm.model.quant import Q8_0
    from fpgallm.model.reference import Reference
    ref = Reference(model)
    qm = QuantizedModel.from_model(model) if fmt == "q4_1" else quantize_model(model, Q8_0)
    eng = GoldenEngine(qm, context=256)
    out = {"format": fmt, "prompts": []}
    secs, n_run = 0.0, 0
    for text in prompts:
        ids = model.tokenizer.encode(text)
        gen = ref.generate(ids, tokens, stop_at_eos=False).ids
        seq = ids + gen
        tr = {}
        rl = ref.forward(seq[:-1], ref.new_cache(len(seq) - 1), trace=tr)
        t0 = time.time()
        gl, traces = eng.teacher_forced(seq[:-1], trace_marks=True)
        secs += time.time() - t0
        n_run += len(seq) - 1
        P = len(ids) - 1
        pred = gl[P:].argmax(1)
        agree = pred == np.array(gen)
        prefix = int(np.argmin(agree)) if not agree.all() else len(gen)
        layer_cos = []
        for i in range(model.spec.n_layers):
            k = f"blk.{i}.out"
            h = np.stack([t[k].v[0].astype(np.float64) * 2.0 ** -t[k].frac for t in traces])
            layer_cos.append(float(cos(h, tr[k].astype(np.float64)).min()))
        r = {"prompt": text, "top1": float(agree.mean()), "greedy_prefix": prefix,
             "logits_cos_min": float(cos(gl, rl).min()), "logits_cos_mean": float(cos(gl, rl).mean()),
             "layer_cos_min": min(layer_cos), "layer_cos": layer_cos}
        log(f"  {fmt:5s} {text[:40]!r:44s} top1 {r['top1']:.3f} prefix {prefix:3d} "
            f"logits cos min {r['logits_cos_min']:.4f} hidden cos min {r['layer_cos_min']:.4f}")
        out["prompts"].append(r)
    out["top1"] = float(np.mean([r["top1"] for r in out["prompts"]]))
    out["layer_cos_min"] = min(r["layer_cos_min"] for r in out["prompts"])
    out["seconds_per_token"] = secs / n_run
    out["cycles"] = eng.machine.cycles
    return out


