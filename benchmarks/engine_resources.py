"""Whole-engine resources: YoWASP Yosys synthesis of the engine RTL next to the estimator.

Synthesizes :class:`fpgallm.engine.rtl.top.Engine` (hierarchy kept: ``-noflatten``, so every
block is counted on its own) for ``ecp5`` or ``xcup`` and prints, per block of the engine
(controller, CSRs, vector registers, memory system, each ``x_*`` execution unit, the top's
own routing logic), the synthesized LUT/FF/DSP/BRAM next to ``fpgallm.estimate.resources.
engine_resources`` for the same ``EngineParams``, and the totals with their ratio.

    python benchmarks/engine_resources.py [--target ecp5|xcup] [--point tiny-llama-b1] [--json]

The default point is the engine the RTL model tests run tiny-llama on (2 x 128-bit ports,
4 GEMV lanes x 16 MACs, 4 vector lanes, context 32).  One synthesis takes 10-20 minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

POINTS = {
    # (model preset, engine knobs): the geometries of tests/engine/rtl/test_models.py
    "tiny-llama-b1": ("tiny-llama", dict(mem_ports=2, port_width=128, gemv_lanes=4, gemv_macs=16,
                                         vector_lanes=4, batch=1)),
    "tiny-llama-b2": ("tiny-llama", dict(mem_ports=4, port_width=256, gemv_lanes=8, gemv_macs=32,
                                         vector_lanes=8, batch=2)),
    "tiny-gpt2-b2": ("tiny-gpt2", dict(mem_ports=4, port_width=64, gemv_lanes=8, gemv_macs=8,
                                       vector_lanes=8, batch=2)),
}
CONTEXT = 32


def params(point: str):
    from fpgallm.engine import compiler as C
    from fpgallm.engine.params import EngineParams
    from fpgallm.model.load import load_model

    name, kw = POINTS[point]
    m = load_model(name)
    s = m.spec
    return EngineParams(max_dim=s.d_model, max_ffn=s.d_ffn, max_vocab=s.vocab_size,
                        max_context=CONTEXT, mem_latency=19,
                        weight_formats=C.model_weight_formats(m), **kw)


def hierarchy_cells(stat: dict, top: str) -> dict[str, dict[str, int]]:
    """Per direct child instance of ``top`` (and ``"(top)"`` for its own cells): primitive
    cell counts summed over the child's whole subtree."""
    mods = {k.lstrip("\\"): v for k, v in stat["modules"].items()}

    def own(name):
        return {k.lstrip("\\$"): int(v) for k, v in mods[name].get("num_cells_by_type", {}).items()}

    memo: dict[str, dict[str, int]] = {}

    def total(name):
        if name not in memo:
            acc: dict[str, int] = {}
            for cell, n in own(name).items():
                sub = total(cell) if cell in mods else {cell: 1}
                for k, v in sub.items():
                    acc[k] = acc.get(k, 0) + v * n
            memo[name] = acc
        return memo[name]

    return {"(all)": total(top), **_children(top, mods, total)}


def _children(top, mods, total):
    """Child modules of ``top`` by their module name's last component (Amaranth names them
    ``top.child``); cells of ``top`` that are not modules under ``(top)``."""
    out: dict[str, dict[str, int]] = {}
    own_prims: dict[str, int] = {}
    for cell, n in mods[top].get("num_cells_by_type", {}).items():
        cell = cell.lstrip("\\$")
        if cell in mods:
            key = cell[len(top) + 1:] if cell.startswith(top + ".") else cell
            for k, v in total(cell).items():
                out.setdefault(key, {})[k] = out.setdefault(key, {}).get(k, 0) + v * int(n)
        else:
            own_prims[cell] = own_prims.get(cell, 0) + int(n)
    out["(top)"] = own_prims
    return out


