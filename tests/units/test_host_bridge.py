"""UART host bridge in Amaranth's simulator: a serial-line model sends commands, an AXI4
memory model and a register model answer with random delays; memory bytes, register values
and every reply byte are checked."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from fpgallm.units import host_bridge as H


class SerialHost:
    """The host end of the serial line, one call per clock cycle: sends each ``(command
    bytes, reply length)`` once the previous command's reply has arrived (the protocol is
    half duplex), with random idle gaps between bytes, and decodes tx mid-bit."""

    def __init__(self, div: int, commands, rng):
        self.div, self.pending, self.rng = div, list(commands), rng
        self.got = bytearray()
        self.expect, self.wave, self.pos = 0, [1] * 20, 0
        self.t = {"state": "idle", "cnt": 0, "bits": []}

    def _waveform(self, data: bytes) -> list[int]:
        div, wave = self.div, []
        for b in data:
            wave += [0] * div + sum(([(b >> i) & 1] * div for i in range(8)), []) + [1] * div
            wave += [1] * int(self.rng.integers(0, 3 * div))
        return wave

    def rx(self, may_send: bool = True) -> int:
        """The rx level for this cycle."""
        if self.pos >= len(self.wave) and self.pending and len(self.got) >= self.expect and may_send:
            data, n_reply = self.pending.pop(0)
            self.wave, self.pos = self._waveform(data), 0
            self.expect += n_reply
        level = self.wave[self.pos] if self.pos < len(self.wave) else 1
        self.pos += 1
        return level

    def tx(self, level: int, cyc: int) -> None:
        t, div = self.t, self.div
        if t["state"] == "idle" and level == 0:
            t.update(state="bits", cnt=div + div // 2, bits=[])
        elif t["state"] == "bits":
            t["cnt"] -= 1
            if t["cnt"] == 0:
                if len(t["bits"]) < 8:
                    t["bits"].append(level)
                    t["cnt"] = div
                else:
                    assert level == 1, f"cycle {cyc}: stop bit low"
                    self.got.append(sum(b << i for i, b in enumerate(t["bits"])))
                    t["state"] = "idle"

    def finished(self) -> bool:
        return (self.pos >= len(self.wave) and not self.pending and len(self.got) >= self.expect
                and self.t["state"] == "idle")


def simulate(p: H.HostBridgeParams, commands, mem: bytearray, regs: dict, seed: int,
             max_cycles: int = 400000) -> bytes:
    """Send each ``(command bytes, reply length)`` of ``commands`` on rx after the previous
    command's reply has arrived (the protocol is half duplex); returns every byte seen on tx."""
    rng = np.random.default_rng(seed)
    dut = H.HostBridge(p)
    div = p.divider
    bb = p.data_width // 8
    host = SerialHost(div, commands, rng)

    async def bench(ctx):
        cyc = 0
        aw, w, bq, rq = None, None, [], []
        quiet = 0
        while True:
            ctx.set(dut.rx, host.rx())
            tx = ctx.get(dut.tx)
            host.tx(tx, cyc)
            # memory: AW/W/B and AR/R with random readiness
            mp = dut.mem
            ctx.set(mp.awready, rng.random() > 0.5)
            ctx.set(mp.wready, rng.random() > 0.5)
            ctx.set(mp.arready, rng.random() > 0.5)
            if ctx.get(mp.awvalid) and ctx.get(mp.awready):
                assert ctx.get(mp.awlen) == 0 and ctx.get(mp.awsize) == (bb - 1).bit_length()
                aw = ctx.get(mp.awaddr)
            if ctx.get(mp.wvalid) and ctx.get(mp.wready):
                w = (ctx.get(mp.wdata), ctx.get(mp.wstrb))
            if aw is not None and w is not None:
                base = aw // bb * bb
                data = w[0].to_bytes(bb, "little")
                for i in range(bb):
                    if (w[1] >> i) & 1:
                        mem[base + i] = data[i]
                assert bin(w[1]).count("1") == 1 and (w[1] >> (aw % bb)) & 1, f"strobe {w[1]:#x} for {aw:#x}"
                bq.append(int(rng.integers(0, 4)))
                aw = w = None
            bv = bool(bq) and bq[0] == 0
            ctx.set(mp.bvalid, bv)
            if bq and bq[0] > 0:
                bq[0] -= 1
            if bv and ctx.get(mp.bready):
                bq.pop(0)
            if ctx.get(mp.arvalid) and ctx.get(mp.arready):
                a = ctx.get(mp.araddr) // bb * bb
                rq.append([int(rng.integers(0, 4)), int.from_bytes(bytes(mem[a:a + bb]), "little")])
            rv = bool(rq) and rq[0][0] == 0
            ctx.set(mp.rvalid, rv)
            ctx.set(mp.rlast, 1)
            if rq:
                ctx.set(mp.rdata, rq[0][1])
                if rq[0][0] > 0:
                    rq[0][0] -= 1
            if rv and ctx.get(mp.rready):
                rq.pop(0)
            # registers (AXI4-Lite)
            cp = dut.csr
            ctx.set(cp.awready, 1)
            ctx.set(cp.wready, rng.random() > 0.5)
            if ctx.get(cp.wvalid) and ctx.get(cp.wready):
                regs[ctx.get(cp.awaddr)] = ctx.get(cp.wdata)
                ctx.set(cp.bvalid, 1)
            ctx.set(cp.arready, 1)
            if ctx.get(cp.arvalid):
                ctx.set(cp.rvalid, 1)
                ctx.set(cp.rdata, regs.get(ctx.get(cp.araddr), 0))
            if ctx.get(cp.rready) and ctx.get(cp.rvalid):
                pass
            if not ctx.get(cp.bready):
                pass
            quiet = quiet + 1 if (host.finished() and tx == 1) else 0
            if quiet > 30 * div:
                return
            cyc += 1
            assert cyc < max_cycles, "bridge did not finish"
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return bytes(host.got)


