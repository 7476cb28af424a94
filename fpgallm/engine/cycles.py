"""Cycle model of the decode engine: cycles per instruction, from the units' timing
(``latency``, ``cycles``, ``vector_cycles``) and the memory ports' bandwidth.

Model (first order, no overlap between instructions: an upper bound the RTL of issue 7
must beat or match; overlap of a GEMV's weight stream with vector work is the next step):

* ``GEMV`` / ``EMBED``: :func:`gemv_cycles` / :func:`embed_cycles`, the RTL units' cycles
  (one stripe word of the matrix stream per cycle; batch B reuses each word for all B
  vectors, B MAC sets).
* vector units (``NORM``, ``QUANT``, ``ACT``, ``EWADD``, ``EWMUL``, ``ROPE``, ``ARGMAX``,
  ``LOADV``/``STOREV``/``EMBED``): ``B x`` the unit's cycles for ``n`` elements at
  ``vector_lanes`` elements per cycle, plus its latency (memory-bound ones: bytes / port bytes).
* ``KVAPPEND``: the K and V bytes written; ``ATTN``: ``max(KV bytes read / bytes_per_cycle,
  score and weighted-sum MACs / (vector_lanes MACs a cycle))`` plus one softmax per head.
"""

from __future__ import annotations

from fpgallm.engine import compiler as C
from fpgallm.engine.isa import Instruction, Op
from fpgallm.units.activation import ActivationParams
from fpgallm.units.argmax import ArgmaxParams
from fpgallm.units.elementwise import ElementwiseParams
from fpgallm.units.norm import NormParams
from fpgallm.units.quantize import QuantizeParams
from fpgallm.units.softmax import SoftmaxParams


MEM_LATENCY = 3   # cycles from a memory read request accepted to its first word (the
                  # memory system's figure; the GEMV / EMBED formulas below take it)


def gemv_cycles(p, pm, n: int, m: int, nseq: int, mem_latency: int = MEM_LATENCY) -> int:
    """Cycles of the GEMV unit (:mod:`fpgallm.engine.rtl.x_gemv`) from the command accepted to
    ``done``, measured in simulation with no stall: the activation load (``nseq`` vectors of
    ``m`` at ``vector_lanes`` a beat) overlapping the header fetch (two memory round trips),
    then one stripe word a cycle for ``ceil(n / lanes)`` row tiles, the GEMV pipeline, and
    the last chunk's register writes (a request and its beats per sequence)."""
    gp = C.engine_gemv_params(p, pm.params.fmt)
    P, L = p.gemv_lanes, p.vector_lanes
    tiles = -(-n // P)
    words = tiles * pm.params.tile_stream_words(m)
    load = nseq * -(-m // L)
    ch = max(P, L)
    last_beats = -(-((n - 1) % ch + 1) // L)
    return max(load + 3 + nseq, 2 * mem_latency + 7) + words + gp.latency + 1 + nseq * (1 + last_beats)


def embed_cycles(p, pm, n: int, nseq: int, mem_latency: int = MEM_LATENCY) -> int:
    """Cycles of the EMBED unit (:mod:`fpgallm.engine.rtl.x_embed`): the header fetch, then per
    sequence a memory round trip, one cycle per element and per scale word of the row tile."""
    S = pm.params.scale_words_before(pm.dm.shape[1] - 1)
    return nseq * (n + S + mem_latency + 6) + mem_latency + 3


class CycleModel:
    def __init__(self, compiled: C.Compiled):
        self.c = compiled
        p = compiled.params
        self.p = p
        L = p.vector_lanes
        self.bpc = p.bytes_per_cycle
        self.L = L
        self.norm = NormParams(lanes=1 if compiled.spec.d_model % L else L,
                               max_len=compiled.spec.d_model)
        self.quant = QuantizeParams(lanes=L if C.ACT_GROUP % L == 0 else 1, group=C.ACT_GROUP)
        self.act = ActivationParams(lanes=L)
        self.ew = ElementwiseParams(lanes=L)
        self.argmax = ArgmaxParams(lanes=L)
        self.softmax = SoftmaxParams(lanes=L, max_length=max(compiled.context, 1))

    def _vec(self, n: int, lanes: int, latency: int) -> int:
        return -(-n // lanes) + latency

    def cost(self, ins: Instruction, length: int) -> int:
        """Cycles of ``ins`` when the sequences attend over ``length`` positions."""
        p, B, op = self.p, self.p.batch, ins.op
        if op is Op.GEMV:
            return gemv_cycles(p, self.c.image.by_addr[ins.addr].data, ins.n, ins.m, B)
        if op is Op.EMBED:
            return embed_cycles(p, self.c.image.by_addr[ins.addr].data, ins.n, B)
        if op is Op.NORM:
            return B * (self.norm.vector_cycles(ins.n) + self.norm.latency)
        if op is Op.QUANT:
            return B * self._vec(ins.n, self.quant.lanes, self.quant.latency)
        if op is Op.ACT:
            return B * self._vec(ins.n, self.act.lanes, self.act.latency)
        if op in (Op.EWADD, Op.EWMUL):
            return B * self._vec(ins.n, self.ew.lanes, self.ew.latency)
        if op is Op.ROPE:
            return B * self._vec(ins.n * ins.m, self.L, 4)
        if op is Op.ARGMAX:
            return B * self._vec(ins.n, self.argmax.lanes, self.argmax.latency)
        if op in (Op.LOADV, Op.STOREV):
            return B * (-(-4 * ins.n // self.bpc) + 8)
        if op is Op.KVAPPEND:
            return B * (-(-2 * ins.n * p.kv_format.bits // 8 // self.bpc) + 8)
        if op is Op.ATTN:
            hd, H, KVH = ins.n, ins.m & 0x3FF, ins.m >> 10
            kv_bytes = 2 * KVH * length * (hd * p.kv_format.bits // 8 + 1)
            macs = 2 * H * length * hd
            soft = H * self.softmax.cycles(length)
            return B * (max(-(-kv_bytes // self.bpc), -(-macs // self.L)) + soft)
        return 1


def cycles_per_token(compiled: C.Compiled, length: int) -> dict:
    """Cycles of one program run at attention length ``length``, total and per opcode."""
    cm = CycleModel(compiled)
    per: dict[str, int] = {}
    for ins in compiled.program:
        if ins.op is Op.HALT:
            break
        per[ins.op.name] = per.get(ins.op.name, 0) + cm.cost(ins, length)
    total = sum(per.values())
    return {"cycles": total, "by_op": per,
            "tokens_per_s": compiled.params.batch * compiled.params.clock_mhz * 1e6 / total}
