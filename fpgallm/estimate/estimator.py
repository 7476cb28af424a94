"""One estimate: resources (against the board), cycles, tokens/s, power, tokens/J, bottleneck.

:func:`estimate` ties the three models together for ``fpgallm estimate``, the report and the
benchmark:

1. engine parameters for the board (:func:`fpgallm.estimate.perf.estimate_params`);
2. resources of that engine (:func:`fpgallm.estimate.resources.engine_resources`), checked
   against the board (:func:`fpgallm.estimate.fit.check_fit`: a shortage is a one-line
   :class:`UserError` naming the resource);
3. the program compiled without weights and its cycles (:mod:`fpgallm.estimate.perf`;
   weights + KV cache must fit the board memory, or a :class:`UserError` names it);
4. power (:mod:`fpgallm.estimate.power`) from the resources, the clock, tokens/s and the
   bytes moved per token.
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass

from fpgallm.boards import Board, get_board
from fpgallm.errors import UserError
from fpgallm.estimate import perf as P
from fpgallm.estimate import power as W
from fpgallm.estimate.engine_plan import NoEngine, NoEngineError, fit_engine_params, unbuildable_reason
from fpgallm.estimate.fit import check_fit, resource_label
from fpgallm.estimate.resources import engine_resources

SCHEMA_VERSION = 1


@dataclass
class Estimate:
    spec: object
    board: Board
    perf: P.PerfEstimate
    resources: object          # ResourceEstimate
    fit: dict                  # resource -> {"need", "available"}
    power: W.PowerEstimate
    n_params: int

    @property
    def utilization(self) -> dict[str, float]:
        return {k: (v["need"] / v["available"] if v["available"] else (0.0 if not v["need"] else float("inf")))
                for k, v in self.fit.items()}

    @property
    def bottleneck(self) -> str:
        return self.perf.bottleneck

    def as_dict(self) -> dict:
        d = {"schema": SCHEMA_VERSION, "model": self.spec.name, "params": self.n_params,
             "board": self.board.name}
        d.update(self.perf.as_dict())
        d["resources"] = {
            "used": {k: v["need"] for k, v in self.fit.items()},
            "available": {k: v["available"] for k, v in self.fit.items()},
            "utilization": {k: round(u, 4) for k, u in self.utilization.items()},
            "parts": {k: r.as_dict() for k, r in self.resources.parts.items()},
            "family": self.resources.family.value,
        }
        d["power"] = self.power.as_dict()
        d["tokens_per_j"] = self.power.tokens_per_j
        return d


def resolve_model(ref: str, weights: str | None):
    """(spec, scheme or {matrix: scheme}, scheme name) for a preset name or a model file."""
    from fpgallm.model.spec import PRESETS

    if ref in PRESETS:
        spec = PRESETS[ref].spec
        scheme = P.weight_scheme(weights or P.DEFAULT_WEIGHTS)
        return spec, scheme
    from fpgallm.model.load import load_model
    from fpgallm.model.quant import QuantTensor

    m = load_model(ref, with_tokenizer=False)
    spec = m.spec
    if weights is None and all(isinstance(m.tensors[n], QuantTensor) for n in spec.matrix_names()):
        return spec, {n: m.tensors[n].scheme for n in spec.matrix_names()}
    return spec, P.weight_scheme(weights or P.DEFAULT_WEIGHTS)


def estimate(spec, board: Board | str, scheme=None, batch: int = 1, context: int | None = None,
             knobs: P.Knobs = P.Knobs(), alpha: float = W.ALPHA) -> Estimate:
    from fpgallm.engine.compiler import scheme_format

    if isinstance(board, str):
        board = get_board(board)
    if not 0 < alpha <= 1:
        raise UserError(f"--activity {alpha}: must be in (0, 1]")
    ctx = min(context or P.DEFAULT_CONTEXT, spec.max_seq_len)
    if context is not None and not 1 <= context <= spec.max_seq_len:
        raise UserError(f"--context {context}: must be in [1, {spec.max_seq_len}] (max_seq_len of {spec.name})")
    if batch not in range(1, 9):
        raise UserError(f"--batch {batch}: must be 1..8")
    scheme = scheme or P.weight_scheme(P.DEFAULT_WEIGHTS)
    used_fmts = tuple(dict.fromkeys(scheme_format(s)[0] for s in
                                    (scheme.values() if isinstance(scheme, dict) else [scheme])))
    params, mem, notes = engine_for_model(spec, board, used_fmts, batch, ctx, knobs)
    res = engine_resources(params, board)
    need = res.total.as_dict()
    fit = check_fit(board, need, "fpgallm estimate of the engine")
    pe = P.estimate_perf(spec, board, scheme, batch, ctx, params=params)
    pe.notes[:0] = notes
    # DSPs compute only during GEMV instructions of the model's weight format
    gemv_frac = pe.decode_by_op.get("GEMV", 0) / pe.decode_cycles
    fmts = {scheme_format(s)[0].value for s in (set(scheme.values()) if isinstance(scheme, dict) else {scheme})}
    dsp_total = max(1, need["dsp"])
    busy = 0.0
    for name, r in res.parts.items():
        if name.startswith("gemv:"):
            busy += r.dsp * (gemv_frac if name.split(":", 1)[1] in fmts else 0.0)
        else:
            busy += r.dsp
    pw = W.estimate_power(board, need, params.clock_mhz, pe.tokens_per_s, pe.bytes_per_token, mem,
                          dsp_busy=min(1.0, busy / dsp_total), alpha=alpha)
    return Estimate(spec, board, pe, res, fit, pw, spec.n_params)


def engine_for_model(spec, board: Board, formats: tuple, batch: int, ctx: int,
                     knobs: P.Knobs = P.Knobs()):
    """``(EngineParams, Memory, notes)``: the engine ``fpgallm estimate`` and ``fpgallm
    generate`` build for ``spec`` on ``board`` -- :func:`~fpgallm.estimate.perf.estimate_params`
    (buffers sized to the model), GEMVs for the model's weight ``formats`` only, MACs per lane
    from the memory word, then the knobs the user left open shrunk until it fits."""
    params, mem, notes = P.estimate_params(board, batch, ctx, knobs, spec=spec)
    if knobs.macs is None:
        # gemv_macs = the MACs per lane the widest-packed format needs (EngineParams' rule:
        # lanes x macs x weight bits = the memory word)
        bits = min(f.bits for f in formats)
        macs = _word_macs(params, params.gemv_lanes, bits)
        if macs != params.gemv_macs:
            notes.append(f"GEMV MACs per lane {params.gemv_macs} -> {macs} "
                         f"({params.mem_ports * params.port_width}-bit word / {params.gemv_lanes} lanes / {bits}-bit weights)")
            params = dataclasses.replace(params, gemv_macs=macs)
    # the engine generated for this model streams only the model's weight formats
    if set(formats) != set(params.weight_formats):
        notes.append(f"GEMV weight formats: {', '.join(f.value for f in formats)} (those of the model)")
        params = dataclasses.replace(params, weight_formats=tuple(formats))
    params = _fit_to_board(board, params, knobs, notes)
    params = _buildable_lanes(params, knobs, min(f.bits for f in formats), notes)
    if board.open_source and board.io is not None and board.io.sdram is not None:
        ref = board.clocks.engine_mhz or board.clocks.reference.mhz
        notes.append(f"the generated {board.name} project drives the SDRAM from the engine clock "
                     f"({ref:g} MHz by default: {mem.width_bits * ref / 8e3:.3g} GB/s); this estimate "
                     f"assumes a controller at the memory's {mem.rate_mtps:g} MT/s")
    return params, mem, notes


# EngineParams field of each Knobs field the planner may shrink
_KNOB_FIELDS = {"lanes": "gemv_lanes", "macs": "gemv_macs", "ports": "mem_ports",
                "port_width": "port_width", "vector_lanes": "vector_lanes"}


def _fit_to_board(board: Board, params, knobs: P.Knobs, notes: list[str]):
    """``params`` (buffers sized to the model) with the compute knobs the user left open
    shrunk until the resource model says the engine fits (``fit_engine_params``); a
    :class:`UserError` naming the resource when even the smallest engine does not fit."""

    fixed = frozenset(f for k, f in _KNOB_FIELDS.items() if getattr(knobs, k) is not None)
    try:
        fitted = fit_engine_params(board, params, fixed=fixed, buffers_fixed=True)
    except NoEngine as e:
        raise NoEngineError(str(e)) from None
    changed = [f"{f.replace('_', ' ')} {getattr(params, f)} -> {getattr(fitted, f)}"
               for f in _KNOB_FIELDS.values() if getattr(params, f) != getattr(fitted, f)]
    if changed:
        notes.append(f"shrunk to fit {board.name}: {', '.join(changed)}")
    return fitted


def _word_macs(params, lanes: int, bits: int) -> int:
    """MACs per GEMV lane that fill the memory word with ``lanes`` lanes of ``bits``-bit
    weights (EngineParams' rule: lanes x macs x weight bits = the word)."""
    return max(1, params.mem_ports * params.port_width // (lanes * bits))


def _buildable_lanes(params, knobs: P.Knobs, bits: int, notes: list[str]):
    """Knobs that narrow the memory word but leave the GEMV lanes open can leave more lanes
    than the RTL builds on that word (e.g. the lanes' scales no longer fit one word): halve
    the lanes (MACs per lane from the word, unless given) until it builds.  A
    :class:`UserError` with the RTL's reason when the lanes were given too."""
    reason = unbuildable_reason(params)
    if reason is None:
        return params
    start, q = params.gemv_lanes, params
    while knobs.lanes is None and q.gemv_lanes > 1:
        lanes = q.gemv_lanes // 2
        macs = knobs.macs or _word_macs(q, lanes, bits)
        q = dataclasses.replace(q, gemv_lanes=lanes, gemv_macs=macs)
        if unbuildable_reason(q) is None:
            notes.append(f"GEMV lanes {start} -> {lanes} x {q.gemv_macs} MACs: the RTL cannot build "
                         f"{start} on a {q.mem_ports * q.port_width}-bit word ({reason})")
            return q
    raise UserError(f"the engine RTL cannot build these knobs: {reason}; choose the GEMV lanes, "
                    "the ports and the port width together")


# --- text ---------------------------------------------------------------------------------------

def _si(x: float, unit: str = "") -> str:
    for f, s in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= f:
            return f"{x / f:.3g} {s}{unit}"
    return f"{x:.3g} {unit}".rstrip()


def format_table(e: Estimate) -> str:
    p, pe, pw, b = e.perf.params, e.perf, e.power, e.board

    L = []
    L.append(f"{e.spec.name} ({_si(e.n_params)} parameters, weights {pe.scheme}, INT8 activations, "
             f"KV {p.kv_format.value}) on {b.name} ({b.title})")
    L.append(f"batch {pe.batch}, context {pe.context} tokens")
    L.append(f"engine: GEMV {p.gemv_lanes} lanes x {p.gemv_macs} MACs, {p.mem_ports} ports x "
             f"{p.port_width} bits at {p.clock_mhz:g} MHz = {p.peak_bandwidth_gbs:.1f} GB/s, "
             f"{p.vector_lanes} vector lanes, memory latency {p.mem_latency} cycles")
    L.append("")
    L.append(f"{'resource':<22s}{'used':>12s}{'available':>12s}{'util':>8s}")
    for k, v in e.fit.items():
        u = e.utilization[k]
        L.append(f"{(k.upper() + ' (' + resource_label(b, k))[:20] + ')':<22s}{v['need']:>12d}{v['available']:>12d}"
                 f"{u:>8.1%}")
    L.append("")
    L.append(f"{'decode cycles / run':<30s}{pe.decode_cycles:>14,d}")
    top = sorted(pe.decode_by_op.items(), key=lambda kv: -kv[1])[:5]
    L.append(f"{'  by opcode':<30s}" + ", ".join(f"{k} {v / pe.decode_cycles:.1%}" for k, v in top))
    L.append(f"{'decode tokens/s':<30s}{pe.tokens_per_s:>14.4g}")
    if pe.batch == 1:
        L.append(f"{'time to first token':<30s}{pe.ttft_s:>14.4g} s  (prompt of {pe.context} tokens, "
                 f"{pe.prefill_cycles:,d} cycles)")
    else:
        L.append(f"{'time to first token':<30s}{pe.ttft_s:>14.4g} s  ({pe.batch} prompts of {pe.context} "
                 f"tokens together, {pe.prefill_cycles:,d} cycles)")
        L.append(f"{'  one prompt alone':<30s}{pe.ttft_one_prompt_s:>14.4g} s  (prefilled {pe.batch} "
                 f"positions a run, {pe.prefill_chunked_cycles:,d} cycles)")
    L.append(f"{'bytes / token':<30s}{_si(pe.bytes_per_token, 'B'):>14s}  (weights {_si(pe.weight_bytes, 'B')})")
    L.append(f"{'memory-bound ceiling':<30s}{pe.ceiling_tokens_per_s:>14.4g} tokens/s  "
             f"({pe.memory} {pe.memory_peak_gbps:g} GB/s); design at {pe.ceiling_fraction:.1%}")
    L.append("")
    L.append(f"{'power':<30s}{pw.total_w:>14.3g} W  (static {pw.static_w:.3g} + dynamic {pw.dynamic_w:.3g} "
             f"+ memory {pw.memory_w:.3g}); board {pw.board_w:.3g} W")
    L.append(f"{'tokens/J':<30s}{pw.tokens_per_j:>14.4g}  (board: {pw.tokens_per_j_board:.4g})")
    L.append(f"{'bottleneck':<30s}{pe.bottleneck}")
    if pe.notes:
        L.append("")
        L.append("notes:")
        L.extend(f"  - {n}" for n in pe.notes)
    return "\n".join(L)
