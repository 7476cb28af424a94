"""The decode engine as a project's design: the engine RTL sized for a model and
fitted to a board, its compiled program and memory image, and the ports the board top
exposes.

:func:`engine_project_design` returns an :class:`~fpgallm.project.design.EngineDesign`
whose ``artifacts`` are the files the project carries besides the RTL:

- ``sw/mem<j>.bin``: the memory image of port ``j`` (the engine stripes its address space
  across its ports word by word: byte ``a`` of the image is in port ``(a // W) % P`` at
  ``(a // (W * P)) * W + a % W``, ``W`` the port width in bytes, ``P`` the ports); each file
  goes at address 0 of the memory behind its AXI4 master;
- ``sw/memory_map.json``: the engine parameters, the regions of the image (program, weights,
  KV cache, logits, ...) with their byte addresses, the control registers and how to run a
  step.

The engine is chosen by :func:`fpgallm.estimate.estimator.engine_for_model` (the same
engine ``fpgallm estimate`` reports), so a project and an estimate agree.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from fpgallm import progress
from fpgallm.boards import Board
from fpgallm.errors import UserError
from fpgallm.hdl.emit import params_dict
from fpgallm.project.design import EngineDesign, ports_of

ENGINE_TOP = "fpgallm_engine"
DEFAULT_CONTEXT = 256


@dataclass(frozen=True)
class EngineKnobs:
    """``fpgallm generate``'s engine knobs (None: planned for the board)."""

    ports: int | None = None
    port_width: int | None = None
    gemv_lanes: int | None = None
    vector_lanes: int | None = None
    batch: int = 1
    context: int | None = None
    prefetch_words: int | None = None


def csr_register_table() -> list[tuple[str, str, str]]:
    """``(offset, access, meaning)`` rows of the engine's control registers (from
    :mod:`fpgallm.engine.rtl.csr`'s documented map)."""
    from fpgallm.engine.rtl import csr

    rows, in_table, bars = [], False, 0
    for line in (csr.__doc__ or "").splitlines():
        if line.startswith("======"):
            bars += 1
            in_table = bars == 2
            continue
        if in_table and line.strip():
            if line.startswith(" "):             # continuation of the previous meaning
                off, acc, text = rows[-1]
                rows[-1] = (off, acc, text + " " + line.strip())
            else:
                off, acc, text = line.split(None, 2)
                rows.append((off, acc, text))
    return [(o, a, t.replace("``", "`")) for o, a, t in rows]


def _load_model(model_text: str):
    from fpgallm.model.load import load_model

    try:
        return load_model(model_text)
    except UserError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"model {model_text!r}: cannot load its weights for the engine image: {exc}") from None


