"""Default :class:`~fpgallm.engine.params.EngineParams` for a board.

The project records these planned parameters in its manifest; the estimator starts from
them.  The rules:

- memory: the writable memory system with the highest peak bandwidth (the PL reaches PS
  memory through the HP ports on SoC boards); one AXI4 port per channel (at most 64), each
  as wide as needed to carry its channel's peak bandwidth at the fabric clock (power of two,
  64..1024 bits);
- GEMV: it takes the whole memory word each cycle (``gemv_lanes x gemv_macs`` MACs at 4-bit
  weights), so the ports are capped at a 4096-bit word; 32 MACs per lane (the activation
  group), at most 64 lanes;
- buffers: vector registers (INT8) take at most half of the on-chip RAM.

Then :func:`fit_engine_params` checks the result against the board's available resources
(after the shell) with the resource model (:func:`fpgallm.estimate.resources.engine_resources`)
and shrinks it until it fits, cheapest knob for decode throughput first (its docstring,
:data:`SHRINK_ORDER`).  :func:`initial_engine_params` is the engine before the fit (the
estimator sizes its buffers to a model first, then fits).
"""

from __future__ import annotations

import dataclasses

from fpgallm.boards import Board, Memory
from fpgallm.engine.params import EngineParams
from fpgallm.errors import UserError
from fpgallm.estimate.fit import resource_label
from fpgallm.estimate.resources import engine_resources

RAM_SHARE = 0.5
WEIGHT_BITS = 4
GEMV_MACS = 32          # MACs per GEMV lane: the activation group (block-scaled INT8, 32)
# the largest memory word one GEMV consumes per cycle, and its lanes (GemvParams limits)
GEMV_MAX_WORD_BITS = 4096
GEMV_MAX_LANES = 64
MIN_WORD_BITS = 64      # a matrix header is one 64-bit word (x_gemv.check_params)


class NoEngine(Exception):
    """The board cannot hold the engine at all (message says why)."""


class NoEngineError(UserError):
    """:class:`NoEngine` as the one-line user error of ``fpgallm estimate`` / ``generate``."""


def _pow2_at_least(x: float, lo: int, hi: int) -> int:
    v = lo
    while v < x and v < hi:
        v *= 2
    return v


def engine_memory(board: Board) -> Memory:
    writable = [m for m in board.memory if m.writable]
    if not writable:
        raise NoEngine(f"{board.name} has no writable off-chip memory for weights and the KV cache "
                       f"(only {board.describe_memory()})")
    return max(writable, key=lambda m: (m.peak_gbps, m.side == "pl"))


def default_engine_params(board: Board) -> EngineParams:
    """:func:`initial_engine_params` shrunk to fit ``board`` (:func:`fit_engine_params`)."""
    return fit_engine_params(board, initial_engine_params(board))


