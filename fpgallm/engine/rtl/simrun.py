"""Run a compiled program on the engine RTL in Verilator.

:class:`RtlSim` builds (once, cached by the RTL's hash) the :class:`~.simtop.SimTop` of a
:class:`~fpgallm.engine.compiler.Compiled` program's parameters, writes the memory image of
each port, and runs *jobs* in one simulation each (the KV cache lives as long as the
simulation):

- :meth:`RtlSim.steps`: program runs with given ``(tokens, positions)``, returning per run
  the next-token ids (``S1``), the cycles counted by the engine and the bytes of the
  regions asked for (e.g. the logits) read back from the memory models;
- :meth:`RtlSim.generate`: greedy generation (:func:`fpgallm.engine.generation.greedy_schedule`)
  entirely inside the simulation.

The testbench (``fpgallm.sim.tb._engine_run``) only writes the AXI4-Lite registers, starts
the engine and waits for ``done``: the clocks run in Verilator.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fpgallm.engine.compiler import Compiled, row_bytes
from fpgallm.engine.image import image_bytes, join_ports, port_images
from fpgallm.engine.rtl.simtop import MemTiming, SimTop
from fpgallm.hdl.emit import params_dict, to_verilog
from fpgallm.sim import axi_mem, runner

TB_MODULE = "fpgallm.sim.tb._engine_run"


@dataclass
class RtlStep:
    tokens: list[int]
    cycles: int
    regions: dict[str, bytes] = field(default_factory=dict)


class RtlError(RuntimeError):
    pass


def design(compiled: Compiled, timing: MemTiming = MemTiming(), units=None, words_log2: int | None = None):
    p = compiled.params
    stripe = p.mem_ports * p.port_width // 8
    if words_log2 is None:
        words = -(-compiled.image.nbytes // stripe)
        words_log2 = max(4, (words - 1).bit_length())
    top = SimTop(p, words_log2, timing, units)
    return to_verilog(top, "fpgallm_engine_sim", {"engine": params_dict(p), "words_log2": words_log2,
                                                  "timing": params_dict(timing)}), words_log2


class RtlSim:
    def __init__(self, compiled: Compiled, *, timing: MemTiming = MemTiming(), units=None,
                 waves: bool | None = None, log=None):
        self.c = compiled
        self.p = compiled.params
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.design, self.words_log2 = design(compiled, timing, units)
        self.build = runner.build(self.design, waves=waves,
                                  extra_sources=(("fpgallm_axi_mem.v", axi_mem.MODEL_FILE.read_text()),),
                                  public_all=bool(os.environ.get("FPGALLM_RTL_DEBUG")), log=self.log)
        self.image = image_bytes(compiled)
        self.stripe = self.p.mem_ports * self.p.port_width // 8

    # ------------------------------------------------------------------------------------
    def _region_words(self, name: str) -> tuple[int, int, int]:
        addr = self.c.symbols[name]
        r = self.c.image.by_addr[addr]
        lo = addr // self.stripe
        hi = -(-(addr + r.nbytes) // self.stripe) - 1
        return lo, hi, r.nbytes

    max_cycles = 50_000_000

    def _run(self, job: dict, seed: int | None = None) -> dict:
        d = Path(tempfile.mkdtemp(prefix="fpgallm-rtl-"))
        plus = []
        for j, part in enumerate(port_images(self.image, self.p)):
            f = axi_mem.write_image(d / f"mem{j}.hex", part, self.p.port_width)
            plus += [f"+fpgallm_mem{j}={f}", f"+fpgallm_mem{j}_dump={d / f'dump{j}'}"]
        job = dict(job, prog_addr=self.c.symbols["program"], batch=self.p.batch, max_cycles=self.max_cycles,
                   out=str(d / "out.json"))
        (d / "job.json").write_text(json.dumps(job))
        rep = runner.run(self.build, TB_MODULE, env={"FPGALLM_ENGINE_JOB": str(d / "job.json")},
                         test_dir=d, plusargs=tuple(plus), seed=seed)
        if not rep.passed:
            keep = int(os.environ.get("FPGALLM_RTL_MSG", "3000"))
            raise RtlError(f"RTL simulation failed: {rep.tests[0].message[-keep:]}")
        out = json.loads((d / "out.json").read_text())
        out["dir"] = str(d)
        return out

    def _read_dump(self, d: Path, index: int, nbytes: int) -> bytes:
        B = self.p.port_width // 8
        parts = []
        for j in range(self.p.mem_ports):
            words = []
            for line in (d / f"dump{j}.{index}.hex").read_text().split():
                if line.startswith("@") or line.startswith("//"):
                    continue
                words.append(bytes.fromhex(line.rjust(2 * B, "0"))[::-1])
            parts.append(b"".join(words))
        return join_ports(parts, self.p)[:nbytes]

    def steps(self, steps: list[tuple[list[int], list[int]]], regions: tuple[str, ...] = ("logits",),
              seed: int | None = None) -> list[RtlStep]:
        """One program run per ``(tokens, positions)``; ``regions`` are read back after each."""
        dumps = [self._region_words(r) for r in regions]
        out = self._run({"mode": "steps", "steps": [[list(map(int, t)), list(map(int, p))] for t, p in steps],
                         "dumps": [[lo, hi] for lo, hi, _n in dumps]}, seed)
        res, k = [], 0
        d = Path(out["dir"])
        for s in out["steps"]:
            got = {}
            for name, (_lo, _hi, n) in zip(regions, dumps):
                got[name] = self._read_dump(d, k, n)
                k += 1
            res.append(RtlStep(s["tokens"], s["cycles"], got))
        return res

    def logits(self, step: RtlStep, nseq: int) -> np.ndarray:
        """The int32 logits ``(nseq, vocab)`` of a step that read back the ``logits`` region."""
        V = self.c.spec.vocab_size
        rb = row_bytes(V, self.stripe)
        raw = step.regions["logits"]
        return np.stack([np.frombuffer(raw[b * rb:b * rb + 4 * V], dtype="<i4") for b in range(nseq)])

    def generate(self, prompts: list[list[int]], max_new_tokens: int, stop_at_eos: bool = True,
                 seed: int | None = None) -> tuple[list[list[int]], list[int]]:
        """Greedy generation inside the simulation: (generated ids per prompt, cycles per run)."""
        out = self._run({"mode": "generate", "prompts": prompts, "max_new_tokens": max_new_tokens,
                         "context": self.c.context, "eos": self.c.spec.eos_token_id,
                         "stop_at_eos": stop_at_eos, "dumps": []}, seed)
        return out["outs"], [s["cycles"] for s in out["steps"]]