def engine_project_design(board: Board, model_text: str, knobs: EngineKnobs = EngineKnobs()) -> EngineDesign:
    """The engine for ``model_text`` on ``board`` with its program and memory image; a
    :class:`UserError` naming the resource when the board cannot hold it or the model does
    not fit the board's memory."""
    from fpgallm.engine import compiler as C
    from fpgallm.engine.golden import EngineError
    from fpgallm.engine.image import image_bytes, port_images
    from fpgallm.engine.rtl.simrun import engine_design
    from fpgallm.estimate import perf as P
    from fpgallm.estimate.estimator import engine_for_model
    from fpgallm.estimate.resources import engine_resources

    progress.step(f"loading {model_text}")
    m = _load_model(model_text)
    spec = m.spec
    ctx = knobs.context or min(DEFAULT_CONTEXT, spec.max_seq_len)
    if not 1 <= ctx <= spec.max_seq_len:
        raise UserError(f"--context {ctx}: must be in [1, {spec.max_seq_len}] (max_seq_len of {spec.name})")
    if knobs.batch not in range(1, 9):
        raise UserError(f"--batch {knobs.batch}: must be 1..8")
    formats = C.model_weight_formats(m)
    est_knobs = P.Knobs(lanes=knobs.gemv_lanes, ports=knobs.ports, port_width=knobs.port_width,
                        vector_lanes=knobs.vector_lanes, prefetch_words=knobs.prefetch_words)
    progress.step(f"planning the engine for {board.name}")
    params, mem, notes = engine_for_model(spec, board, formats, knobs.batch, ctx, est_knobs)
    progress.step(f"compiling {spec.name} into the program and memory image")
    try:
        compiled = C.compile_model(m, params, context=ctx)
    except (ValueError, EngineError) as exc:
        raise UserError(f"{spec.name} on the engine for {board.name}: {exc}") from None
    image = compiled.image.nbytes
    if image > mem.capacity_bytes:
        raise UserError(f"{spec.name} does not fit {board.name}: the memory image (weights, KV cache for "
                        f"{ctx} tokens x batch {knobs.batch}, tables, program) is {image / 2**20:.1f} MiB, "
                        f"the engine's {mem.type} ({mem.name}) has {mem.capacity_bytes / 2**20:.0f} MiB")
    progress.step(f"converting the engine ({params.mem_ports} x {params.port_width}-bit ports) to Verilog")
    emitted = engine_design(compiled)
    res = engine_resources(params, board)
    parts = port_images(image_bytes(compiled), params)
    artifacts: dict[str, bytes | str] = {f"sw/mem{j}.bin": part for j, part in enumerate(parts)}
    memory_map = _memory_map(compiled, parts, mem)
    artifacts["sw/memory_map.json"] = json.dumps(memory_map, indent=2, sort_keys=True) + "\n"
    ports = tuple(ports_of(emitted.text, ENGINE_TOP))
    masters = tuple(f"axi{j}" for j in range(params.mem_ports))
    return EngineDesign(
        name="engine", generator="fpgallm.engine.rtl.top.Engine", top=ENGINE_TOP,
        verilog=emitted.text, params=params_dict(params), streams=(), scalars=(),
        need=res.total.as_dict(), need_basis="fpgallm estimate of the engine", stand_in=False,
        axi_masters=masters, ports=ports, artifacts=artifacts,
        engine={"model": spec.name, "context": ctx, "batch": knobs.batch, "memory": mem.name,
                "image_bytes": image, "notes": notes,
                "program": memory_map["program"], "logits": memory_map["logits"]})


def _memory_map(compiled, parts: list[bytes], mem) -> dict[str, Any]:
    p = compiled.params
    regions = []
    for addr, r in sorted(compiled.image.by_addr.items()):
        regions.append({"name": r.name, "addr": addr, "bytes": r.nbytes})
    return {
        "engine": params_dict(p),
        "context": compiled.context,
        "memory": {"name": mem.name, "type": mem.type},
        "striping": {"ports": p.mem_ports, "port_bytes": p.port_width // 8,
                     "rule": "byte a of the image: port (a // port_bytes) % ports, offset "
                             "(a // (port_bytes * ports)) * port_bytes + a % port_bytes"},
        "port_images": [{"file": f"sw/mem{j}.bin", "bytes": len(b),
                         "sha256": hashlib.sha256(b).hexdigest()} for j, b in enumerate(parts)],
        "program": compiled.symbols["program"],
        "logits": compiled.symbols["logits"],
        "regions": regions,
        "registers": [{"offset": o, "access": a, "meaning": t} for o, a, t in csr_register_table()],
        "run": ["write POS[b] (0x40 + 8b) and TOKEN[b] (0x44 + 8b) of each sequence, NSEQ (0x1C), "
                "PROG_LO/HI (0x14/0x18) = program",
                "write CTRL (0x08) = 1; wait for STATUS (0x0C) bit 1 (done) or the interrupt",
                "read TOKEN[b] (0x44 + 8b): the next token of sequence b; the int32 logits are at "
                "logits (one row per sequence)"],
    }
