"""``fpgallm models``: the model presets with their shapes and sizes."""

from __future__ import annotations

import json

NAME = "models"
HELP = "list the model presets (shapes, parameter counts, where the weights come from)"


def configure(p):
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")


def _weights(p) -> str:
    from fpgallm.model.load import package_file
    from fpgallm.model.spec import WeightSource

    if p.source is WeightSource.SEEDED:
        return f"seeded ({p.seed})"
    if p.source is WeightSource.PACKAGE:
        f = package_file(p)
        return f"package {p.package_file[0]}" + ("" if f else " (not installed)")
    return "from a file"


def run(args) -> int:
    from fpgallm.model.spec import PRESETS

    rows = []
    for p in PRESETS.values():
        s = p.spec
        rows.append({"name": s.name, "arch": s.arch.value, "layers": s.n_layers, "d_model": s.d_model,
                     "heads": s.n_heads, "kv_heads": s.n_kv_heads, "d_ffn": s.d_ffn, "vocab": s.vocab_size,
                     "max_seq_len": s.max_seq_len, "params": s.n_params, "tied": s.tied_embeddings,
                     "rope_theta": s.rope_theta if s.arch.value == "llama" else None,
                     "weights": _weights(p), "description": p.description})
    if args.json:
        print(json.dumps({"models": rows}, indent=1))
        return 0
    print(f"{'name':15s} {'arch':5s} {'layers':>6s} {'d':>5s} {'heads':>7s} {'ffn':>6s} {'vocab':>7s} "
          f"{'params':>9s}  weights")
    for r in rows:
        n = r["params"]
        size = f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n / 1e3:.0f} k"
        print(f"{r['name']:15s} {r['arch']:5s} {r['layers']:6d} {r['d_model']:5d} "
              f"{r['heads']:>3d}/{r['kv_heads']:<3d} {r['d_ffn']:6d} {r['vocab']:7d} {size:>9s}  {r['weights']}")
    return 0
