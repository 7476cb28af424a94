"""GEMV MAC utilization measured in Verilator: 256 x 256 and larger, no stalls.

For each engine configuration and matrix size: the cycles from the first weight word
accepted to the last output accepted (measured) and ``GemvParams.cycles`` (formula), the
MAC utilization ``rows * cols / (P * K * cycles)`` and the same including the activation
load (``cols / K`` cycles before the first weight word).

    python benchmarks/gemv_utilization.py [--quick]

Exit status 1 if a measurement differs from the formula or utilization is below 95%.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _perf import measure  # noqa: E402

from fpgallm.units.gemv import GemvOutput, GemvParams, generate  # noqa: E402
from fpgallm.units.weights import WeightFormat as F  # noqa: E402

CONFIGS = [
    ("int8-row P8 x K8, 512-bit words", GemvParams(fmt=F.INT8_ROW, lanes=8, word_bits=512,
                                                   max_cols=2048, max_rows=2048)),
    ("Q4_0 g32 P8 x K8, 256-bit words, int8 out",
     GemvParams(fmt=F.INT4_GROUP, group=32, lanes=8, word_bits=256, max_cols=2048,
                max_rows=2048, output=GemvOutput.INT8)),
    ("Q4_1 g64 P4 x K32, 512-bit words, dsp_pack",
     GemvParams(fmt=F.INT4_GROUP_MIN, group=64, lanes=4, word_bits=512, max_cols=2048,
                max_rows=2048, dsp_pack=True)),
]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    shapes = [[256, 256], [512, 512]] if "--quick" in argv else [[256, 256], [512, 512], [1024, 1024], [2048, 1024]]
    ok = True
    print(f"{'engine':<46} {'rows x cols':>11} {'cycles':>7} {'formula':>7} {'util':>7} {'w/ load':>7}")
    for label, p in CONFIGS:
        for res in measure(generate, p, "perf_gemv", shapes):
            r, c = res["shape"]
            cyc = res["cycles"]
            f = p.cycles(r, c)
            u = p.utilization(r, c, cyc)
            ul = p.utilization(r, c, cyc + p.load_cycles(c))
            ok &= cyc == f and u >= 0.95
            print(f"{label:<46} {f'{r}x{c}':>11} {cyc:>7} {f:>7} {100 * u:6.2f}% {100 * ul:6.2f}%",
                  flush=True)
    print("all measured cycle counts equal cycles(); utilization >= 95%" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
