"""Default :class:`~fpgallm.engine.params.EngineParams` for a board (issue 8, point 3).

The project records these planned parameters in its manifest (the board top around the
engine RTL is still to come, issue 8).  The rules:

- memory: the writable memory system with the highest peak bandwidth (the PL reaches PS
  memory through the HP ports on SoC boards); one AXI4 port per channel (at most 64), each
  as wide as needed to carry its channel's peak bandwidth at the fabric clock (power of two,
  32..1024 bits);
- GEMV: ``gemv_lanes x gemv_macs`` MACs per cycle match the weight bits arriving per cycle
  at 4-bit weights, capped at 70 % of the board's DSPs (one MAC per DSP; two per Intel
  variable-precision block);
- buffers: vector registers (INT8) take at most half of the on-chip RAM.

Then the resource model (:func:`fpgallm.estimate.resources.engine_resources`) checks the
result against the board's available resources (after the shell) and shrinks it until it
fits: while DSP, LUT or FF are short, the memory ports (count, then width) when the blocks
that grow with the memory stripe take at least half of the short resource, the GEMVs (lanes,
then MACs per lane) when they do, else the vector lanes, then the ports;
``max_ffn``/``max_dim``, then ``max_vocab`` (down to 32768), while block RAM or URAM are short.

ENGINE HOOKUP: the engine generator takes these (or the user's knobs).
"""

from __future__ import annotations

import dataclasses

from fpgallm.boards import Board, Memory
from fpgallm.engine.params import EngineParams

DSP_SHARE = 0.7
RAM_SHARE = 0.5
WEIGHT_BITS = 4
GEMV_MACS = 32


class NoEngine(Exception):
    """The board cannot hold the engine at all (message says why)."""


def _pow2_at_least(x: float, lo: int, hi: int) -> int:
    v = lo
    while v < x and v < hi:
        v *= 2
    return v


def _pow2_at_most(x: int) -> int:
    return 1 << (max(1, x).bit_length() - 1)


def engine_memory(board: Board) -> Memory:
    writable = [m for m in board.memory if m.writable]
    if not writable:
        raise NoEngine(f"{board.name} has no writable off-chip memory for weights and the KV cache "
                       f"(only {board.describe_memory()})")
    return max(writable, key=lambda m: (m.peak_gbps, m.side == "pl"))


def default_engine_params(board: Board) -> EngineParams:
    mem = engine_memory(board)
    clock = board.clocks.fabric_mhz
    ports = min(64, mem.channels)
    channel_bits_per_cycle = mem.peak_gbps / mem.channels * 8e9 / (clock * 1e6)
    port_width = _pow2_at_least(channel_bits_per_cycle, 32, 1024)
    macs_per_dsp = 2 if board.vendor == "intel" else 1
    dsp_macs = int(board.available["dsp"] * DSP_SHARE) * macs_per_dsp
    bw_macs = ports * port_width // WEIGHT_BITS
    macs = min(dsp_macs, bw_macs)
    if macs < 1:
        raise NoEngine(f"{board.name} has no DSPs for the GEMV engine")
    gemv_macs = min(GEMV_MACS, _pow2_at_most(macs))
    gemv_lanes = min(1024, _pow2_at_most(macs // gemv_macs))
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
    return fit_engine_params(board, p)


MIN_VOCAB = 32768


def fit_engine_params(board: Board, p: EngineParams) -> EngineParams:
    """``p`` shrunk until the resource model says it fits ``board`` (module docstring);
    raises :class:`NoEngine` naming the resource when nothing is left to shrink."""
    from fpgallm.estimate.resources import ENGINE_BLOCKS, engine_resources
    from fpgallm.project.fit import RESOURCES, resource_label

    avail = board.available
    while True:
        est = engine_resources(p, board)
        need = est.total.as_dict()
        short = [k for k in RESOURCES if need[k] > avail[k]]
        if not short:
            return p
        res = short[0]
        change = None
        if res in ("dsp", "lut", "ff"):
            gemv = getattr(est.parts["gemv"], res)
            # the blocks that grow with the memory stripe (attention's dot products, KV
            # append, the memory system, ...): fewer, narrower ports shrink them
            striped = sum(getattr(est.parts[name], res) for name, _k, feat in ENGINE_BLOCKS.values()
                          if feat == "stripe")
            shrink_gemv = p.gemv_lanes * p.gemv_macs > 1 and (
                gemv >= need[res] / 2 or p.vector_lanes == 1)
            if striped >= need[res] / 2 and p.mem_ports > 1:
                change = {"mem_ports": p.mem_ports // 2}
            elif striped >= need[res] / 2 and p.port_width > 32:
                change = {"port_width": p.port_width // 2}
            elif shrink_gemv and p.gemv_lanes > 1:
                change = {"gemv_lanes": p.gemv_lanes // 2}
            elif shrink_gemv:
                change = {"gemv_macs": p.gemv_macs // 2}
            elif p.vector_lanes > 1:
                change = {"vector_lanes": p.vector_lanes // 2}
            elif p.mem_ports > 1:
                change = {"mem_ports": p.mem_ports // 2}
            elif p.port_width > 32:
                change = {"port_width": p.port_width // 2}
        else:
            if p.max_ffn > 3 * 64 and p.max_ffn // 2 >= 64:
                ffn = p.max_ffn // 2 // 64 * 64
                change = {"max_ffn": ffn, "max_dim": min(p.max_dim, max(64, ffn // 3 // 64 * 64))}
            elif p.max_vocab > MIN_VOCAB:
                change = {"max_vocab": max(MIN_VOCAB, p.max_vocab // 2)}
        if change is None:
            raise NoEngine(f"{board.name} is too small for the decode engine: {res.upper()} needs "
                           f"{need[res]}, the board has {avail[res]} ({resource_label(board, res)}) "
                           f"at the smallest engine")
        p = dataclasses.replace(p, **change)


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