def synth_hierarchy(design, target) -> dict[str, dict[str, int]]:
    from fpgallm.toolchain import run_tool

    from fpgallm.synth import SynthTarget

    script = target.script(design.top)
    if target is SynthTarget.ECP5:   # synth_ecp5 flattens unless told not to; synth_xilinx does not
        script = script.replace(f"-top {design.top}", f"-top {design.top} -noflatten")
    with tempfile.TemporaryDirectory(prefix="fpgallm-engsynth-") as tmp:
        src = Path(tmp) / f"{design.top}.v"
        src.write_text(design.text)
        run_tool("yosys", ["-q", "-p", f"read_verilog -sv {src.name}; {script}; "
                                       "tee -q -o stat.json stat -json"], cwd=tmp)
        stat = json.loads((Path(tmp) / "stat.json").read_text())
    return hierarchy_cells(stat, design.top)


# engine block -> the estimator's parts it corresponds to
BLOCKS = {
    "x_gemv": ("gemv:",), "x_norm": ("norm",), "x_act": ("activation",), "x_rope": ("rope",),
    "x_attn": ("softmax",), "x_argmax": ("argmax",), "x_ew": ("residual-add", "multiply"),
    "x_quant": ("quantize",), "vregs": ("vector-registers", "exponent-registers"),
    "mem": ("memory-ports",), "ctrl": ("controller",),
}


def run(point: str = "tiny-llama-b1", target_name: str = "ecp5", log=print) -> dict:
    from fpgallm.engine.rtl.top import Engine
    from fpgallm.estimate import resources as R
    from fpgallm.hdl.emit import params_dict, to_verilog
    from fpgallm.synth import _GROUPS, SynthTarget

    p = params(point)
    target = SynthTarget(target_name)
    t = time.time()
    design = to_verilog(Engine(p), "fpgallm_engine", {"engine": params_dict(p)})
    log(f"{point}: emitted {len(design.text) // 1000} kB of Verilog in {time.time() - t:.0f} s; "
        f"synthesizing for {target_name} ...")
    t = time.time()
    hier = synth_hierarchy(design, target)
    synth_s = time.time() - t
    fam = {"ecp5": R.Family.ECP5, "xcup": R.Family.XILINX_US}[target_name]
    est = R._engine(p, fam, has_uram=target is SynthTarget.XILINX_US_PLUS)

    def grouped(cells):
        return {g: sum(cells.get(c, 0) for c in names) for g, names in _GROUPS[target].items()}

    rows = []
    for block, cells in sorted(hier.items()):
        keys = BLOCKS.get(block, ())
        parts = [v for k, v in est.parts.items() if any(k.startswith(x) for x in keys)]
        if block == "(all)":
            parts = [est.total]
        model = sum(parts, R.Resources()) if parts else None
        rows.append({"block": block, "synth": grouped(cells),
                     "model": model.as_dict() if model is not None else None})
    total = next(r for r in rows if r["block"] == "(all)")
    ratio = {k: total["synth"][k.upper()] / max(1, total["model"][k])
             for k in ("lut", "ff", "dsp", "bram")}
    log(f"{'block':<12}{'LUT synth/model':>20}{'FF synth/model':>18}{'DSP':>12}{'BRAM':>10}")
    for r in rows:
        s, mdl = r["synth"], r["model"] or {}
        log(f"{r['block']:<12}{s['LUT']:>11}/{mdl.get('lut', '-'):<8}{s['FF']:>9}/{mdl.get('ff', '-'):<8}"
            f"{s['DSP']:>5}/{mdl.get('dsp', '-'):<6}{s['BRAM']:>4}/{mdl.get('bram', '-'):<5}")
    log("synthesis / model, whole engine: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratio.items())
        + f" (synthesis {synth_s:.0f} s)")
    return {"point": point, "target": target_name, "synth_s": round(synth_s, 1), "blocks": rows,
            "ratio": ratio}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--point", choices=sorted(POINTS), default="tiny-llama-b1")
    ap.add_argument("--target", choices=["ecp5", "xcup"], default="ecp5")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    r = run(a.point, a.target, log=(lambda *x: print(*x, file=sys.stderr)) if a.json else print)
    if a.json:
        print(json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
