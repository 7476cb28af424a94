"""SDR SDRAM controller in Amaranth's simulator against the SDRAM cycle model
(tests/units/sdram_model.py): AXI4 bursts from two ports with random valid/ready gaps,
reads compared byte for byte with what was written, every command checked against the
chip's timing, refresh inside long bursts."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from fpgallm.units import sdram as S
from tests.units.sdram_model import SdramModel


def run(p: S.SdramParams, seed: int, n_ops: int = 24, gaps: float = 0.3, max_cycles: int = 60000):
    """Each port writes and reads back random bursts in its own half of a small window;
    returns (cycles, model, beats moved)."""
    print(f"seed {seed}: {p}")
    rng = np.random.default_rng(seed)
    dut = S.SdramController(p)
    model = SdramModel(p)
    bb = p.data_width // 8
    window = 1 << 15                       # bytes per port: several rows and banks
    ref = [bytearray(window) for _ in range(p.ports)]
    plans = []
    for j in range(p.ports):
        ops = []
        for k in range(n_ops):
            beats = int(rng.choice([1, 2, 3, 16, 64, int(rng.integers(1, 257))]))
            page = 4096 // bb
            start = int(rng.integers(0, window // bb - beats))
            # AXI: no 4 KiB crossing
            if start // page != (start + beats - 1) // page:
                start = (start + beats - 1) // page * page - beats if (start + beats - 1) // page * page >= beats else 0
            if k % 3 == 2:
                ops.append(("r", start * bb, beats))
            else:
                data = rng.integers(0, 256, beats * bb, dtype=np.uint8).tobytes()
                strb = (rng.random(beats * bb) > 0.2) if k % 2 else np.ones(beats * bb, bool)
                ops.append(("w", start * bb, beats, data, strb))
                ops.append(("r", start * bb, beats))
        plans.append(ops)
    out = {"cycles": 0, "beats": 0}

    async def bench(ctx):
        cyc = 0
        st = [{"ops": list(plans[j]), "ar": [], "rq": [], "aw": None, "w": [], "b": False}
              for j in range(p.ports)]
        while True:
            pins = dut.sdram
            dq = model.step(cyc, ctx.get(Cat4(pins)), ctx.get(pins.ba), ctx.get(pins.a), ctx.get(pins.dqm),
                            ctx.get(pins.dq_o), ctx.get(pins.dq_oe))
            ctx.set(pins.dq_i, dq)
            done = True
            for j in range(p.ports):
                s, port, base = st[j], getattr(dut, f"s{j}"), j * window
                # issue the next operation (reads may queue up to 3; a write waits for all)
                if s["ops"] and s["aw"] is None and not s["b"] and not s["w"]:
                    op = s["ops"][0]
                    if op[0] == "r" and len(s["ar"]) + len(s["rq"]) < 3:
                        s["ops"].pop(0)
                        s["ar"].append(op)
                    elif op[0] == "w" and not s["ar"] and not s["rq"]:
                        s["ops"].pop(0)
                        s["aw"] = op
                        _, addr, beats, data, strb = op
                        s["w"] = [(data[i * bb:(i + 1) * bb], strb[i * bb:(i + 1) * bb], i == beats - 1)
                                  for i in range(beats)]
                # AR
                arv = bool(s["ar"]) and rng.random() > gaps
                ctx.set(port.arvalid, arv)
                if s["ar"]:
                    _, addr, beats = s["ar"][0]
                    ctx.set(port.araddr, base + addr)
                    ctx.set(port.arlen, beats - 1)
                    ctx.set(port.arid, j + 1)
                    ctx.set(port.arsize, (bb - 1).bit_length())
                    ctx.set(port.arburst, 1)
                # AW / W
                awv = s["aw"] is not None and rng.random() > gaps
                ctx.set(port.awvalid, awv)
                if s["aw"] is not None:
                    ctx.set(port.awaddr, base + s["aw"][1])
                    ctx.set(port.awlen, s["aw"][2] - 1)
                    ctx.set(port.awid, j + 5)
                    ctx.set(port.awsize, (bb - 1).bit_length())
                    ctx.set(port.awburst, 1)
                wv = bool(s["w"]) and rng.random() > gaps
                ctx.set(port.wvalid, wv)
                if s["w"]:
                    d, sb, last = s["w"][0]
                    ctx.set(port.wdata, int.from_bytes(d, "little"))
                    ctx.set(port.wstrb, sum(1 << i for i, x in enumerate(sb) if x))
                    ctx.set(port.wlast, last)
                rr = rng.random() > gaps
                ctx.set(port.rready, rr)
                br = rng.random() > gaps
                ctx.set(port.bready, br)
                # handshakes (combinational outputs are settled after the sets)
                if arv and ctx.get(port.arready):
                    op = s["ar"].pop(0)
                    s["rq"].append([op, 0])
                if awv and ctx.get(port.awready):
                    s["aw"] = ("sent",) + s["aw"][1:]
                if wv and ctx.get(port.wready):
                    assert s["aw"] is not None and s["aw"][0] == "sent", f"port {j}: W taken before AW"
                    d, sb, last = s["w"].pop(0)
                    _, addr, beats, data, strb = s["aw"]
                    i = beats - 1 - len(s["w"])
                    for k in range(bb):
                        if sb[k]:
                            ref[j][addr + i * bb + k] = d[k]
                    out["beats"] += 1
                    if not s["w"]:
                        s["b"] = True
                        s["aw"] = None
                if ctx.get(port.bvalid) and br:
                    assert s["b"], f"cycle {cyc}: port {j}: B without a write"
                    assert ctx.get(port.bid) == j + 5, f"port {j}: bid {ctx.get(port.bid)}"
                    s["b"] = False
                if ctx.get(port.rvalid) and rr:
                    assert s["rq"], f"cycle {cyc}: port {j}: R beat without a read"
                    (op, i) = s["rq"][0]
                    _, addr, beats = op
                    got = ctx.get(port.rdata).to_bytes(bb, "little")
                    want = bytes(ref[j][addr + i * bb:addr + (i + 1) * bb])
                    assert got == want, (f"cycle {cyc}: port {j} read at {base + addr:#x} beat {i}/{beats}: "
                                         f"got {got.hex()} want {want.hex()}")
                    assert ctx.get(port.rlast) == (i == beats - 1), f"port {j}: rlast at beat {i}/{beats}"
                    assert ctx.get(port.rid) == j + 1
                    out["beats"] += 1
                    if i == beats - 1:
                        s["rq"].pop(0)
                    else:
                        s["rq"][0][1] = i + 1
                done = done and not (s["ops"] or s["ar"] or s["rq"] or s["aw"] or s["w"] or s["b"])
            if done:
                out["cycles"] = cyc
                return
            cyc += 1
            assert cyc < max_cycles, f"not finished after {max_cycles} cycles"
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out["cycles"], model, out["beats"]


def Cat4(pins):
    from amaranth.hdl import Cat
    return Cat(pins.we_n, pins.cas_n, pins.ras_n, pins.cs_n)


FAST = dict(init_us=2.0, refresh_ns=2000.0, col_bits=8)


@pytest.mark.parametrize("width,cl,ports", [(16, 2, 2), (64, 2, 2), (128, 3, 1), (32, 3, 3)])
def test_sdram_bursts_match_and_meet_timing(width, cl, ports, seed):
    # refresh every 50 cycles (25 MHz): many refreshes land inside bursts; 512-byte rows
    p = S.SdramParams(data_width=width, cas_latency=cl, ports=ports, **FAST)
    cyc, model, beats = run(p, seed + width + cl)
    print(f"{beats} beats in {cyc} cycles; commands {model.commands}")
    assert model.refs, "no refresh issued"
    assert model.commands.get("READ", 0) and model.commands.get("WRITE", 0)


def test_sdram_streams_near_the_burst_rate(seed):
    """One port, no gaps, a long read: about BL cycles per beat (the chip's 2 bytes per
    cycle) plus the row openings and refreshes."""
    p = S.SdramParams(data_width=64, ports=1, init_us=2.0)
    rng = np.random.default_rng(seed)
    del rng
    cyc, model, beats = run(p, seed, n_ops=6, gaps=0.0)
    ideal = beats * p.burst_length
    print(f"{beats} beats in {cyc} cycles, ideal {ideal}: {cyc / ideal:.2f}x")
    init = S.timing_cycles(p)["init"]
    assert cyc - init < 1.6 * ideal, (cyc, init, ideal)


@pytest.mark.parametrize("kwargs,message", [
    ({"data_width": 48}, "SdramParams.data_width must be 16, 32, 64 or 128 (16 x burst length), got 48"),
    ({"cas_latency": 1}, "SdramParams.cas_latency must be an integer in [2, 3], got 1"),
    ({"t_rcd_ns": 0}, "SdramParams.t_rcd_ns must be a positive number, got 0"),
])
def test_sdram_params_validation(kwargs, message):
    with pytest.raises(ValueError) as e:
        S.SdramParams(**kwargs)
    assert str(e.value) == message


def test_sdram_timing_and_address_map():
    p = S.SdramParams(clock_mhz=50.0)
    assert S.timing_cycles(p) == {"rcd": 1, "rp": 1, "ras": 3, "rfc": 4, "wr": 1, "mrd": 2,
                                  "refi": 390, "init": 10000}
    assert S.mode_register(p) == 0b010_0_010
    assert S.golden_address(p, 0x1234_5678 & (p.capacity_bytes - 1)) == (
        ((0x0345678 >> 1) >> 9) & 3, (0x0345678 >> 1) >> 11, (0x0345678 >> 1) & 511)
