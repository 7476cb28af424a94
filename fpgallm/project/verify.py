"""``fpgallm test --project DIR``: re-verify a generated engine project (issue 8).

1. Read ``manifest.json``; recompile the model with the project's ``EngineParams`` and
   context and check that ``sw/mem<j>.bin`` are exactly that program and memory image (a
   stale or edited image is reported by file, never simulated).
2. Simulate the project's own ``rtl/fpgallm_engine.v`` (possibly hand-edited) in Verilator:
   :class:`~fpgallm.engine.rtl.simrun.RtlSim` with ``engine_source``, the memory images
   behind the fast AXI4 memory model.
3. Feed it the model's tokens: greedy generation from a prompt, one program run per token,
   and compare every run's int32 logits and next-token id with the golden engine's
   (:class:`~fpgallm.engine.golden.GoldenEngine`), stopping at the first difference with
   the run, the index and both values.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fpgallm.errors import UserError

DEFAULT_PROMPT = "The cat"
DEFAULT_TOKENS = 8


@dataclass
class ProjectCheck:
    project: Path
    model: str
    runs: int = 0
    cycles: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    mismatch: str | None = None

    @property
    def passed(self) -> bool:
        return self.mismatch is None and self.runs > 0


def load_manifest(project: Path) -> dict:
    path = project / "manifest.json"
    if not path.is_file():
        raise UserError(f"--project {project}: no manifest.json (not a folder written by fpgallm generate)")
    man = json.loads(path.read_text())
    eng = man.get("engine")
    if not isinstance(eng, dict) or "model" not in eng:
        why = (eng or {}).get("fallback") if isinstance(eng, dict) else None
        raise UserError(f"--project {project}: the project wraps the {man['design']['name']} bring-up "
                        f"design, not the decode engine" + (f" ({why})" if why else "")
                        + f"; its unit is verified by: fpgallm test {man['design']['name']}")
    return man


def engine_params_of(man: dict):
    from fpgallm.engine.params import ActFormat, EngineParams, KVFormat
    from fpgallm.units.weights import WeightFormat

    d = dict(man["design"]["params"])
    d["weight_formats"] = tuple(WeightFormat(f) for f in d["weight_formats"])
    d["kv_format"] = KVFormat(d["kv_format"])
    d["act_format"] = ActFormat(d["act_format"])
    if d.get("systolic") is not None:
        raise UserError("the project's engine has a systolic array, which the engine RTL does not build")
    return EngineParams(**d)


def verify_project(project: Path | str, *, prompt: str = DEFAULT_PROMPT, new_tokens: int = DEFAULT_TOKENS,
                   seed: int | None = None, log=print) -> ProjectCheck:
    """Steps 1-3 of the module docstring; the result says what ran and what differed."""
    from fpgallm.engine.golden import GoldenEngine
    from fpgallm.engine.image import image_bytes, port_images
    from fpgallm.engine.rtl.simrun import RtlError, RtlSim
    from fpgallm.model.load import load_model

    project = Path(project)
    man = load_manifest(project)
    eng = man["engine"]
    p = engine_params_of(man)
    m = load_model(eng["model"])
    g = GoldenEngine(m, p, context=eng["context"])
    parts = port_images(image_bytes(g.compiled), p)
    for j, want in enumerate(parts):
        f = project / "sw" / f"mem{j}.bin"
        if not f.is_file():
            raise UserError(f"--project {project}: sw/mem{j}.bin is missing")
        have = f.read_bytes()
        if have != want:
            diff = next((i for i in range(min(len(have), len(want))) if have[i] != want[i]),
                        min(len(have), len(want)))
            raise UserError(f"--project {project}: sw/mem{j}.bin is not the image fpgallm compiles for "
                            f"{eng['model']} on this engine (first difference at byte {diff}; "
                            f"sha256 {hashlib.sha256(have).hexdigest()[:16]}..., expected "
                            f"{hashlib.sha256(want).hexdigest()[:16]}...)")
    rtl = project / "rtl" / f"{man['design']['top']}.v"
    if not rtl.is_file():
        raise UserError(f"--project {project}: {rtl.relative_to(project)} is missing")
    check = ProjectCheck(project, eng["model"])
    runs, _outs = g.recorded_runs([m.tokenizer.encode(prompt)] * p.batch, new_tokens)
    log(f"golden engine: {len(runs)} program runs for {eng['model']} ('{prompt}' + {new_tokens} tokens); "
        f"building the project's RTL ({rtl.relative_to(project)}) in Verilator ...")
    sim = RtlSim(g.compiled, engine_source=(rtl.name, rtl.read_text()), log=log, progress=True)
    try:
        steps = sim.steps([r[0] for r in runs], regions=("logits",), seed=seed)
    except RtlError as exc:          # the engine stopped (error, timeout): nothing to compare
        check.mismatch = str(exc).splitlines()[0]
        return check
    for i, (((toks, pos), want, want_next, _cycles), got) in enumerate(zip(runs, steps)):
        nseq = len(toks)
        have = sim.logits(got, nseq)
        bad = np.argwhere(have != want[:nseq])
        if bad.size:
            idx = tuple(int(x) for x in bad[0])
            check.mismatch = (f"run {i} (tokens {toks}, positions {pos}): logits{list(idx)} RTL "
                              f"{int(have[idx])}, golden {int(want[idx])}")
            break
        if got.tokens[:nseq] != want_next[:nseq]:
            check.mismatch = f"run {i}: next token RTL {got.tokens[:nseq]}, golden {want_next[:nseq]}"
            break
        check.runs += 1
        check.cycles.append(got.cycles)
        check.tokens.append(got.tokens[0])
    return check
