"""Systolic GEMM MAC utilization measured in Verilator on large tiles, no stalls.

For each array and job ``M x K`` by ``K x N``: cycles from the first input beat to the last
output beat (measured) and ``GemmParams.cycles`` (formula), and the MAC utilization
``M * K * N / (R * C * cycles)``.

    python benchmarks/gemm_utilization.py [--quick]

Exit status 1 if a measurement differs from the formula or utilization is below 90%.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _perf import measure  # noqa: E402

from fpgallm.units.gemm import GemmParams, GemmWeights, generate  # noqa: E402

CONFIGS = [
    ("8x8 int8 x int8", GemmParams(rows=8, cols=8, max_k=2048)),
    ("4x8 int8 x int4, dsp_pack", GemmParams(rows=4, cols=8, weights=GemmWeights.INT4,
                                             max_k=2048, dsp_pack=True)),
]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    shapes = [[32, 64, 32], [64, 256, 64]] if "--quick" in argv else [[32, 64, 32], [64, 256, 64], [64, 576, 64], [128, 1536, 32]]
    ok = True
    print(f"{'array':<28} {'M x K x N':>14} {'cycles':>7} {'formula':>7} {'util':>7}")
    for label, p in CONFIGS:
        for res in measure(generate, p, "perf_gemm", shapes):
            m, k, n = res["shape"]
            cyc = res["cycles"]
            f = p.cycles(m, k, n)
            u = p.utilization(m, k, n, cyc)
            ok &= cyc == f and u >= 0.90
            print(f"{label:<28} {f'{m}x{k}x{n}':>14} {cyc:>7} {f:>7} {100 * u:6.2f}%", flush=True)
    print("all measured cycle counts equal cycles(); utilization >= 90%" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
