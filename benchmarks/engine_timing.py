"""Fmax of every engine block alone on the ECP5 LFE5U-85F: each execution unit, the
controller, the CSRs, the vector register file and the memory system, out of context with
registered inputs and outputs (:mod:`fpgallm.hdl.timing`), YoWASP Yosys + nextpnr-ecp5.

    python benchmarks/engine_timing.py [--board ulx3s | --point tiny-llama-min-hd32]
                                       [--blocks x_act,x_ew] [--seed N] [--json] [--out DIR]

The default engine is the one ``fpgallm generate --board ulx3s`` builds for tiny-llama.
Prints, per block, Fmax, the LUT4/FF/DSP/BRAM nextpnr placed, and the worst path's start
and end cells; the target is 100 MHz for every block.  Exit status 1 if a block misses it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fpgallm.boards import get_board  # noqa: E402
from fpgallm.engine.compiler import model_weight_formats  # noqa: E402
from fpgallm.engine.rtl import csr as csr_mod  # noqa: E402
from fpgallm.engine.rtl.controller import Controller  # noqa: E402
from fpgallm.engine.rtl.memsys import MemSystem  # noqa: E402
from fpgallm.engine.rtl.top import unit_modules  # noqa: E402
from fpgallm.engine.rtl.vregs import VectorFile  # noqa: E402
from fpgallm.estimate.calibration import engine_point_params  # noqa: E402
from fpgallm.estimate.estimator import engine_for_model  # noqa: E402
from fpgallm.estimate.perf import Knobs  # noqa: E402
from fpgallm.hdl.emit import params_dict  # noqa: E402
from fpgallm.hdl.timing import place_and_route  # noqa: E402
from fpgallm.model.load import load_model  # noqa: E402
from fpgallm.project.engine_design import DEFAULT_CONTEXT  # noqa: E402

TARGET_MHZ = 100.0
CELLS = {"LUT4": "TRELLIS_COMB", "FF": "TRELLIS_FF", "DSP": "MULT18X18D", "BRAM": "DP16KD"}


def blocks(p) -> dict:
    """Block name -> a constructor of the block for EngineParams ``p`` (names as in the
    engine top and ``fpgallm.estimate.resources.ENGINE_BLOCKS``)."""
    ops = tuple(op for mod in unit_modules() for op in mod.OPS)
    out = {"ctrl": lambda: Controller(p, ops), "csr": lambda: csr_mod.Csr(p),
           "vregs": lambda: VectorFile(p), "mem": lambda: MemSystem(p)}
    for mod in unit_modules():
        out[mod.__name__.rsplit(".", 1)[1]] = (lambda mod=mod: mod.Unit(p))
    return out


def engine_params(board: str | None, point: str | None):
    """The EngineParams of an ENGINE_POINTS geometry, or the one ``fpgallm generate`` plans
    for tiny-llama on ``board`` (batch 1, the default context)."""
    if point:
        return engine_point_params(point)
    b = get_board(board or "ulx3s")
    m = load_model("tiny-llama")
    ctx = min(DEFAULT_CONTEXT, m.spec.max_seq_len)
    params, _mem, _notes = engine_for_model(m.spec, b, model_weight_formats(m), 1, ctx, Knobs())
    return params


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--board", default=None, help="the board's default tiny-llama engine (ulx3s)")
    src.add_argument("--point", default=None, help="an ENGINE_POINTS geometry instead")
    ap.add_argument("--blocks", default=None, help="comma-separated block names (default: all)")
    ap.add_argument("--seed", type=int, default=1, help="nextpnr placement seed")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    p = engine_params(args.board, args.point)
    table = blocks(p)
    names = args.blocks.split(",") if args.blocks else list(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        ap.error(f"unknown block(s) {', '.join(unknown)}; known: {', '.join(table)}")
    out = args.out or Path(tempfile.mkdtemp(prefix="fpgallm-engine-timing-"))
    res = {}
    for name in names:
        r = place_and_route(table[name](), f"t_{name}", out / name, seed=args.seed)
        r["fmax"] = min(r["fmax_mhz"].values()) if r["fmax_mhz"] else None
        res[name] = r
        if not args.json:
            u = r["utilization"]
            cp = r["critical_path"][0] if r["critical_path"] else {}
            print(f"{name:<9} {r['fmax'] or 0:7.1f} MHz  "
                  + "  ".join(f"{k} {u.get(c, (0,))[0]:>6}" for k, c in CELLS.items())
                  + f"  worst path {cp.get('from', '?')} -> {cp.get('to', '?')} "
                    f"({cp.get('logic_ns', 0)} ns logic, {cp.get('routing_ns', 0)} ns routing)",
                  flush=True)
    if args.json:
        print(json.dumps({"params": params_dict(p), "blocks": res}, indent=2, sort_keys=True))
    return 0 if all((r["fmax"] or 0) >= TARGET_MHZ for r in res.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
