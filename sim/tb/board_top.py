"""cocotb side of :func:`fpgallm.project.verify.verify_board_top`: drives a whole board design
(``fpgallm_board_sim``: the generated board top with the engine, the SDRAM controller and the
UART host bridge, and the behavioural SDRAM holding the image) through its serial line only,
as a host would.

The job (JSON at ``$FPGALLM_BOARD_JOB``) gives the bit time in cycles (``div``), the program
and logits addresses, the vocabulary and the runs (``steps``: token, position).  Per run the
testbench writes ``POS``/``TOKEN``/``NSEQ``/``PROG`` and ``CTRL`` through the bridge, waits for
the done LED, reads ``TOKEN``, the cycle counter and the logits (bridge memory reads through
the SDRAM controller), and appends them to the job's ``out`` JSON.
"""

from __future__ import annotations

import json
import os
import time

import cocotb
from cocotb.clock import Clock
from cocotb.queue import Queue
from cocotb.triggers import ClockCycles, FallingEdge

from fpgallm.engine.rtl import csr
from fpgallm.units import host_bridge as H

LED_SDRAM_READY, LED_DONE = 1, 3


class Uart:
    """The host's serial port: 8N1 at ``div`` clock cycles per bit."""

    def __init__(self, dut, div: int):
        self.dut, self.div = dut, div
        self.rx: Queue = Queue()
        dut.uart_rx.value = 1
        cocotb.start_soon(self._monitor())

    async def _monitor(self):
        dut, div = self.dut, self.div
        while True:
            await FallingEdge(dut.uart_tx)
            await ClockCycles(dut.clk, div // 2)
            if int(dut.uart_tx.value):
                continue
            b = 0
            for i in range(8):
                await ClockCycles(dut.clk, div)
                b |= int(dut.uart_tx.value) << i
            await ClockCycles(dut.clk, div)
            self.rx.put_nowait(b)

    async def send(self, data: bytes):
        for b in data:
            for bit in [0] + [(b >> i) & 1 for i in range(8)] + [1]:
                self.dut.uart_rx.value = bit
                await ClockCycles(self.dut.clk, self.div)

    async def recv(self, n: int) -> bytes:
        return bytes([await self.rx.get() for _ in range(n)])

    async def command(self, data: bytes, reply: int) -> bytes:
        await self.send(data)
        return await self.recv(reply)

    async def reg_write(self, off: int, value: int):
        r = await self.command(bytes([H.CMD_REG_WRITE, off]) + (value & 0xFFFFFFFF).to_bytes(4, "little"), 1)
        assert r == bytes([H.ACK]), f"register write 0x{off:02x}: reply {r.hex()}"

    async def reg_read(self, off: int) -> int:
        return int.from_bytes(await self.command(bytes([H.CMD_REG_READ, off]), 4), "little")

    async def mem_read(self, addr: int, n: int) -> bytes:
        return await self.command(bytes([H.CMD_READ]) + addr.to_bytes(4, "little") + n.to_bytes(4, "little"), n)


def _led(dut, bit: int) -> int:
    return (int(dut.led.value) >> bit) & 1


@cocotb.test()
async def board_run(dut):
    job = json.loads(open(os.environ["FPGALLM_BOARD_JOB"]).read())
    cocotb.start_soon(Clock(dut.clk, 40, unit="ns").start())
    uart = Uart(dut, job["div"])
    waited = 0
    while not _led(dut, LED_SDRAM_READY):
        await ClockCycles(dut.clk, 100)
        waited += 100
        assert waited < job["init_cycles"] * 2, f"SDRAM not initialised after {waited} cycles"
    assert await uart.command(bytes([H.CMD_PING]), 1) == bytes([H.ACK]), "no reply to ping"
    magic = await uart.reg_read(csr.REG_MAGIC)
    assert magic == csr.MAGIC, f"MAGIC register reads {magic:#x} through the bridge"
    prog, results, t0 = job["program"], [], time.time()
    for i, (tok, pos) in enumerate(job["steps"]):
        await uart.reg_write(csr.REG_SEQ, pos)
        await uart.reg_write(csr.REG_SEQ + 4, tok)
        await uart.reg_write(csr.REG_NSEQ, 1)
        await uart.reg_write(csr.REG_PROG_LO, prog & 0xFFFFFFFF)
        await uart.reg_write(csr.REG_PROG_HI, prog >> 32)
        await uart.reg_write(csr.REG_CTRL, 1)
        waited = 0
        while not _led(dut, LED_DONE):
            await ClockCycles(dut.clk, 256)
            waited += 256
            assert waited < job["max_cycles"], f"run {i}: not done after {waited} cycles"
        status = await uart.reg_read(csr.REG_STATUS)
        assert not status & 4, f"run {i}: STATUS 0x{status:x} (error)"
        nxt = await uart.reg_read(csr.REG_SEQ + 4)
        cycles = await uart.reg_read(csr.REG_CYCLES_LO)
        logits = await uart.mem_read(job["logits"], 4 * job["vocab"])
        results.append({"token": nxt, "cycles": cycles, "logits": logits.hex()})
        with open(job["progress"], "a") as f:
            f.write(f"board run {i} (token {tok}, position {pos}): {cycles} engine cycles, "
                    f"{time.time() - t0:.1f} s\n")
    with open(job["out"], "w") as f:
        json.dump(results, f)
