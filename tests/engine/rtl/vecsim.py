"""A cycle model of the engine's shared ports for testing one execution unit in Amaranth's
Python simulator: vector register file (read A/B, write), exponent file (read/write), flat
memory (stripe-word reads).  Every port is driven with seeded random valid/ready gaps.

:func:`run_unit` runs one command and returns the register file after it, the scalar results
and the cycles from the command beat to ``done``.
"""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from fpgallm.engine.rtl import iface


class _Regs:
    """Per (reg, seq) int arrays (elements) and exponent arrays (groups)."""

    def __init__(self, p, regs, exps):
        self.p = p
        self.v = {k: np.array(x, np.int64).copy() for k, x in regs.items()}
        self.e = {k: np.array(x, np.int64).copy() for k, x in (exps or {}).items()}


def _signed(v, w):
    v &= (1 << w) - 1
    return v - (1 << w) if v >> (w - 1) else v


def run_unit(unit, p, cmd: dict, regs: dict, exps: dict | None = None, mem: bytes = b"",
             seed: int = 0, gaps: float = 0.3, max_cycles: int = 200000):
    """Simulate ``unit`` (a ``Unit(p)``) executing ``cmd`` (a dict for exec_cmd_layout).

    ``regs``: ``{(reg, seq): int array}``, ``exps``: ``{(reg, seq): int array}`` (groups).
    ``gaps``: probability that a port model is not valid / not ready in a cycle.
    Returns ``(regs, exps, sres, cycles)``."""
    rng = np.random.default_rng(seed)
    L = p.vector_lanes
    st = _Regs(p, regs, exps)
    sb = iface.stripe_bits(p) // 8
    out = {"sres": None, "cycles": None}

    sim = Simulator(unit)
    sim.add_clock(1e-8)

    def gap():
        return gaps > 0 and rng.random() < gaps

    async def bench(ctx):
        # per port state
        rd = {"vra": [], "vrb": [], "era": [], "mr": []}     # queued beats (payload dicts)
        wr = {"vw": [], "ew": []}                              # queued write targets
        cmd_sent = False
        cyc = 0
        ready_r = {}
        while True:
            # ---- drive: command, read data sources, request / data ready
            ctx.set(unit.cmd.valid, 0 if cmd_sent else 1)
            if not cmd_sent:
                ctx.set(unit.cmd.payload, cmd)
            for name in rd:
                port = getattr(unit, name)
                if rd[name] and not gap():
                    ctx.set(port.data.valid, 1)
                    ctx.set(port.data.payload, rd[name][0])
                else:
                    ctx.set(port.data.valid, 0)
            for name in ("vra", "vrb", "era", "mr", "vw", "ew"):
                ready_r[name] = 0 if gap() else 1
                getattr(unit, name).req.ready  # noqa: B018
                ctx.set(getattr(unit, name).req.ready, ready_r[name])
            for name in ("vw", "ew"):
                ctx.set(getattr(unit, name).data.ready, 0 if (not wr[name] or gap()) else 1)
            # ---- sample (combinational settle) and apply the transfers of this cycle
            if not cmd_sent and ctx.get(unit.cmd.ready):
                cmd_sent = True
                cyc = 0
            for name in ("vra", "vrb", "era"):
                port = getattr(unit, name)
                if rd[name] and ctx.get(port.data.valid) and ctx.get(port.data.ready):
                    rd[name].pop(0)
                if ctx.get(port.req.valid) and ready_r[name]:
                    r = ctx.get(port.req.payload)
                    reg, seq, start, count = int(r.reg), int(r.seq), int(r.start), int(r.count)
                    if name == "era":
                        src = st.e[(reg, seq)]
                        for k in range(count):
                            rd[name].append({"exp": int(src[start + k]), "last": int(k == count - 1)})
                    else:
                        assert start % L == 0, f"{name}: start {start} not a multiple of {L}"
                        src = st.v[(reg, seq)]
                        nb = -(-count // L)
                        for b in range(nb):
                            lanes = [int(src[start + b * L + k]) if b * L + k < count and
                                     start + b * L + k < src.size else 0 for k in range(L)]
                            rd[name].append({"data": lanes, "last": int(b == nb - 1)})
            if rd["mr"] and ctx.get(unit.mr.data.valid) and ctx.get(unit.mr.data.ready):
                rd["mr"].pop(0)
            if ctx.get(unit.mr.req.valid) and ready_r["mr"]:
                r = ctx.get(unit.mr.req.payload)
                addr, beats = int(r.addr), int(r.beats)
                assert addr % sb == 0, f"mr: address {addr:#x} not stripe aligned ({sb})"
                for b in range(beats):
                    chunk = mem[addr + b * sb: addr + (b + 1) * sb].ljust(sb, b"\0")
                    rd["mr"].append({"data": int.from_bytes(chunk, "little"), "last": int(b == beats - 1)})
            for name in ("vw", "ew"):
                port = getattr(unit, name)
                if wr[name] and ctx.get(port.data.valid) and ctx.get(port.data.ready):
                    reg, seq, pos, count, start = wr[name][0]
                    d = ctx.get(port.data.payload)
                    if name == "ew":
                        st.e.setdefault((reg, seq), np.zeros(p.vreg_elems // iface.ACT_GROUP + 1, np.int64))
                        st.e[(reg, seq)][start + pos] = int(d.exp)
                        pos += 1
                        last = pos == count
                    else:
                        size = p.max_vocab if reg == iface.LOGITS_REG else p.vreg_elems
                        st.v.setdefault((reg, seq), np.zeros(size, np.int64))
                        for k in range(L):
                            if pos + k < count:
                                st.v[(reg, seq)][start + pos + k] = int(d.data[k])
                        pos += L
                        last = pos >= count
                        assert bool(d.last) == last, f"vw: last flag {int(d.last)} at element {pos - L} of {count}"
                    if last:
                        wr[name].pop(0)
                    else:
                        wr[name][0] = (reg, seq, pos, count, start)
                if ctx.get(port.req.valid) and ready_r[name]:
                    r = ctx.get(port.req.payload)
                    wr[name].append((int(r.reg), int(r.seq), 0, int(r.count), int(r.start)))
            if ctx.get(unit.done):
                out["sres"] = [int(x) for x in ctx.get(unit.sres)]
                out["cycles"] = cyc
                for name in rd:
                    assert not rd[name], f"{name}: beats left unread at done"
                for name in wr:
                    assert not wr[name], f"{name}: writes incomplete at done"
                return
            cyc += 1
            assert cyc < max_cycles, "unit did not finish"
            await ctx.tick()

    sim.add_testbench(bench)
    sim.run()
    return st.v, st.e, out["sres"], out["cycles"]


def cmd_dict(p, op, dst=0, a=0, b=0, mode=0, n=0, m=0, addr=0, imm=0, frac_a=0, frac_b=0,
             nseq=1, pos=None, token=None):
    ins = {"op": int(op), "dst": dst, "a": a, "b": b, "mode": mode, "n": n, "m": m, "addr": addr,
           "imm": imm}
    pos = list(pos or [0] * p.batch) + [0] * p.batch
    token = list(token or [0] * p.batch) + [0] * p.batch
    return {"ins": ins, "frac_a": frac_a, "frac_b": frac_b, "nseq": nseq,
            "pos": pos[:p.batch], "token": token[:p.batch]}
