"""Attention cost of the decode engine's RTL (KVAPPEND + ATTN, fpgallm/engine/rtl/x_kv.py and
x_attn.py) against the attention length, from their cycle formulas (``x_attn.cycles``, equal
to the simulated RTL cycles: tests/engine/rtl/test_x_attn_unit.py), next to the bytes the
KV cache must stream and a decode step's weight-streaming cycles.

    python benchmarks/attn_cycles.py [--model smollm2-135m] [--lengths 1,16,64,256,1024,2048]
"""

from __future__ import annotations

import argparse


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--lengths", default="1,16,64,256,1024,2048")
    ap.add_argument("--ports", type=int, default=4)
    ap.add_argument("--port-width", type=int, default=256)
    a = ap.parse_args()
    from fpgallm.engine.params import EngineParams
    from fpgallm.engine.rtl import x_attn, x_kv
    from fpgallm.engine.kvlayout import kv_layout
    from fpgallm.model.spec import preset
    s = preset(a.model).spec
    p = EngineParams(mem_ports=a.ports, port_width=a.port_width, max_dim=s.d_model, max_ffn=s.d_ffn,
                     max_vocab=s.vocab_size, max_context=2048)
    lat = x_attn.PORT_LATENCY
    hd, H, KVH = s.head_dim, s.n_heads, s.n_kv_heads
    lay = kv_layout(p, hd)
    # Q4_1 bytes per token (5 bits a weight; a tied LM head streams the embedding again)
    weights = (s.n_params + (s.vocab_size * s.d_model if s.tied_embeddings else 0)) * 5 / 8
    wcyc = weights / p.bytes_per_cycle
    print(f"{a.model}: head_dim {hd}, heads {H}, kv_heads {KVH}, {s.n_layers} layers; "
          f"{p.mem_ports} x {p.port_width}-bit ports ({p.bytes_per_cycle} B/cycle); KV stride "
          f"{lay.stride} B, {lay.per_word} position(s) per stripe word")
    print(f"weights ~{weights / 2**20:.0f} MiB/token -> ~{wcyc:,.0f} cycles/token")
    kvc = x_kv.cycles(p, KVH * hd, hd, 1, lat["vread"], lat["wdone"])
    print(f"KVAPPEND: {kvc} cycles per layer")
    print(f"{'L':>6} {'ATTN cyc':>10} {'per head':>9} {'cyc/pos/head':>13} {'KV ideal':>9} "
          f"{'x ideal':>8} {'per token':>10} {'% of weights':>12}")
    for L in (int(x) for x in a.lengths.split(",")):
        c = x_attn.cycles(p, hd, H, KVH, [L], lat["vread"], lat["mread"])
        ideal = 2 * KVH * L * (hd * p.kv_format.bits // 8 + 2) / p.bytes_per_cycle
        tok = s.n_layers * (c + kvc)
        print(f"{L:>6} {c:>10,} {c / H:>9.1f} {(c / H) / L:>13.2f} {ideal:>9,.0f} {c / ideal:>8.1f} "
              f"{tok:>10,} {100 * tok / wcyc:>11.1f}%")


if __name__ == "__main__":
    main()
