"""Cycle model of the decode engine: cycles per instruction, from the units' timing
(``latency``, ``cycles``, ``vector_cycles``) and the memory ports' bandwidth.

Model (first order, no overlap between instructions: an upper bound the RTL of issue 7
must beat or match; overlap of a GEMV's weight stream with vector work is the next step):

* ``GEMV`` / ``EMBED``: ``x_gemv.cycles`` / ``x_embed.cycles``, the RTL units' cycles
  (one stripe word of the matrix stream per cycle; batch B reuses each word for all B
  vectors, B MAC sets).
* vector units (``NORM``, ``QUANT``, ``ACT``, ``EWADD``, ``EWMUL``, ``ROPE``, ``ARGMAX``,
  ``LOADV``/``STOREV``/``EMBED``): ``B x`` the unit's cycles for ``n`` elements at
  ``vector_lanes`` elements per cycle, plus its latency (memory-bound ones: bytes / port bytes).
* ``KVAPPEND`` / ``ATTN``: the RTL's cycles (:func:`fpgallm.engine.rtl.x_kv.cycles`,
  :func:`fpgallm.engine.rtl.x_attn.cycles`): per head, the q load, the K pass (one position
  per cycle, or one stripe word when a position spans several), the softmax, the V pass
  overlapping the softmax's second pass, the output.
"""

from __future__ import annotations

from fpgallm.engine import compiler as C
from fpgallm.engine.isa import Instruction, Op
from fpgallm.engine.rtl import x_act, x_argmax, x_attn, x_embed, x_ew, x_gemv, x_kv, x_norm, x_quant, x_rope
from fpgallm.units.activation import ActivationParams
from fpgallm.units.argmax import ArgmaxParams
from fpgallm.units.elementwise import ElementwiseParams
from fpgallm.units.norm import NormParams
from fpgallm.units.quantize import QuantizeParams
from fpgallm.units.softmax import SoftmaxParams


class CycleModel:
    # cycles from a memory read request to its first word beyond one (vector units' tables
    # and weights; the memory system's figure)
    mem_latency = 0

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

    def unit_cost(self, ins: Instruction, length: int) -> int:
        """Cycles of ``ins`` in its unit when the sequences attend over ``length`` positions
        (without the memory latency, see :meth:`cost`)."""
        p, B, op = self.p, self.p.batch, ins.op
        if op is Op.GEMV:
            return x_gemv.cycles(p, self.c.image.by_addr[ins.addr].data, ins.n, ins.m, B,
                                 self.mem_latency)
        if op is Op.EMBED:
            return x_embed.cycles(p, self.c.image.by_addr[ins.addr].data, ins.n, B, self.mem_latency)
        # the vector execution units (fpgallm/engine/rtl/x_*.py): their own cycle counts,
        # equal to the RTL's with the register file answering at once (tests/engine/rtl)
        if op is Op.NORM:
            return x_norm.cycles(p, ins.n, B, ins.mode == C.NORM_LAYER, self.mem_latency)
        if op is Op.QUANT:
            return x_quant.cycles(p, ins.n, B)
        if op is Op.ACT:
            return x_act.cycles(p, ins.n, B)
        if op in (Op.EWADD, Op.EWMUL):
            return x_ew.cycles(p, ins.n, B)
        if op is Op.ROPE:
            return x_rope.cycles(p, ins.n, ins.m, B, ins.mode, self.mem_latency)
        if op is Op.ARGMAX:
            return x_argmax.cycles(p, ins.n, B)
        if op in (Op.LOADV, Op.STOREV):
            return B * (-(-4 * ins.n // self.bpc) + 8)
        if op is Op.KVAPPEND:    # the RTL's cycles (fpgallm/engine/rtl/x_kv.py)
            lat = x_attn.PORT_LATENCY
            return x_kv.cycles(p, ins.n, ins.m, B, lat["vread"], lat["wdone"])
        if op is Op.ATTN:        # the RTL's cycles (fpgallm/engine/rtl/x_attn.py)
            lat = x_attn.PORT_LATENCY
            return x_attn.cycles(p, ins.n, ins.m & 0x3FF, ins.m >> 10, [length] * B,
                                 lat["vread"], lat["mread"])
        return 1

    def cost(self, ins: Instruction, length: int) -> int:
        """Cycles of ``ins`` when the sequences attend over ``length`` positions: the unit's
        cycles plus, for an instruction touching off-chip memory, one memory latency
        (``EngineParams.mem_latency``; instructions do not overlap)."""
        return self.unit_cost(ins, length) + (self.p.mem_latency if ins.op in MEM_OPS else 0)


# instructions with an off-chip memory operand (weights, vectors, tables, KV cache)
MEM_OPS = frozenset({Op.GEMV, Op.EMBED, Op.LOADV, Op.STOREV, Op.NORM, Op.ROPE, Op.KVAPPEND,
                     Op.ATTN})


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
