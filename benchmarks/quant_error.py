"""Error budget of weight/activation quantization on SmolLM2-135M (or another MODEL).

    python benchmarks/quant_error.py [MODEL] [--tokens N]

Variants (all through :class:`fpgallm.model.reference.Reference`):

* ``float``       - the file's weights dequantized (Q4_1 / Q8_0 -> float32), float activations;
                    the reference every other row is compared with;
* ``file+A8``     - the file's own stored Q4_1 / Q8_0 weights, activations INT8 per vector
                    (what an accelerator computes from this file unchanged);
* ``W8A8``        - every matrix re-quantized to INT8 per output channel, INT8 activations;
* ``W4A8 g32/g64 (min)`` - every matrix re-quantized to INT4 group-wise, INT8 activations
  (group 128 does not divide SmolLM2's d_model = 576);
* ``W8A16`` / ``W4A16`` - the same weights with float activations (separates the two errors).

(The re-quantized variants start from the file's Q4_1 values, so they measure the extra error
of each scheme on top of the published checkpoint.)

Figures per variant: perplexity on ``benchmarks/data/pride_and_prejudice_ch1.txt``
(teacher-forced over the whole text), top-1 agreement with float on that text, teacher-forced
top-1 agreement on float's own greedy continuations (feed float's tokens, compare the argmax
at every generated position), and the greedy prefix (tokens) that matches float's, for three
prompts of N greedy tokens each.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from fpgallm.model.load import load_model
from fpgallm.model.model import quantize_model
from fpgallm.model.quant import INT8_PER_CHANNEL, int4_group
from fpgallm.model.reference import Reference

TEXT = Path(__file__).resolve().parent / "data" / "pride_and_prejudice_ch1.txt"
PROMPTS = [
    "It is a truth universally acknowledged, that a single man in possession of a good fortune,",
    "<|im_start|>user\nExplain what a KV cache is in one paragraph.<|im_end|>\n<|im_start|>assistant\n",
    "The history of the Roman Empire",
]


def nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    lg = logits.astype(np.float64)
    m = lg.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(lg - m).sum(axis=1))
    return lse - lg[np.arange(len(targets)), targets]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default="smollm2-135m")
    ap.add_argument("--tokens", type=int, default=48, help="greedy tokens per prompt")
    ap.add_argument("--variants", default=None,
                    help="comma-separated substrings: only the variants whose name contains one (float always runs)")
    args = ap.parse_args()
    t_start = time.perf_counter()
    model = load_model(args.model)
    tk = model.tokenizer
    text_ids = np.array(tk.encode(TEXT.read_text()))
    print(f"{model.spec.name}; text {TEXT.name}: {len(TEXT.read_text())} chars, {len(text_ids)} tokens; "
          f"{args.tokens} greedy tokens x {len(PROMPTS)} prompts")
    recipes = {   # name -> (weight scheme or None for the file's own, INT8 activations?)
        "float": (None, False),
        "file+A8": (None, True),
        "W8A8 int8-ch": (INT8_PER_CHANNEL, True),
        "W4A8 int4-g32-min": (int4_group(32, True), True),
        "W4A8 int4-g64-min": (int4_group(64, True), True),
        "W4A8 int4-g64": (int4_group(64), True),
        "W8A16 int8-ch": (INT8_PER_CHANNEL, False),
        "W4A16 int4-g32-min": (int4_group(32, True), False),
    }
    if args.variants:
        keys = args.variants.split(",")
        recipes = {n: r for n, r in recipes.items() if n == "float" or any(k in n for k in keys)}
    variants = {n: Reference(model if s is None else quantize_model(model, s), act_quant=a)
                for n, (s, a) in recipes.items()}
    float_ref = variants["float"]
    float_text = float_ref.logits(text_ids[:-1])
    float_gen = [float_ref.generate(tk.encode(p), args.tokens, stop_at_eos=False).ids for p in PROMPTS]
    print(f"{'variant':20s} {'ppl':>8s} {'text top1':>10s} {'greedy TF top1':>15s} {'greedy prefix':>22s}")
    for name, ref in variants.items():
        lg = float_text if name == "float" else ref.logits(text_ids[:-1])
        ppl = float(np.exp(nll(lg, text_ids[1:]).mean()))
        text_agree = float(np.mean(lg.argmax(axis=1) == float_text.argmax(axis=1)))
        tf, prefixes = [], []
        for p, fg in zip(PROMPTS, float_gen):
            pid = tk.encode(p)
            seq = pid + fg
            pred = ref.logits(seq[:-1])[len(pid) - 1:].argmax(axis=1)
            tf.append(np.mean(pred == np.array(fg)))
            own = fg if name == "float" else ref.generate(pid, args.tokens, stop_at_eos=False).ids
            k = 0
            while k < len(fg) and own[k] == fg[k]:
                k += 1
            prefixes.append(k)
        print(f"{name:20s} {ppl:8.3f} {text_agree:10.3f} {np.mean(tf):15.3f} "
              f"{'/'.join(map(str, prefixes)):>16s} of {args.tokens}", flush=True)
    print(f"({time.perf_counter() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
