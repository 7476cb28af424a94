"""``fpgallm test --project DIR``: re-verify a generated engine project.

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

from fpgallm.errors import UserError, reading

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
    """The project's ``manifest.json``, checked like a board file: what is missing or of the
    wrong kind is named with the file."""
    path = project / "manifest.json"
    if not path.is_file():
        raise UserError(f"--project {project}: no manifest.json (not a folder written by fpgallm generate)")
    with reading(path):
        man = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(man, dict):
        raise UserError(f"{path}: not a JSON object (not a manifest written by fpgallm generate)")
    design = man.get("design")
    if not isinstance(design, dict) or not isinstance(design.get("name"), str) \
            or not isinstance(design.get("top"), str):
        raise UserError(f"{path}: design: missing, or not an object with a name and a top")
    eng = man.get("engine")
    if not isinstance(eng, dict) or "model" not in eng:
        why = eng.get("fallback") if isinstance(eng, dict) else None
        raise UserError(f"--project {project}: the project wraps the {design['name']} bring-up "
                        f"design, not the decode engine" + (f" ({why})" if why else "")
                        + f"; its unit is verified by: fpgallm test {design['name']}")
    if not isinstance(eng["model"], str) or not eng["model"]:
        raise UserError(f"{path}: engine.model: must be a model name or file, got {eng['model']!r}")
    ctx = eng.get("context")
    if not isinstance(ctx, int) or isinstance(ctx, bool) or ctx < 1:
        raise UserError(f"{path}: engine.context: must be an integer >= 1, got {ctx!r}")
    if not isinstance(design.get("params"), dict):
        raise UserError(f"{path}: design.params: missing or not an object")
    return man


def engine_params_of(man: dict):
    from fpgallm.engine.params import ActFormat, EngineParams, KVFormat
    from fpgallm.units.weights import WeightFormat

    d = dict(man["design"]["params"])
    d["weight_formats"] = tuple(WeightFormat(f) for f in d["weight_formats"])
    d["kv_format"] = KVFormat(d["kv_format"])
    d["act_format"] = ActFormat(d["act_format"])
    if d.pop("systolic", None) is not None:   # a key of manifests before the engine dropped it
        raise UserError("the project's engine has a systolic array, which the engine RTL does not build")
    return EngineParams(**d)


def _checked_golden(project: Path, prompt: str, new_tokens: int):
    """Step 1: the manifest, the golden engine for the project's parameters, the model;
    raises :class:`UserError` when ``sw/`` is not what fpgallm compiles or the prompt and
    the tokens do not fit the project's context."""
    from fpgallm.engine.golden import GoldenEngine
    from fpgallm.engine.image import image_bytes, port_images
    from fpgallm.model.load import load_model

    man = load_manifest(project)
    eng = man["engine"]
    with reading(project / "manifest.json", "design.params"):
        p = engine_params_of(man)
    m = load_model(eng["model"])
    with reading(project / "manifest.json", "engine"):
        g = GoldenEngine(m, p, context=eng["context"])
    if m.tokenizer is None:
        raise UserError(f"--project {project}: the model {eng['model']!r} has no tokenizer to encode the prompt")
    n_prompt = len(m.tokenizer.encode(prompt))
    if n_prompt + new_tokens > eng["context"]:
        raise UserError(f"--tokens {new_tokens}: the prompt ({n_prompt} tokens) and {new_tokens} new tokens "
                        f"exceed the project's context of {eng['context']} tokens; at most "
                        f"{max(0, eng['context'] - n_prompt)} new tokens")
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
    return man, g, m


def verify_project(project: Path | str, *, prompt: str = DEFAULT_PROMPT, new_tokens: int = DEFAULT_TOKENS,
                   seed: int | None = None, log=print) -> ProjectCheck:
    """Steps 1-3 of the module docstring; the result says what ran and what differed."""
    from fpgallm.engine.rtl.simrun import RtlError, RtlSim

    project = Path(project)
    man, g, m = _checked_golden(project, prompt, new_tokens)
    eng, p = man["engine"], g.compiled.params
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
    for i, (((toks, pos, _chunk), want, want_next, _cycles), got) in enumerate(zip(runs, steps)):
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


BOARD_SIM_TOP = "fpgallm_board_sim"


