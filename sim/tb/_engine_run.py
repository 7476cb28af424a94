"""cocotb side of :class:`fpgallm.engine.rtl.simrun.RtlSim`: runs one job on the engine's
simulation top (not a unit bench: no ``BENCH``).

The job (JSON at ``$FPGALLM_ENGINE_JOB``) gives the program address, and either ``steps``
(tokens and positions per program run) or a greedy generation (``prompts``,
``max_new_tokens``, ...).  For every run the testbench writes ``POS``/``TOKEN``/``NSEQ``
through AXI4-Lite (cocotbext-axi), starts the engine, waits for the ``done`` wire (the
clocks run in Verilator meanwhile), reads ``TOKEN`` and the cycle counter, and pulses the
memory models' ``dump`` for the asked ranges.  Results go to the job's ``out`` JSON file.
Progress (run, cycles) is printed to stderr for long runs.
"""

from __future__ import annotations

import json
import os
import sys
import time

import cocotb
from cocotb.triggers import ClockCycles, First, RisingEdge

from fpgallm.engine.generation import greedy_schedule
from fpgallm.engine.rtl import csr
from fpgallm.sim.stream import start_clock


class Host:
    def __init__(self, dut, job):
        from cocotbext.axi import AxiLiteBus, AxiLiteMaster

        self.dut = dut
        self.job = job
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "axil_"), dut.clk, dut.rst)
        self.results = []
        self.dumps = 0
        self.t0 = time.time()

    async def setup(self):
        await self.axil.write_dword(csr.REG_PROG_LO, self.job["prog_addr"] & 0xFFFFFFFF)
        await self.axil.write_dword(csr.REG_PROG_HI, self.job["prog_addr"] >> 32)
        magic = await self.axil.read_dword(csr.REG_MAGIC)
        assert magic == csr.MAGIC, f"MAGIC register reads {magic:#x}, expected {csr.MAGIC:#x}"

    async def step(self, tokens, positions):
        dut, ax = self.dut, self.axil
        n = len(tokens)
        await ax.write_dword(csr.REG_NSEQ, n)
        for b, (t, p) in enumerate(zip(tokens, positions)):
            await ax.write_dword(csr.REG_SEQ + 8 * b, int(p))
            await ax.write_dword(csr.REG_SEQ + 8 * b + 4, int(t))
        await ax.write_dword(csr.REG_CTRL, 1)
        limit = int(self.job.get("max_cycles", 50_000_000))
        fired = await First(RisingEdge(dut.done), ClockCycles(dut.clk, limit))
        if not int(dut.done.value):
            pc = await ax.read_dword(csr.REG_PC)
            status = await ax.read_dword(csr.REG_STATUS)
            raise AssertionError(f"engine did not finish within {limit} cycles: pc {pc}, status {status:#x}"
                                 + _internal_state(dut))
        del fired
        status = await ax.read_dword(csr.REG_STATUS)
        if status & 4:
            op = await ax.read_dword(csr.REG_ERROR)
            pc = await ax.read_dword(csr.REG_PC)
            raise AssertionError(f"engine stopped with an error at pc {pc}: opcode {op:#x} has no unit")
        lo = await ax.read_dword(csr.REG_CYCLES_LO)
        hi = await ax.read_dword(csr.REG_CYCLES_HI)
        out = [await ax.read_dword(csr.REG_SEQ + 8 * b + 4) for b in range(n)]
        for lo_w, hi_w in self.job["dumps"]:
            dut.dump_lo.value = lo_w
            dut.dump_hi.value = hi_w
            dut.dump.value = 1
            await RisingEdge(dut.clk)
            dut.dump.value = 0
            await RisingEdge(dut.clk)
        cycles = lo | (hi << 32)
        self.results.append({"tokens": out, "cycles": cycles})
        print(f"fpgallm: run {len(self.results)}: {cycles} cycles "
              f"({time.time() - self.t0:.1f} s)", file=sys.stderr, flush=True)
        return out


def _internal_state(dut) -> str:
    """Handshake signals of the engine's internals (visible when built with public_all)."""
    out = []

    def walk(h, prefix, depth):
        if depth > 3:
            return
        try:
            children = list(h)
        except TypeError:
            return
        for c in children:
            name = f"{prefix}.{c._name}"
            try:
                v = c.value
                if any(k in c._name for k in ("valid", "ready", "state", "left", "fetching", "sel", "done", "have", "busy")):
                    out.append(f"{name}={v}")
            except Exception:
                walk(c, name, depth + 1)

    try:
        walk(dut.engine, "engine", 0)
    except AttributeError:
        return ""
    return "\n" + "\n".join(out)


@cocotb.test()
async def run_job(dut):
    job = json.loads(open(os.environ["FPGALLM_ENGINE_JOB"]).read())
    dut.dump.value = 0
    await start_clock(dut)
    host = Host(dut, job)
    await host.setup()
    result = {}
    if job["mode"] == "steps":
        for tokens, positions in job["steps"]:
            await host.step(tokens, positions)
    else:
        sched = greedy_schedule(job["prompts"], job["max_new_tokens"], job["context"], job["eos"],
                                job["stop_at_eos"])
        try:
            tokens, positions = next(sched)
            while True:
                nxt = await host.step(tokens, positions)
                tokens, positions = sched.send(nxt)
        except StopIteration as stop:
            result["outs"] = stop.value
    result["steps"] = host.results
    with open(job["out"], "w") as fh:
        json.dump(result, fh)
