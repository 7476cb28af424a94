"""Cycle model of the decode engine: the cycles of one program run as the engine RTL
(``fpgallm/engine/rtl``) counts them, from ``start`` to ``done``.

* Each execution unit's cycles (``cmd`` accepted to ``done``) are its own ``cycles()``
  formula, equal to the unit's RTL in the unit tests (``tests/engine/rtl``):
  ``x_gemv`` / ``x_embed`` (one stripe word of the matrix stream per cycle; batch B reuses
  each word for all B sequences), ``x_norm``, ``x_quant``, ``x_act``, ``x_ew``, ``x_rope``,
  ``x_argmax``, ``x_move`` (``LOADV`` / ``STOREV``), ``x_kv`` (``KVAPPEND``), ``x_attn``
  (``ATTN``: per head, the q load, the K pass, the softmax, the V pass, the output).
* ``EngineParams.mem_latency`` is the memory system's read latency (request to first word);
  the units' formulas place it where the RTL waits for it.
* The controller (:func:`fpgallm.engine.rtl.controller.run_cycles`): instruction fetches
  (one per stripe word of instructions), dispatch, ``HALT``.
* Instructions run one after the other (no overlap between units).  With a prefetch
  buffer (``EngineParams.prefetch_words``) a GEMV whose matrix lies in a ``PREFETCH``
  stream finds its words in the buffer: its header and body requests wait no memory
  latency (``x_gemv.cycles`` at ``mem_latency`` 0); ``PREFETCH`` costs
  :func:`~fpgallm.engine.rtl.controller.prefetch_cycles`.
"""

from __future__ import annotations

from fpgallm.engine import compiler as C
from fpgallm.engine.isa import Instruction, Op
from fpgallm.engine.rtl import (controller, x_act, x_argmax, x_attn, x_embed, x_ew, x_gemv, x_kv,
                                x_move, x_norm, x_quant, x_rope)


class CycleModel:
    """Cycles of a compiled program on the engine RTL (no stalls)."""

    def __init__(self, compiled: C.Compiled):
        self.c = compiled
        self.p = compiled.params
        self.mem_latency = self.p.mem_latency
        self.prefetched = self._prefetched() if self.p.prefetch_words else frozenset()

    def _prefetched(self) -> frozenset:
        """The GEMVs whose matrices lie in a ``PREFETCH`` stream of the program."""
        stripe = self.c.image.stripe
        spans, out = [], set()
        for ins in self.c.program:
            if ins.op is Op.PREFETCH:
                spans.append((ins.addr, ins.addr + (ins.n | ins.m << 20) * stripe))
            elif ins.op is Op.GEMV and any(a <= ins.addr < b for a, b in spans):
                out.add(ins)
        return frozenset(out)

    def unit_cost(self, ins: Instruction, lengths) -> int | None:
        """Cycles of ``ins`` in its unit (``cmd`` accepted to ``done``), None for a scalar
        instruction.  ``lengths``: the attention length ``pos + 1`` of each active sequence,
        or one int for all ``batch`` sequences."""
        p, op, lat = self.p, ins.op, self.mem_latency
        if isinstance(lengths, int):
            lengths = [lengths] * p.batch
        B = len(lengths)
        if op in controller.SCALAR_OPS or op is Op.PREFETCH:
            return None
        if op is Op.GEMV:
            return x_gemv.cycles(p, self.c.image.by_addr[ins.addr].data, ins.n, ins.m, B,
                                 0 if ins in self.prefetched else lat)
        if op is Op.EMBED:
            return x_embed.cycles(p, self.c.image.by_addr[ins.addr].data, ins.n, B, lat)
        if op is Op.NORM:
            return x_norm.cycles(p, ins.n, B, ins.mode == C.NORM_LAYER, lat)
        if op is Op.QUANT:
            return x_quant.cycles(p, ins.n, B)
        if op is Op.ACT:
            return x_act.cycles(p, ins.n, B)
        if op in (Op.EWADD, Op.EWMUL):
            return x_ew.cycles(p, ins.n, B)
        if op is Op.ROPE:
            return x_rope.cycles(p, ins.n, ins.m, B, ins.mode, lat)
        if op is Op.ARGMAX:
            return x_argmax.cycles(p, ins.n, B)
        if op in (Op.LOADV, Op.STOREV):
            return x_move.cycles(p, op, ins.n, B, lat)
        ports = self.port_latency()
        if op is Op.KVAPPEND:
            return x_kv.cycles(p, ins.n, ins.m, B, ports["vread"], ports["wdone"])
        if op is Op.ATTN:
            return x_attn.cycles(p, ins.n, ins.m & 0x3FF, ins.m >> 10, list(lengths),
                                 ports["vread"], ports["mread"])
        raise ValueError(f"no cycle model for {op.name}")

    def port_latency(self) -> dict[str, int]:
        """The shared ports' latencies as ``x_kv`` / ``x_attn`` see them (register read,
        memory read from request acceptance to first word, write response)."""
        base = x_attn.PORT_LATENCY
        return {"vread": base["vread"], "mread": base["mread"] - x_attn.PORT_MREAD_AT + self.mem_latency,
                "wdone": base["wdone"]}

    def cost(self, ins: Instruction, lengths) -> int:
        """Cycles of ``ins`` with its dispatch (without the instruction fetches: see
        :meth:`run`)."""
        if ins.op is Op.PREFETCH:
            return controller.prefetch_cycles(self.p)
        u = self.unit_cost(ins, lengths)
        return controller.SCALAR_CYCLES if u is None else u + controller.DISPATCH_CYCLES

    def body(self) -> list[Instruction]:
        """The program up to (without) its first ``HALT``."""
        out = []
        for ins in self.c.program:
            if ins.op is Op.HALT:
                break
            out.append(ins)
        return out

    def control_cycles(self) -> int:
        """Cycles of the instruction fetches and ``HALT`` in one run."""
        n = len(self.body()) + 1
        per_word = controller.fetch_geometry(self.p)[1]
        return -(-n // per_word) * controller.fetch_cycles(self.p, self.mem_latency) + 1

    def run(self, lengths) -> tuple[int, dict[str, int]]:
        """Cycles of one program run, total and per opcode (fetches and ``HALT`` as
        ``FETCH``); ``lengths`` as in :meth:`unit_cost`."""
        per: dict[str, int] = {}
        for ins in self.body():
            per[ins.op.name] = per.get(ins.op.name, 0) + self.cost(ins, lengths)
        per["FETCH"] = self.control_cycles()
        return sum(per.values()), per


# instructions with an off-chip memory operand (weights, vectors, tables, KV cache)
MEM_OPS = frozenset({Op.GEMV, Op.EMBED, Op.LOADV, Op.STOREV, Op.NORM, Op.ROPE, Op.KVAPPEND,
                     Op.ATTN})


def cycles_per_token(compiled: C.Compiled, length: int) -> dict:
    """Cycles of one program run at attention length ``length``, total and per opcode."""
    total, per = CycleModel(compiled).run(length)
    return {"cycles": total, "by_op": per,
            "tokens_per_s": compiled.params.batch * compiled.params.clock_mhz * 1e6 / total}