def verify_board_top(project: Path | str, *, prompt: str = DEFAULT_PROMPT, new_tokens: int = 2,
                     seed: int | None = None, log=print) -> ProjectCheck:
    """The whole open-source board design in Verilator: the project's ``fpgallm_board_top``
    (engine, SDRAM controller, UART host bridge, as generated or hand-edited) with a
    behavioural SDRAM holding ``sw/mem0.bin`` on its pins (``sim/models/
    fpgallm_sdram_model.v``), driven through the serial line only (``sim/tb/board_top.py``):
    per run the registers are written and read and the logits read back through the bridge,
    and compared with the golden engine's."""
    import tempfile

    from fpgallm.hdl.emit import Emitted
    from fpgallm.project.plan import UART_BAUD
    from fpgallm.sim import axi_mem
    from fpgallm.sim.runner import build, run

    project = Path(project)
    man, g, m = _checked_golden(project, prompt, new_tokens)
    eng = man["engine"]
    files = {n: project / "rtl" / n for n in ("fpgallm_board_top.v", f"{man['design']['top']}.v",
                                              "fpgallm_sdram.v", "fpgallm_host_bridge.v")}
    if not files["fpgallm_board_top.v"].is_file() or not files["fpgallm_sdram.v"].is_file():
        raise UserError(f"--project {project}: no open-source board top with the SDRAM controller "
                        "(rtl/fpgallm_board_top.v, rtl/fpgallm_sdram.v)")
    models = axi_mem.MODEL_FILE.parent
    sim_models = Path(__file__).resolve().parent.parent / "hdl" / "sim_models"
    top = Emitted(top=BOARD_SIM_TOP, text=(models / "fpgallm_board_sim.v").read_text(),
                  ports=("clk", "uart_rx", "uart_tx", "led"))
    extra = tuple((n, f.read_text()) for n, f in files.items()) + (
        ("fpgallm_sdram_model.v", (models / "fpgallm_sdram_model.v").read_text()),
        ("ODDRX1F.v", (sim_models / "ODDRX1F.v").read_text()),
        ("EHXPLLL.v", (sim_models / "EHXPLLL.v").read_text()))
    check = ProjectCheck(project, eng["model"])
    runs, _outs = g.recorded_runs([m.tokenizer.encode(prompt)], new_tokens, chunk=1)   # one lane a run
    log(f"golden engine: {len(runs)} program runs for {eng['model']} ('{prompt}' + {new_tokens} tokens); "
        "building the board design (board top, engine, SDRAM controller, UART bridge, SDRAM model) ...")
    bld = build(top, extra_sources=extra, log=log)
    clock = float(man.get("clock_mhz") or 25.0)
    with tempfile.TemporaryDirectory(prefix="fpgallm-board-") as tmp:
        tmp = Path(tmp)
        axi_mem.write_image(tmp / "sdram.hex", (project / "sw/mem0.bin").read_bytes(), 16)
        job = {"div": round(clock * 1e6 / UART_BAUD), "program": eng["program"], "logits": eng["logits"],
               "vocab": g.compiled.spec.vocab_size, "steps": [[r[0][0][0], r[0][1][0]] for r in runs],
               "init_cycles": int(250 * clock), "max_cycles": 5_000_000,
               "out": str(tmp / "out.json"), "progress": str(tmp / "progress.txt")}
        (tmp / "job.json").write_text(json.dumps(job))
        rep = run(bld, "fpgallm.sim.tb.board_top", env={"FPGALLM_BOARD_JOB": str(tmp / "job.json")},
                  seed=seed, test_dir=tmp / "run", plusargs=(f"+fpgallm_sdram={tmp / 'sdram.hex'}",))
        if not rep.passed:
            check.mismatch = "board simulation failed: " + "; ".join(
                r.message.splitlines()[0] if r.message else r.name for r in rep.failures)[:500]
            return check
        got = json.loads((tmp / "out.json").read_text())
    for i, (((toks, pos, _chunk), want, want_next, _c), have) in enumerate(zip(runs, got)):
        logits = np.frombuffer(bytes.fromhex(have["logits"]), "<i4")
        bad = np.argwhere(logits != want[0])
        if bad.size:
            k = int(bad[0][0])
            check.mismatch = (f"run {i} (token {toks[0]}, position {pos[0]}): logits[{k}] board "
                              f"{int(logits[k])}, golden {int(want[0][k])}")
            break
        if have["token"] != want_next[0]:
            check.mismatch = f"run {i}: next token board {have['token']}, golden {want_next[0]}"
            break
        check.runs += 1
        check.cycles.append(have["cycles"])
        check.tokens.append(have["token"])
    return check
