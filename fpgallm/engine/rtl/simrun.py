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
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fpgallm.engine.compiler import Compiled, row_bytes
from fpgallm.engine.image import image_bytes, join_ports, port_images
from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl.simtop import MemTiming, SimTop
from fpgallm.engine.rtl.top import Engine
from fpgallm.hdl.emit import cached, params_dict, to_verilog
from fpgallm.sim import axi_mem, runner

TB_MODULE = "fpgallm.sim.tb._engine_run"


@dataclass
class RtlStep:
    """One program run: the next ids it left in ``TOKEN``, its cycles, the memory regions read
    back after it, and the positions the host wrote."""

    tokens: list[int]
    cycles: int
    regions: dict[str, bytes] = field(default_factory=dict)
    positions: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class ResetDuringRun:
    """A step: start a run with these tokens/positions, reset after ``reset_after`` cycles."""

    tokens: list
    positions: list
    reset_after: int


class RtlError(RuntimeError):
    pass


def _unit_names(units) -> list[str] | None:
    return None if units is None else [u.__name__ for u in units]


def engine_design(compiled: Compiled, units=None):
    """The engine alone (AXI4 ports at the top): projects, lint, cocotbext-axi memories."""
    return engine_verilog(compiled.params, units)


def engine_verilog(p: EngineParams, units=None):
    """:func:`engine_design` for the parameters ``p``."""
    meta = {"engine": params_dict(p)}
    return cached({"top": "fpgallm_engine", "params": meta, "units": _unit_names(units)},
                  lambda: to_verilog(Engine(p, units), "fpgallm_engine", meta))