def initial_engine_params(board: Board) -> EngineParams:
    """The engine the board's memory and DSPs call for, before the fit (module docstring)."""
    mem = engine_memory(board)
    clock = board.clocks.engine_mhz or board.clocks.fabric_mhz
    ports = min(64, mem.channels)
    channel_bits_per_cycle = mem.peak_gbps / mem.channels * 8e9 / (clock * 1e6)
    port_width = _pow2_at_least(channel_bits_per_cycle, MIN_WORD_BITS, 1024)
    if board.available["dsp"] < 1:
        raise NoEngine(f"{board.name} has no DSPs for the GEMV engine")
    # the GEMV takes the whole memory word, at most GEMV_MAX_WORD_BITS of it, in lanes of
    # GEMV_MACS 4-bit MACs (at most GEMV_MAX_LANES lanes)
    ports = max(1, min(ports, GEMV_MAX_WORD_BITS // port_width))
    gemv_lanes = max(1, min(GEMV_MAX_LANES, ports * port_width // (WEIGHT_BITS * GEMV_MACS)))
    gemv_macs = ports * port_width // (WEIGHT_BITS * gemv_lanes)
    r = board.resources
    ram_bits = (board.available["bram"] * r.bram_kbit + board.available["uram"] * r.uram_kbit) * 1024
    vregs = 8
    elems = int(ram_bits * RAM_SHARE) // (vregs * 8)
    max_ffn = min(14336, elems // 64 * 64)
    if max_ffn < 64:
        raise NoEngine(f"{board.name} has too little on-chip RAM for the vector registers "
                       f"({ram_bits / 8192:.0f} KiB)")
    max_dim = min(4096, max(64, max_ffn // 3 // 64 * 64))
    p = EngineParams(gemv_lanes=gemv_lanes, gemv_macs=gemv_macs, mem_ports=ports,
                     port_width=port_width, max_dim=max_dim, max_ffn=max_ffn, vregs=vregs,
                     clock_mhz=float(clock))
    return _with_derived_macs(p)


MIN_VOCAB = 32768


# Compute knobs in the order the planner shrinks them: what costs decode throughput least
# first.  Fewer GEMV lanes keep the MACs per cycle (the GEMV always takes the whole memory
# word; each lane then takes more of it) and only drop per-lane accumulators and
# requantizers; fewer vector lanes slow the vector work (norms, RoPE, softmax: a few % to
# ~15 % of decode cycles, SmolLM2-135M on a U280 going from 8 to 4); fewer or narrower
# ports cut the bandwidth, the decode ceiling itself (+75 % cycles for 8 -> 4 ports).
SHRINK_ORDER = ("gemv_lanes", "vector_lanes", "mem_ports", "port_width")
# vector lanes: RoPE rotates pairs of elements (x_rope needs at least 2)
_FLOOR = {"gemv_lanes": 1, "vector_lanes": 2, "mem_ports": 1, "port_width": MIN_WORD_BITS}


def _with_derived_macs(p: EngineParams) -> EngineParams:
    """``gemv_macs`` as the RTL builds it: the memory word over the lanes at 4-bit weights."""
    macs = max(1, min(1024, p.mem_ports * p.port_width // (p.gemv_lanes * WEIGHT_BITS)))
    return p if macs == p.gemv_macs else dataclasses.replace(p, gemv_macs=macs)


def fit_engine_params(board: Board, p: EngineParams, *, fixed: frozenset[str] = frozenset(),
                      buffers_fixed: bool = False) -> EngineParams:
    """``p`` shrunk until the resource model says it fits ``board``; raises
    :class:`NoEngine` naming the resource when nothing is left to shrink.

    1. While DSP, LUT or FF are short: halve the first knob of :data:`SHRINK_ORDER` that is
       not in ``fixed``, above its floor (:data:`_FLOOR`), whose halving lowers the short
       resource and leaves an engine the RTL builds (:func:`_buildable`).
    2. Grow the vector lanes, then the GEMV lanes, back towards ``p``'s while DSP, LUT and
       FF still fit (a later port halving may have made room).
    3. While block RAM or URAM are short: ``max_ffn``/``max_dim``, then ``max_vocab`` (down
       to 32768) -- unless ``buffers_fixed`` (buffers sized to a model stay).

    The message names the resource short by the largest factor, and the knobs held fixed.
    """
    avail = fit_capacity(board)
    need_of = lambda q: engine_resources(q, board).total.as_dict()  # noqa: E731
    start = p
    compute, memory = ("dsp", "lut", "ff"), ("bram", "uram")

    def fits(q, keys):
        n = need_of(q)
        return all(n[k] <= avail[k] for k in keys)

    # 1. logic: halve the cheapest knob that lowers the short resource
    while True:
        need = need_of(p)
        short = [k for k in compute if need[k] > avail[k]]
        if not short:
            break
        res = short[0]
        nxt = None
        for knob in SHRINK_ORDER:
            q = _halved(p, knob, fixed)
            if q is not None and need_of(q)[res] < need[res]:
                nxt = q
                break
        if nxt is None:
            _too_small(board, max(short, key=lambda k: need[k] / avail[k]), need, p, fixed)
        p = nxt
    # 2. a later (costlier) halving may have left room for an earlier one to grow back
    for knob in reversed(SHRINK_ORDER[:2]):
        while getattr(p, knob) < getattr(start, knob):
            q = dataclasses.replace(p, **{knob: getattr(p, knob) * 2})
            q = q if "gemv_macs" in fixed else _with_derived_macs(q)
            if not fits(q, compute) or (_buildable(p) and not _buildable(q)):
                break
            p = q
    # 3. on-chip RAM: the buffers
    while True:
        need = need_of(p)
        short = [k for k in memory if need[k] > avail[k]]
        if not short:
            break
        nxt = None
        if not buffers_fixed and p.max_ffn > 3 * 64 and p.max_ffn // 2 >= 64:
            ffn = p.max_ffn // 2 // 64 * 64
            nxt = dataclasses.replace(p, max_ffn=ffn, max_dim=min(p.max_dim, max(64, ffn // 3 // 64 * 64)))
        elif not buffers_fixed and p.max_vocab > MIN_VOCAB:
            nxt = dataclasses.replace(p, max_vocab=max(MIN_VOCAB, p.max_vocab // 2))
        if nxt is None:
            _too_small(board, max(short, key=lambda k: need[k] / avail[k]), need, p, fixed | ({"max_dim", "max_ffn", "max_vocab"} if buffers_fixed else set()))
        p = nxt
    return p


# The open-source placer and router (nextpnr) need room: the planner fills at most this
# share of the LUTs there (the ULX3S engine at 92 % of the LUT4s routed only with router2,
# at 89 % it routed in minutes).
OPEN_FLOW_LUT_FILL = 0.9


def fit_capacity(board: Board) -> dict[str, int]:
    """What the planner may fill: the board's available resources, LUTs capped at
    :data:`OPEN_FLOW_LUT_FILL` on open-source flows."""
    avail = dict(board.available)
    if board.open_source:
        avail["lut"] = int(avail["lut"] * OPEN_FLOW_LUT_FILL)
    return avail


def _too_small(board: Board, res: str, need: dict[str, int], p: EngineParams, fixed=frozenset()):
    given = ", ".join(f"{k}={getattr(p, k)}" for k in sorted(fixed))
    what = "at the smallest engine" + (f" with {given} as given" if fixed else "")
    cap = fit_capacity(board)[res]
    room = (f" of which the open-source flow fills {OPEN_FLOW_LUT_FILL:.0%}: {cap}"
            if cap != board.available[res] else "")
    raise NoEngine(f"{board.name} is too small for the decode engine: {res.upper()} needs "
                   f"{need[res]}, the board has {board.available[res]} "
                   f"({resource_label(board, res)}{room}) {what}")


def unbuildable_reason(p: EngineParams) -> str | None:
    """Why the engine RTL cannot build ``p`` (:func:`fpgallm.engine.rtl.x_gemv.check_params`:
    a memory word of at least 64 bits, at most 32 MACs per GEMV lane, the scales of a word in
    one word, ...), or None when it can."""
    from fpgallm.engine.rtl.x_gemv import check_params
    from fpgallm.errors import UserError

    try:
        check_params(p)
    except (UserError, ValueError) as exc:
        return str(exc)
    return None


def _buildable(p: EngineParams) -> bool:
    return unbuildable_reason(p) is None


def _halved(p: EngineParams, knob: str, fixed: frozenset[str]) -> EngineParams | None:
    """``p`` with ``knob`` halved, or None when fixed, at its floor or not buildable."""
    v = getattr(p, knob)
    if knob in fixed or v <= _FLOOR[knob]:
        return None
    q = dataclasses.replace(p, **{knob: v // 2})
    q = q if "gemv_macs" in fixed else _with_derived_macs(q)
    return q if _buildable(q) or not _buildable(p) else None


def planned_engine(board: Board) -> dict:
    """JSON-able record for the manifest: the parameters, or why there are none."""
    from fpgallm.hdl.emit import params_dict

    try:
        p = default_engine_params(board)
    except NoEngine as exc:
        return {"params": None, "reason": str(exc)}
    mem = engine_memory(board)
    return {"params": params_dict(p), "memory": mem.name, "memory_peak_gbps": mem.peak_gbps,
            "port_capacity_gbs": round(p.peak_bandwidth_gbs, 3),
            "macs_per_cycle": p.macs_per_cycle}
