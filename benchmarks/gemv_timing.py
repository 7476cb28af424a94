"""Timing probe: place and route an 8-lane INT8 GEMV engine on an ECP5 LFE5U-85F.

Synthesizes with YoWASP Yosys (the same ``synth_ecp5`` script as :mod:`fpgallm.synth`),
places and routes with ``nextpnr-ecp5 --85k --package CABGA381 --freq 100
--timing-allow-fail`` and prints Fmax and the device utilization from nextpnr's JSON report.

    python benchmarks/gemv_timing.py [--lanes 8] [--word-bits 256] [--seed N] [--mul-style ecp5|infer] [--out DIR] [--json]

Exit status 1 when Fmax < 100 MHz.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from fpgallm.hdl.dsp import MulStyle
from fpgallm.hdl.timing import place_and_route
from fpgallm.units.gemv import Gemv, GemvOutput, GemvParams
from fpgallm.units.weights import WeightFormat


def probe(params: GemvParams, out: Path, freq: float = 100.0, seed: int = 1) -> dict:
    res = place_and_route(Gemv(params), "gemv_timing_top", out, params, freq=freq, seed=seed)
    return {"params": {"fmt": params.fmt.value, "lanes": params.lanes, "k": params.k,
                       "word_bits": params.word_bits, "output": params.output.value,
                       "max_cols": params.max_cols, "x_fanout": params.x_fanout, "mul_style": params.mul_style.value,
                       "seed": seed}, **res}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lanes", type=int, default=8)
    ap.add_argument("--word-bits", type=int, default=256)
    ap.add_argument("--max-cols", type=int, default=4096)
    ap.add_argument("--output", choices=[o.value for o in GemvOutput], default="int8")
    ap.add_argument("--guard", type=int, default=6)
    ap.add_argument("--x-fanout", type=int, default=GemvParams.x_fanout,
                    help="lanes per copy of the activation RAM (GemvParams.x_fanout)")
    ap.add_argument("--seed", type=int, default=1, help="nextpnr placement seed")
    ap.add_argument("--mul-style", choices=[s.value for s in MulStyle], default=MulStyle.ECP5.value,
                    help="multipliers: MULT18X18D instances with their registers (ecp5, default) "
                         "or inferred by Yosys (infer)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    p = GemvParams(fmt=WeightFormat.INT8_ROW, lanes=args.lanes, word_bits=args.word_bits,
                   max_cols=args.max_cols, max_rows=args.max_cols,
                   output=GemvOutput(args.output), guard=args.guard, x_fanout=args.x_fanout,
                   mul_style=MulStyle(args.mul_style))
    out = args.out or Path(tempfile.mkdtemp(prefix="fpgallm-gemv-timing-"))
    res = probe(p, out, seed=args.seed)
    if args.json:
        print(json.dumps(res, indent=2, sort_keys=True))
    else:
        print(f"GEMV {p.fmt.value}: {p.lanes} lanes x {p.k} MACs ({p.word_bits}-bit weight words), "
              f"output {p.output.value}, {p.x_copies} activation RAM copies, LFE5U-85F (CABGA381)")
        for clk, f in res["fmax_mhz"].items():
            print(f"  Fmax {clk}: {f:.1f} MHz (target 100 MHz: {'met' if f >= 100 else 'MISSED'})")
        for k, (u, a) in sorted(res["utilization"].items()):
            print(f"  {k:<14} {u:>6} / {a:<6} ({100 * u / a:5.1f}%)")
        print(f"  synth {res['synth_s']} s, place and route {res['pnr_s']} s; files in {out}")
    return 0 if all(f >= 100 for f in res["fmax_mhz"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