def design(compiled: Compiled, timing: MemTiming = MemTiming(), units=None, words_log2: int | None = None,
           external_engine: bool = False):
    p = compiled.params
    stripe = p.mem_ports * p.port_width // 8
    if words_log2 is None:
        words = -(-compiled.image.nbytes // stripe)
        words_log2 = max(4, (words - 1).bit_length())
    meta = {"engine": params_dict(p), "words_log2": words_log2, "timing": params_dict(timing),
            "external_engine": external_engine}
    top = "fpgallm_engine_sim"
    return cached({"top": top, "params": meta, "units": _unit_names(units)},
                  lambda: to_verilog(SimTop(p, words_log2, timing, units, external_engine=external_engine),
                                     top, meta)), words_log2


class RtlSim:
    def __init__(self, compiled: Compiled, *, timing: MemTiming | None = None, units=None,
                 waves: bool | None = None, log=None, progress: bool = False,
                 memory: str = "model", backpressure: bool = False,
                 engine_source: tuple[str, str] | None = None):
        """``engine_source``: ``(file name, Verilog text)`` of a ``fpgallm_engine`` module to
        simulate instead of the one built from ``compiled.params`` (a generated project's
        possibly hand-edited RTL; memory ``"model"`` only).
        ``memory``: ``"model"`` (the fast Verilog AXI4 memory model, timing from ``timing``)
        or ``"cocotbext"`` (cocotbext-axi's AXI RAM in Python, random pauses on every channel
        when ``backpressure``; slow: protocol tests on small configurations).  ``timing``
        defaults to the memory the cycle model assumes: read latency ``mem_latency + 1``
        (the memory system adds one cycle), or :class:`MemTiming`'s default when
        ``EngineParams.mem_latency`` is 0."""
        if memory not in ("model", "cocotbext"):
            raise ValueError(f"RtlSim.memory must be 'model' or 'cocotbext', got {memory!r}")
        self.memory = memory
        self.backpressure = backpressure
        self.c = compiled
        self.p = compiled.params
        if timing is None:
            timing = MemTiming(read_latency=self.p.mem_latency + 1) if self.p.mem_latency else MemTiming()
        self.timing = timing
        self.progress = progress
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        if engine_source is not None and memory != "model":
            raise ValueError("RtlSim.engine_source needs memory='model'")
        if memory == "model":
            self.design, self.words_log2 = design(compiled, timing, units,
                                                  external_engine=engine_source is not None)
            extra = (("fpgallm_axi_mem.v", axi_mem.MODEL_FILE.read_text()),)
            if engine_source is not None:
                extra += (tuple(engine_source),)
        else:
            self.design, extra = engine_design(compiled, units), ()
        self.build = runner.build(self.design, waves=waves, extra_sources=extra,
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
        bins = []
        for j, part in enumerate(port_images(self.image, self.p)):
            if self.memory == "model":
                f = axi_mem.write_image(d / f"mem{j}.hex", part, self.p.port_width)
                plus += [f"+fpgallm_mem{j}={f}", f"+fpgallm_mem{j}_dump={d / f'dump{j}'}"]
            else:
                (d / f"mem{j}.bin").write_bytes(part)
                bins.append(str(d / f"mem{j}.bin"))
        if self.memory == "cocotbext":
            job = dict(job, memory="cocotbext", backpressure=self.backpressure, port_images=bins,
                       dump_dir=str(d), port_bytes=self.p.port_width // 8)
        job = dict(job, prog_addr=self.c.symbols["program"], batch=self.p.batch, max_cycles=self.max_cycles,
                   out=str(d / "out.json"))
        job["progress"] = str(d / "progress.txt")
        (d / "job.json").write_text(json.dumps(job))
        stop = threading.Event()
        watcher = None
        if self.progress:
            watcher = threading.Thread(target=self._follow, args=(Path(job["progress"]), stop), daemon=True)
            watcher.start()
        try:
            rep = runner.run(self.build, TB_MODULE, env={"FPGALLM_ENGINE_JOB": str(d / "job.json")},
                             test_dir=d, plusargs=tuple(plus), seed=seed)
        finally:
            stop.set()
            if watcher:
                watcher.join()
        if not rep.passed:
            keep = int(os.environ.get("FPGALLM_RTL_MSG", "3000"))
            raise RtlError(f"RTL simulation failed: {rep.tests[0].message[-keep:]}")
        out = json.loads((d / "out.json").read_text())
        out["dir"] = str(d)
        return out

    def _follow(self, path: Path, stop: threading.Event) -> None:
        """Print the testbench's progress lines (one per program run) as they appear."""
        seen = 0
        while True:
            done = stop.wait(0.5)
            if path.exists():
                lines = path.read_text().splitlines()
                for line in lines[seen:]:
                    self.log(line)
                seen = len(lines)
            if done:
                return

    def _read_dump(self, d: Path, index: int, nbytes: int) -> bytes:
        B = self.p.port_width // 8
        parts = []
        for j in range(self.p.mem_ports):
            if self.memory == "cocotbext":
                parts.append((d / f"ram{j}.{index}.bin").read_bytes())
                continue
            words = []
            for line in (d / f"dump{j}.{index}.hex").read_text().split():
                if line.startswith("@") or line.startswith("//"):
                    continue
                words.append(bytes.fromhex(line.rjust(2 * B, "0"))[::-1])
            parts.append(b"".join(words))
        return join_ports(parts, self.p)[:nbytes]

    def steps(self, steps: list, regions: tuple[str, ...] = ("logits",),
              seed: int | None = None) -> list[RtlStep]:
        """One program run per ``(tokens, positions[, chunk])`` (``chunk``: the lanes are
        prompt positions of one sequence); ``regions`` are read back after each.
        A :class:`ResetDuringRun` step starts a run and resets the engine in the middle of
        it (no result)."""
        dumps = [self._region_words(r) for r in regions]
        js = [vars(s) if isinstance(s, ResetDuringRun)
              else [list(map(int, s[0])), list(map(int, s[1])), bool(s[2]) if len(s) > 2 else False]
              for s in steps]
        out = self._run({"mode": "steps", "steps": js,
                         "dumps": [[lo, hi] for lo, hi, _n in dumps]}, seed)
        return self._steps_of(out, regions, dumps)

    def _steps_of(self, out: dict, regions: tuple[str, ...], dumps) -> list[RtlStep]:
        res, k = [], 0
        d = Path(out["dir"])
        for s in out["steps"]:
            got = {}
            for name, (_lo, _hi, n) in zip(regions, dumps):
                got[name] = self._read_dump(d, k, n)
                k += 1
            res.append(RtlStep(s["tokens"], s["cycles"], got, s["positions"]))
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
        outs, steps = self.generate_steps(prompts, max_new_tokens, stop_at_eos, seed)
        return outs, [s.cycles for s in steps]

    def generate_steps(self, prompts: list[list[int]], max_new_tokens: int, stop_at_eos: bool = True,
                       seed: int | None = None, regions: tuple[str, ...] = ()
                       ) -> tuple[list[list[int]], list[RtlStep]]:
        """Greedy generation inside the simulation (the host in the testbench follows
        :func:`fpgallm.engine.generation.greedy_schedule`, prefill chunks of ``batch``):
        the generated ids per prompt and every program run as an :class:`RtlStep`, with
        ``regions`` read back after each run."""
        dumps = [self._region_words(r) for r in regions]
        out = self._run({"mode": "generate", "prompts": prompts, "max_new_tokens": max_new_tokens,
                         "context": self.c.context, "eos": self.c.spec.eos_token_id,
                         "chunk": self.p.batch, "stop_at_eos": stop_at_eos,
                         "dumps": [[lo, hi] for lo, hi, _n in dumps]}, seed)
        return out["outs"], self._steps_of(out, regions, dumps)
