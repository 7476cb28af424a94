"""Out-of-context timing of one hardware block on the ECP5 LFE5U-85F: YoWASP Yosys
(``synth_ecp5``, the script of :mod:`fpgallm.synth`) and nextpnr-ecp5, between registers.

A block alone has far more ports than the package has pins, so :class:`Harness` feeds
every input from a hold register loaded from a long shift register on one pin and
XOR-reduces every output (two registered levels) to one pin: no logic is optimized away
and every path of the block is register to register, as it is inside the engine.
:func:`place_and_route` returns nextpnr's Fmax, the utilization and the worst
register-to-register paths.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fpgallm.hdl.emit import to_verilog
from fpgallm.synth import SynthTarget
from fpgallm.toolchain import run_tool

DEVICE = ("--85k", "--package", "CABGA381")


class Harness(wiring.Component):
    """``inner`` between a serial shift-in register and an XOR-reduced output register.

    The hold register stands for the CSRs and stream registers a real design drives the
    block from; without it Yosys folds the block's own register chains into the shift
    register, whose flip-flops load the same bits."""

    def __init__(self, inner):
        self.inner = inner
        super().__init__({"sin": In(1), "load": In(1), "sout": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.block = blk = self.inner
        ins, outs = [], []
        for _path, member, value in blk.signature.flatten(blk):
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


def place_and_route(component, top: str, out: Path, params=None, freq: float = 100.0,
                    seed: int = 1) -> dict:
    """Synthesize ``Harness(component)`` and place and route it; files go to ``out``.

    Returns ``fmax_mhz`` (per clock), ``utilization`` (used, available) per cell type,
    ``critical_path`` (same-clock paths: start and end cell, logic and routing ns),
    ``synth_s`` and ``pnr_s``."""
    design = to_verilog(Harness(component), top, params if params is not None else {})
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{design.top}.v").write_text(design.text)
    t0 = time.time()
    script = (f"read_verilog -sv {design.top}.v; {SynthTarget.ECP5.script(design.top)}; "
              f"tee -q -o stat.json stat -json; write_json {design.top}.json")
    run_tool("yosys", ["-q", "-p", script], cwd=out)
    t1 = time.time()
    run_tool("nextpnr-ecp5", [*DEVICE, "--json", f"{design.top}.json", "--report", "report.json",
                              "--timing-allow-fail", "--router", "router2",
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
    return {"fmax_mhz": fmax, "utilization": util, "critical_path": crit,
            "synth_s": round(t1 - t0, 1), "pnr_s": round(t2 - t1, 1)}
