"""Python models of an execution unit's ports for Amaranth's simulator (unit-level tests
before the engine framework): memory read port over a byte image, vector register file
read/write ports and the exponent read port, with seeded random stalls.

``run_unit(unit, params, cmds, mem, vregs, exps)`` runs the instructions one after the other
and returns the written registers, the cycles of each instruction (cmd accepted -> done) and
the registers written.
"""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from fpgallm.engine.rtl import iface


class Ports:
    def __init__(self, params, mem: bytes, vregs: dict, exps: dict, stall: float, seed: int):
        self.p = params
        self.mem = mem
        self.vregs = {k: np.array(v, np.int64) for k, v in vregs.items()}   # (reg, seq) -> array
        self.exps = {k: np.array(v, np.int64) for k, v in exps.items()}
        self.stall = stall
        self.rng = np.random.default_rng(seed)
        self.W = iface.stripe_bits(params)
        self.writes: list[tuple] = []

    def _stall(self):
        return self.stall > 0 and self.rng.random() < self.stall

    async def mem_read(self, ctx, mr, latency: int = 3):
        WB = self.W // 8
        while True:
            ctx.set(mr.req.ready, 1)
            req, = await ctx.tick().sample(mr.req.payload).until(mr.req.valid)
            ctx.set(mr.req.ready, 0)
            addr, beats = int(req.addr), int(req.beats)
            assert addr % WB == 0, addr
            for _ in range(latency):
                await ctx.tick()
            for i in range(beats):
                while self._stall():
                    await ctx.tick()
                chunk = self.mem[addr + i * WB: addr + (i + 1) * WB]
                chunk = chunk + bytes(WB - len(chunk))
                ctx.set(mr.data.valid, 1)
                ctx.set(mr.data.payload, {"data": int.from_bytes(chunk, "little"), "last": int(i == beats - 1)})
                await ctx.tick().until(mr.data.ready)
                ctx.set(mr.data.valid, 0)

    async def vec_read(self, ctx, port, exps: bool = False):
        L = self.p.vector_lanes
        while True:
            ctx.set(port.req.ready, 1)
            req, = await ctx.tick().sample(port.req.payload).until(port.req.valid)
            ctx.set(port.req.ready, 0)
            key = (int(req.reg), int(req.seq))
            start, count = int(req.start), int(req.count)
            src = (self.exps if exps else self.vregs)[key]
            if exps:
                beats = [(int(src[start + i]), i == count - 1) for i in range(count)]
            else:
                nb = -(-count // L)
                beats = []
                for j in range(nb):
                    lanes = [int(src[start + j * L + i]) if j * L + i < count else 0 for i in range(L)]
                    beats.append((lanes, j == nb - 1))
            for v, last in beats:
                while self._stall():
                    await ctx.tick()
                ctx.set(port.data.valid, 1)
                ctx.set(port.data.payload, {"exp": v, "last": int(last)} if exps else {"data": v, "last": int(last)})
                await ctx.tick().until(port.data.ready)
                ctx.set(port.data.valid, 0)

    async def vec_write(self, ctx, port):
        L = self.p.vector_lanes
        while True:
            ctx.set(port.req.ready, 1)
            req, = await ctx.tick().sample(port.req.payload).until(port.req.valid)
            ctx.set(port.req.ready, 0)
            key = (int(req.reg), int(req.seq))
            start, count = int(req.start), int(req.count)
            reg = self.vregs.setdefault(key, np.zeros(self.p.vreg_elems if key[0] != 15 else self.p.max_vocab, np.int64))
            nb = -(-count // L)
            for j in range(nb):
                while self._stall():
                    await ctx.tick()
                ctx.set(port.data.ready, 1)
                beat, = await ctx.tick().sample(port.data.payload).until(port.data.valid)
                ctx.set(port.data.ready, 0)
                assert int(beat.last) == int(j == nb - 1), f"vw last flag wrong at beat {j} of {nb}"
                for i in range(L):
                    if j * L + i < count:
                        reg[start + j * L + i] = int(beat.data[i])
            self.writes.append((key, start, count))


def run_unit(unit, params, cmds: list[dict], mem: bytes, vregs: dict, exps: dict,
             stall: float = 0.0, seed: int = 0, mem_latency: int = 3, max_cycles: int = 2_000_000):
    """Run ``cmds`` (exec_cmd payload dicts) on ``unit``; returns (ports, cycles per cmd)."""
    ports = Ports(params, mem, vregs, exps, stall, seed)
    cycles: list[int] = []
    sim = Simulator(unit)
    sim.add_clock(1e-8)

    async def driver(ctx):
        for c in cmds:
            ctx.set(unit.cmd.valid, 1)
            ctx.set(unit.cmd.payload, c)
            await ctx.tick().until(unit.cmd.ready)
            ctx.set(unit.cmd.valid, 0)
            n = 0
            while True:
                await ctx.tick()
                n += 1
                assert n < max_cycles, "unit did not finish"
                if ctx.get(unit.done):
                    break
            cycles.append(n + 1)
        for _ in range(4):      # let the port models record the last beats
            await ctx.tick()

    sim.add_testbench(driver)
    async def p_mem(ctx):
        await ports.mem_read(ctx, unit.mr, mem_latency)

    async def p_vra(ctx):
        await ports.vec_read(ctx, unit.vra)

    async def p_vrb(ctx):
        await ports.vec_read(ctx, unit.vrb)

    async def p_era(ctx):
        await ports.vec_read(ctx, unit.era, exps=True)

    async def p_vw(ctx):
        await ports.vec_write(ctx, unit.vw)

    for proc in (p_mem, p_vra, p_vrb, p_era, p_vw):
        sim.add_process(proc)
    sim.run()
    # the port models wait forever; close them now, quietly (not an error of the design)
    import gc
    import sys
    hook = sys.unraisablehook
    sys.unraisablehook = lambda *_: None
    try:
        del sim, driver, p_mem, p_vra, p_vrb, p_era, p_vw, proc
        gc.collect()
    finally:
        sys.unraisablehook = hook
    return ports, cycles


def cmd(params, ins, frac_a=0, nseq=1, tokens=None, pos=None) -> dict:
    """An exec_cmd payload dict for instruction ``ins``."""
    from dataclasses import fields
    B = params.batch
    return {"ins": {f.name: (int(getattr(ins, f.name))) for f in fields(ins)},
            "frac_a": frac_a, "frac_b": 0, "nseq": nseq,
            "pos": list(pos or [0] * B) + [0] * (B - len(pos or [0] * B)),
            "token": list(tokens or [0] * B) + [0] * (B - len(tokens or [0] * B))}
