"""Default :class:`~fpgallm.engine.params.EngineParams` for a board (issue 8, point 3).

The decode engine RTL does not exist yet (issues 6/7); the project records these planned
parameters in its manifest so the engine plugs into the same writer later.  The rules:

- memory: the writable memory system with the highest peak bandwidth (the PL reaches PS
  memory through the HP ports on SoC boards); one AXI4 port per channel (at most 64), each
  as wide as needed to carry its channel's peak bandwidth at the fabric clock (power of two,
  32..1024 bits);
- GEMV: ``gemv_lanes x gemv_macs`` MACs per cycle match the weight bits arriving per cycle
  at 4-bit weights, capped at 70 % of the board's DSPs (one MAC per DSP; two per Intel
  variable-precision block);
- buffers: vector registers (INT8) take at most half of the on-chip RAM.

ENGINE HOOKUP: the engine generator takes these (or the user's knobs) and the resource
model of the estimator replaces the budget rules above.
"""

from __future__ import annotations

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
    return EngineParams(gemv_lanes=gemv_lanes, gemv_macs=gemv_macs, mem_ports=ports,
                        port_width=port_width, max_dim=max_dim, max_ffn=max_ffn, vregs=vregs,
                        clock_mhz=float(clock))


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