def u32(x):
    return int(x).to_bytes(4, "little")


@pytest.mark.parametrize("width", [8, 64])
def test_bridge_memory_and_registers(width, seed):
    print("seed", seed + width)
    rng = np.random.default_rng(seed + width)
    p = H.HostBridgeParams(clock_mhz=25.0, baud=5_000_000, data_width=width)   # 5 cycles per bit
    mem = bytearray(256)
    payload = rng.integers(0, 256, 19, dtype=np.uint8).tobytes()
    cmds = [(bytes([H.CMD_PING]), 1),
            (bytes([H.CMD_WRITE]) + u32(37) + u32(len(payload)) + payload, 1),
            (bytes([H.CMD_READ]) + u32(35) + u32(len(payload) + 4), len(payload) + 4),
            (bytes([H.CMD_REG_WRITE, 0x14]) + u32(0xDEADBEEF), 1),
            (bytes([H.CMD_REG_READ, 0x14]), 4),
            (bytes([H.CMD_REG_READ, 0x00]), 4),
            (bytes([0x7F]), 1)]
    regs = {0x00: 0x4650474C}
    got = simulate(p, cmds, mem, regs, seed)
    want = (bytes([H.ACK]) + bytes([H.ACK]) + bytes(2) + payload + bytes(2)
            + bytes([H.ACK]) + u32(0xDEADBEEF) + u32(0x4650474C) + bytes([H.NAK]))
    assert mem[37:37 + len(payload)] == payload
    assert mem[:37] == bytes(37) and mem[37 + len(payload):] == bytes(256 - 37 - len(payload))
    assert regs[0x14] == 0xDEADBEEF
    assert got == want, f"replies {got.hex()} want {want.hex()}"


@pytest.mark.parametrize("kwargs,message", [
    ({"baud": 7_000_000}, "HostBridgeParams.baud 7000000 at 25 MHz is 3.57 cycles per bit: needs at least 4, "
                          "within 2 % of an integer"),
    ({"baud": 115200, "clock_mhz": 1.0}, "HostBridgeParams.baud 115200 at 1 MHz is 8.68 cycles per bit: "
                                          "needs at least 4, within 2 % of an integer"),
    ({"data_width": 48}, "HostBridgeParams.data_width must be a power of two, got 48"),
])
def test_bridge_params_validation(kwargs, message):
    with pytest.raises(ValueError) as e:
        H.HostBridgeParams(**kwargs)
    assert str(e.value) == message


def test_bridge_writes_and_reads_the_sdram_through_the_controller(seed):
    """The board top's memory path without the engine: the bridge's AXI4 master on port 1 of
    the SDRAM controller (connected with wiring.connect), the SDRAM cycle model behind it."""
    from amaranth.hdl import Cat, Module
    from amaranth.lib import wiring

    from fpgallm.units import sdram as S
    from tests.units.sdram_model import SdramModel

    print("seed", seed)
    rng = np.random.default_rng(seed)
    hp = H.HostBridgeParams(clock_mhz=25.0, baud=5_000_000, data_width=64)
    sp = S.SdramParams(data_width=64, ports=2, clock_mhz=25.0, init_us=2.0, refresh_ns=2000.0)
    bridge, ctrl = H.HostBridge(hp), S.SdramController(sp)
    top = Module()
    top.submodules.bridge, top.submodules.ctrl = bridge, ctrl
    wiring.connect(top, bridge.mem, ctrl.s1)
    model = SdramModel(sp)
    payload = rng.integers(0, 256, 13, dtype=np.uint8).tobytes()
    cmds = [(bytes([H.CMD_WRITE]) + u32(1021) + u32(len(payload)) + payload, 1),
            (bytes([H.CMD_READ]) + u32(1019) + u32(len(payload) + 4), len(payload) + 4)]
    host = SerialHost(hp.divider, cmds, rng)

    async def bench(ctx):
        cyc = 0
        pins = ctrl.sdram
        while True:
            dq = model.step(cyc, ctx.get(Cat(pins.we_n, pins.cas_n, pins.ras_n, pins.cs_n)), ctx.get(pins.ba),
                            ctx.get(pins.a), ctx.get(pins.dqm), ctx.get(pins.dq_o), ctx.get(pins.dq_oe))
            ctx.set(pins.dq_i, dq)
            ctx.set(bridge.rx, host.rx(may_send=bool(ctx.get(ctrl.ready))))
            host.tx(ctx.get(bridge.tx), cyc)
            if host.finished():
                return
            cyc += 1
            assert cyc < 100000, "did not finish"
            await ctx.tick()

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert bytes(host.got) == bytes([H.ACK]) + bytes(2) + payload + bytes(2), host.got.hex()
    assert model.read_bytes(1021, len(payload)) == payload
    assert model.commands.get("WRITE", 0) == len(payload) and model.refs
