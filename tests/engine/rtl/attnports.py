"""Python models of an execution unit's shared ports for Amaranth-simulator unit tests:
vector register file (``vra``/``vrb``/``vw``), striped memory (``mr``/``mw`` with ``wdone``).

``run_unit(unit, params, cmd, regs, mem)`` drives one ``cmd`` beat, serves the ports until
``done`` and returns the cycles from the command's acceptance to ``done``.  ``regs`` maps
``(reg, seq)`` to a list of ints (written in place by ``vw``), ``mem`` is a ``bytearray``
(written in place by ``mw``).  Latencies: register reads ``VREAD_LATENCY`` cycles from the
request to the first beat, memory reads ``MREAD_LATENCY``, write responses
``WDONE_LATENCY`` after the last data beat.
"""

from __future__ import annotations

from amaranth.sim import Simulator

from fpgallm.engine.rtl.iface import REG_BITS, stripe_bits

VREAD_LATENCY = 2
MREAD_LATENCY = 6
WDONE_LATENCY = 5


def _signed(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def run_unit(unit, p, cmd: dict, regs: dict, mem: bytearray, max_cycles: int = 200000,
             mread_latency: int = MREAD_LATENCY, stall: float = 0.0, seed: int = 0):
    """... (module docstring); ``stall`` > 0: every cycle each port's ready (and each not yet
    offered data beat's valid) is withheld with that probability (seeded by ``seed``)."""
    import random
    rng = random.Random(seed)

    def go():
        return stall == 0.0 or rng.random() >= stall

    L = p.vector_lanes
    wb = stripe_bits(p) // 8
    result = {"cycles": None, "start": None}
    sim = Simulator(unit)
    sim.add_clock(1e-8)

    vports = {"vra": unit.vra, "vrb": unit.vrb}

    async def ports(ctx):
        """All port models in one process, one iteration per cycle (deterministic timing):
        a register read's first beat is valid ``VREAD_LATENCY`` cycles after the cycle its
        request was accepted, a memory read's first word ``mread_latency`` cycles after,
        and ``wdone`` pulses ``WDONE_LATENCY`` cycles after a write request's last beat."""
        now = 0
        vr = {k: None for k in vports}      # [vals, start, count, beat, ready_at, offered]
        moff = False                        # memory read word offered (held until taken)
        rrdy = {k: False for k in vports}
        vw = None                           # [vals, start, count, beat]
        mq = []                             # [addr, beats, word, ready_at]
        mwc = None                          # [addr, beats, beat]
        pending = []                        # cycles at which wdone pulses
        while True:
            for k, port in vports.items():
                r = vr[k]
                rrdy[k] = r is None and go()
                ctx.set(port.req.ready, int(rrdy[k]))
                live = r is not None and now >= r[4] and (r[5] or go())
                if live:
                    r[5] = True
                ctx.set(port.data.valid, int(live))
                if live:
                    vals, start, count, beat = r[:4]
                    nb = -(-count // L)
                    data = [vals[start + beat * L + j] if start + beat * L + j < len(vals) else 0
                            for j in range(L)]
                    ctx.set(port.data.payload, {"data": data, "last": int(beat == nb - 1)})
            vwr, vwd, mrr = vw is None and go(), vw is not None and go(), go()
            ctx.set(unit.vw.req.ready, int(vwr))
            ctx.set(unit.vw.data.ready, int(vwd))
            ctx.set(unit.mr.req.ready, int(mrr))
            mlive = bool(mq) and now >= mq[0][3] and (moff or go())
            moff = mlive
            ctx.set(unit.mr.data.valid, int(mlive))
            if mlive:
                addr, beats, k, _ = mq[0]
                a = addr + k * wb
                ctx.set(unit.mr.data.payload, {"data": int.from_bytes(bytes(mem[a:a + wb]), "little"),
                                               "last": int(k == beats - 1)})
            mwr, mwd = mwc is None and go(), mwc is not None and go()
            ctx.set(unit.mw.req.ready, int(mwr))
            ctx.set(unit.mw.data.ready, int(mwd))
            ctx.set(unit.mw.wdone, int(bool(pending) and pending[0] == now))
            if pending and pending[0] == now:
                pending.pop(0)
            sigs = []
            for port in (unit.vra, unit.vrb, unit.vw, unit.mr, unit.mw):
                sigs += [port.req.valid, port.req.payload]
            sigs += [unit.vra.data.ready, unit.vrb.data.ready, unit.vw.data.valid,
                     unit.vw.data.payload, unit.mr.data.ready, unit.mw.data.valid,
                     unit.mw.data.payload]
            _, _, *v = await ctx.tick().sample(*sigs)
            (ra_v, ra_p, rb_v, rb_p, w_v, w_p, mr_v, mr_p, mw_v, mw_p,
             ra_dr, rb_dr, wd_v, wd_p, mr_dr, mwd_v, mwd_p) = v
            for k, rv, rp, dr in (("vra", ra_v, ra_p, ra_dr), ("vrb", rb_v, rb_p, rb_dr)):
                r = vr[k]
                if r is not None and r[5] and dr:
                    r[3] += 1
                    r[5] = False
                    if r[3] == -(-r[2] // L):
                        vr[k] = None
                elif rrdy[k] and rv:
                    assert rp.start % L == 0, f"register read start {rp.start} is not a multiple of {L}"
                    vr[k] = [regs[(rp.reg, rp.seq)], rp.start, rp.count, 0, now + VREAD_LATENCY, False]
            if vwd and wd_v:
                vals, start, count, beat = vw
                for j in range(L):
                    e = beat * L + j
                    if e < count:
                        vals[start + e] = _signed(int(wd_p.data[j]), REG_BITS)
                nb = -(-count // L)
                assert wd_p.last == (beat == nb - 1), "vw: last flag misplaced"
                vw[3] += 1
                if vw[3] == nb:
                    vw = None
            elif vwr and w_v:
                vals = regs.setdefault((w_p.reg, w_p.seq), [])
                if len(vals) < w_p.start + w_p.count:
                    vals.extend([0] * (w_p.start + w_p.count - len(vals)))
                vw = [vals, w_p.start, w_p.count, 0]
            if mlive and mr_dr:
                moff = False
                mq[0][2] += 1
                if mq[0][2] == mq[0][1]:
                    mq.pop(0)
                    if mq:
                        mq[0][3] = max(mq[0][3], now + 1)
            if mrr and mr_v:
                assert mr_p.addr % wb == 0, f"memory read address {mr_p.addr:#x} not on a stripe word"
                mq.append([mr_p.addr, mr_p.beats, 0, now + mread_latency])
            if mwd and mwd_v:
                word, strb = int(mwd_p.data), int(mwd_p.strb)
                a = mwc[0] + mwc[2] * wb
                for i in range(wb):
                    if strb >> i & 1:
                        mem[a + i] = (word >> (8 * i)) & 0xFF
                mwc[2] += 1
                if mwc[2] == mwc[1]:
                    mwc = None
                    pending.append(now + WDONE_LATENCY)
            elif mwr and mw_v:
                assert mw_p.addr % wb == 0, f"memory write address {mw_p.addr:#x} not on a stripe word"
                mwc = [mw_p.addr, mw_p.beats, 0]
            now += 1

    cmds = cmd if isinstance(cmd, list) else [cmd]
    result["all"] = []

    async def main(ctx):
        for c in cmds:
            ctx.set(unit.cmd.valid, 1)
            ctx.set(unit.cmd.payload, c)
            while True:
                _, _, rdy = await ctx.tick().sample(unit.cmd.ready)
                if rdy:
                    break
            ctx.set(unit.cmd.valid, 0)
            n = 0
            while not ctx.get(unit.done):
                await ctx.tick()
                n += 1
                assert n < max_cycles, "unit did not finish"
            result["cycles"] = n
            result["all"].append(n)
            await ctx.tick()

    sim.add_process(ports)
    sim.add_testbench(main)
    sim.run()
    return result["cycles"]


def make_cmd(p, ins, frac_a=0, frac_b=0, pos=(0,), token=None):
    nseq = len(pos)
    pos = list(pos) + [0] * (p.batch - nseq)
    token = list(token or [0] * p.batch)
    return {"ins": {k: int(getattr(ins, k)) for k in
                    ("op", "dst", "a", "b", "mode", "n", "m", "addr", "imm")},
            "frac_a": frac_a, "frac_b": frac_b, "nseq": nseq, "pos": pos, "token": token}
