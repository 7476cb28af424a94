"""cocotb side of :class:`fpgallm.engine.rtl.simrun.RtlSim`: runs one job on the engine's
simulation top (not a unit bench: no ``BENCH``).

The job (JSON at ``$FPGALLM_ENGINE_JOB``) gives the program address, and either ``steps``
(tokens and positions per program run) or a greedy generation (``prompts``,
``max_new_tokens``, ...).  For every run the testbench writes ``POS``/``TOKEN``/``NSEQ`` (with
its ``CHUNK`` bit for a prompt chunk)
through AXI4-Lite (cocotbext-axi), starts the engine, waits for the ``done`` wire (the
clocks run in Verilator meanwhile), reads ``TOKEN`` and the cycle counter, and pulses the
memory models' ``dump`` for the asked ranges.  Results go to the job's ``out`` JSON file.
Progress (run, cycles, seconds) is appended to the job's ``progress`` file, which
:class:`~fpgallm.engine.rtl.simrun.RtlSim` echoes to the terminal.
"""

from __future__ import annotations

import json
import os
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
        self.rams = attach_rams(dut, job) if job.get("memory") == "cocotbext" else []
        self.dumps = 0
        self.t0 = time.time()

    async def setup(self):
        await self.axil.write_dword(csr.REG_PROG_LO, self.job["prog_addr"] & 0xFFFFFFFF)
        await self.axil.write_dword(csr.REG_PROG_HI, self.job["prog_addr"] >> 32)
        magic = await self.axil.read_dword(csr.REG_MAGIC)
        assert magic == csr.MAGIC, f"MAGIC register reads {magic:#x}, expected {csr.MAGIC:#x}"

    async def reset_during_run(self, step):
        """Start a run, assert reset ``reset_after`` cycles later, then set up again."""
        dut, ax = self.dut, self.axil
        await ax.write_dword(csr.REG_NSEQ, len(step["tokens"]))
        for b, (t, p) in enumerate(zip(step["tokens"], step["positions"])):
            await ax.write_dword(csr.REG_SEQ + 8 * b, int(p))
            await ax.write_dword(csr.REG_SEQ + 8 * b + 4, int(t))
        await ax.write_dword(csr.REG_CTRL, 1)
        await ClockCycles(dut.clk, int(step["reset_after"]))
        assert int(dut.busy.value), "the run finished before the reset; choose a smaller reset_after"
        dut.rst.value = 1
        await ClockCycles(dut.clk, 3)
        dut.rst.value = 0
        await ClockCycles(dut.clk, 2)
        assert not int(dut.busy.value), "busy after reset"
        await self.setup()

    async def step(self, tokens, positions, chunk=False):
        dut, ax = self.dut, self.axil
        n = len(tokens)
        await ax.write_dword(csr.REG_NSEQ, n | (int(bool(chunk)) << 8))
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
        if self.rams:
            read_back(self.job, self.rams, len(self.results))
        for lo_w, hi_w in ([] if self.rams else self.job["dumps"]):
            dut.dump_lo.value = lo_w
            dut.dump_hi.value = hi_w
            dut.dump.value = 1
            await RisingEdge(dut.clk)
            dut.dump.value = 0
            await RisingEdge(dut.clk)
        cycles = lo | (hi << 32)
        self.results.append({"tokens": out, "cycles": cycles, "positions": [int(p) for p in positions]})
        with open(self.job["progress"], "a") as fh:
            fh.write(f"fpgallm: rtl run {len(self.results)} (positions {list(positions)}): {cycles} cycles, "
                     f"{time.time() - self.t0:.1f} s\n")
        return out


def attach_rams(dut, job) -> list:
    """cocotbext-axi AXI RAMs on the engine's memory ports, loaded with the per-port images,
    with random pauses on every channel when ``job["backpressure"]`` (seeded)."""
    import random

    from cocotbext.axi import AxiBus, AxiRam

    rng = random.Random(int(os.environ.get("FPGALLM_SEED", "1")))
    rams = []
    for j, path in enumerate(job["port_images"]):
        data = open(path, "rb").read()
        size = 1 << max(12, (len(data) - 1).bit_length())
        ram = AxiRam(AxiBus.from_prefix(dut, f"axi{j}_"), dut.clk, dut.rst, size=size)
        ram.write(0, data)
        if job.get("backpressure"):
            def pauses(seed):
                r = random.Random(seed)
                while True:
                    yield r.random() < 0.3
            for ch in (ram.write_if.aw_channel, ram.write_if.w_channel, ram.write_if.b_channel,
                       ram.read_if.ar_channel, ram.read_if.r_channel):
                ch.set_pause_generator(pauses(rng.getrandbits(32)))
        rams.append(ram)
    return rams


def read_back(job, rams, index: int) -> None:
    """Write the asked regions of every port RAM to ``<dir>/ram<j>.<index>.bin``."""
    for j, ram in enumerate(rams):
        for k, (lo, hi) in enumerate(job["dumps"]):
            B = job["port_bytes"]
            with open(f"{job['dump_dir']}/ram{j}.{index * len(job['dumps']) + k}.bin", "wb") as fh:
                fh.write(ram.read(lo * B, (hi - lo + 1) * B))


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
    if job.get("memory") != "cocotbext":
        dut.dump.value = 0
    await start_clock(dut)
    host = Host(dut, job)
    await host.setup()
    result = {}
    if job["mode"] == "steps":
        for step in job["steps"]:
            if isinstance(step, dict):          # {"reset_after": N, "tokens": [...], "positions": [...]}
                await host.reset_during_run(step)
            else:
                await host.step(*step)
    else:
        sched = greedy_schedule(job["prompts"], job["max_new_tokens"], job["context"], job["eos"],
                                job["stop_at_eos"], chunk=job["chunk"])
        try:
            run = next(sched)
            while True:
                nxt = await host.step(*run)
                run = sched.send(nxt)
        except StopIteration as stop:
            result["outs"] = stop.value
    result["steps"] = host.results
    with open(job["out"], "w") as fh:
        json.dump(result, fh)
