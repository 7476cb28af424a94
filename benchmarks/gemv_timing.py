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
import time
from pathlib import Path

from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fpgallm.hdl.emit import to_verilog
from fpgallm.synth import SynthTarget
from fpgallm.toolchain import run_tool
from fpgallm.hdl.dsp import MulStyle
from fpgallm.units.gemv import GemvOutput, GemvParams
from fpgallm.units.weights import WeightFormat


class Harness(wiring.Component):
    """The engine between a serial shift-in register and an XOR-reduced output register.

    A standalone engine has far more ports than the package has pins; here every input of
    the engine comes from a hold register loaded (pin ``load``) from a long shift register
    fed by one pin, and every output is XOR-reduced (two registered levels) to one pin, so no
    logic is optimized away and every engine path is register to register.  The hold
    register stands for the CSRs and stream registers a real design drives the engine from;
    without it Yosys folds the engine's own register chains (the requantizer's lane-to-lane
    ``out_mult``/``out_shift``) into the shift register, whose flip-flops load the same bits.
    """

    def __init__(self, inner):
        self.inner = inner
        super().__init__({"sin": In(1), "load": In(1), "sout": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = eng = self.inner
        ins, outs = [], []
        for _path, member, value in eng.signature.flatten(eng):
            (ins if member.flow == In else outs).append(Value.cast(value))
        n = sum(len(v) for v in ins)
        sr = Signal(n)
        hold = Signal(n)
        m.d.sync += sr.eq(Cat(self.sin, sr[:-1]))
        with m.If(self.load):
            m.d.sync += hold.eq(sr)
        off = 0
        for v in ins:
            m.d.comb += v.eq(hold[off:off + len(v)])
            off += len(v)
        flat = Cat(*outs)
        chunks = [flat[i:i + 16] for i in range(0, len(flat), 16)]
        part = Signal(len(chunks))
        m.d.sync += part.eq(Cat(*[c.xor() for c in chunks]))
        m.d.sync += self.sout.eq(part.xor())
        return m


def probe(params: GemvParams, out: Path, freq: float = 100.0, seed: int = 1) -> dict:
    from fpgallm.units.gemv import Gemv

    design = to_verilog(Harness(Gemv(params)), "gemv_timing_top", params)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{design.top}.v").write_text(design.text)
    t0 = time.time()
    script = (f"read_verilog -sv {design.top}.v; {SynthTarget.ECP5.script(design.top)}; "
              f"tee -q -o stat.json stat -json; write_json {design.top}.json")
    run_tool("yosys", ["-q", "-p", script], cwd=out)
    t1 = time.time()
    run_tool("nextpnr-ecp5", ["--85k", "--package", "CABGA381", "--json", f"{design.top}.json",
                              "--report", "report.json", "--timing-allow-fail", "--router", "router2",
                              "--freq", str(freq), "--seed", str(seed)], cwd=out)
    t2 = time.time()
    rep = json.loads((out / "report.json").read_text())
    fmax = {clk: v["achieved"] for clk, v in rep.get("fmax", {}).items()}
    util = {k: (v["used"], v["available"]) for k, v in rep.get("utilization", {}).items()
            if v.get("used")}
    crit = []
    for cp in rep.get("critical_paths", []):
        steps = cp.get("path", [])
        if not steps or cp.get("from") != cp.get("to"):
            continue    # register-to-register paths of one clock only
        crit.append({"from": steps[0]["from"]["cell"], "to": steps[-1]["to"]["cell"],
                     "logic_ns": round(sum(x["delay"] for x in steps if x["type"] == "logic"), 2),
                     "routing_ns": round(sum(x["delay"] for x in steps if x["type"] == "routing"), 2)})
    return {"params": {"fmt": params.fmt.value, "lanes": params.lanes, "k": params.k,
                       "word_bits": params.word_bits, "output": params.output.value,
                       "max_cols": params.max_cols, "x_fanout": params.x_fanout, "mul_style": params.mul_style.value,
                       "seed": seed},
            "fmax_mhz": fmax, "utilization": util, "critical_path": crit,
            "synth_s": round(t1 - t0, 1), "pnr_s": round(t2 - t1, 1)}


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
