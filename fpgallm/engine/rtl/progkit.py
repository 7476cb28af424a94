"""Small hand-built programs for testing execution units on the engine RTL against the
golden :class:`~fpgallm.engine.golden.Machine`.

:class:`ProgramBuilder` makes a :class:`~fpgallm.engine.compiler.Compiled` without a model:
int32 input vectors (``LOADV`` sources), output regions (``STOREV`` targets) and any other
region a unit needs (``add``), plus the instructions.  :func:`compare` runs it on both
engines and asserts that every output region holds the same values, reporting the first
mismatch with its index and both values.
"""

from __future__ import annotations

import numpy as np

from fpgallm.engine import compiler as C
from fpgallm.engine.golden import Machine
from fpgallm.engine.isa import Instruction, Op
from fpgallm.engine.params import EngineParams
from fpgallm.model.spec import preset


class ProgramBuilder:
    def __init__(self, params: EngineParams, spec=None, context: int = 16):
        self.p = params
        self.spec = spec or preset("tiny-llama").spec
        self.context = context
        self.img = C.MemoryImage(params.mem_ports, params.port_width // 8)
        self.sym: dict[str, int] = {}
        self.prog: list[Instruction] = []
        self.outputs: dict[str, int] = {}        # region name -> elements per sequence

    def add(self, name: str, nbytes: int, kind: str, data=None, **meta) -> int:
        r = self.img.add(name, nbytes, kind, data, **meta)
        self.sym[name] = r.addr
        return r.addr

    def vector(self, name: str, values, frac: int) -> int:
        """An int32 vector region (``LOADV`` mode 0); values must fit 24 bits."""
        v = np.asarray(values, dtype=np.int64)
        lim = 1 << (C.REG_BITS - 1)
        if v.min(initial=0) < -lim or v.max(initial=0) >= lim:
            raise ValueError(f"vector {name}: values must fit {C.REG_BITS} bits")
        return self.add(name, 4 * v.size, "vector", v, frac=frac)

    def output(self, name: str, n: int) -> int:
        """A region ``STOREV`` writes ``n`` elements per sequence to."""
        self.outputs[name] = n
        stripe = self.img.stripe
        return self.add(name, self.p.batch * C.row_bytes(n, stripe), "logits")

    def ins(self, op: Op, **fields) -> None:
        self.prog.append(Instruction(op, **fields))

    def compiled(self) -> C.Compiled:
        prog = list(self.prog)
        if not prog or prog[-1].op is not Op.HALT:
            prog.append(Instruction(Op.HALT))
        img = C.MemoryImage(self.img.ports, self.img.port_bytes, list(self.img.regions),
                            dict(self.img.by_addr), self.img.top)
        sym = dict(self.sym)
        r = img.add("program", 16 * len(prog), "program", prog)
        sym["program"] = r.addr
        return C.Compiled("progkit", self.spec, self.p, prog, img, sym, self.context, {})


def golden_outputs(c: C.Compiled, builder: ProgramBuilder, steps) -> list[dict[str, np.ndarray]]:
    """Run ``steps`` ((tokens, positions) per run) on the golden machine; the STOREV'd values."""
    mach = Machine(c)
    res = []
    for tokens, positions in steps:
        mach.stored.clear()
        mach.run(tokens, positions)
        res.append({name: mach.stored[builder.sym[name]].v.copy() for name in builder.outputs})
    return res


def compare(builder: ProgramBuilder, steps, *, sim=None, **sim_kw):
    """Run the builder's program on the RTL and the golden machine; assert equal outputs.

    Returns ``(rtl steps, golden outputs)``."""
    from fpgallm.engine.rtl.simrun import RtlSim

    c = builder.compiled()
    sim = sim or RtlSim(c, **sim_kw)
    names = tuple(builder.outputs)
    rtl = sim.steps(steps, regions=names)
    gold = golden_outputs(c, builder, steps)
    stripe = c.image.stripe
    for k, (r, g) in enumerate(zip(rtl, gold)):
        for name in names:
            n = builder.outputs[name]
            rb = C.row_bytes(n, stripe)
            exp = g[name]
            raw = r.regions[name]
            for b in range(exp.shape[0]):
                got = np.frombuffer(raw[b * rb:b * rb + 4 * n], dtype="<i4").astype(np.int64)
                bad = np.nonzero(got != exp[b])[0]
                if bad.size:
                    i = int(bad[0])
                    raise AssertionError(f"run {k}, region {name}, sequence {b}: first mismatch at "
                                         f"element {i}: RTL {int(got[i])}, golden {int(exp[b][i])}")
    return rtl, gold
