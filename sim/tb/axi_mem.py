"""cocotb testbench of the AXI4 memory model (``sim/models/fpgallm_axi_mem.v``).

Checks it against cocotbext-axi's AxiMaster (random bursts, ids, strobes, concurrent
reads and writes), the image loaded from a plusarg, and its latency and bandwidth.
"""

from __future__ import annotations

from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from fpgallm.sim.axi_mem import AxiMemConfig, design, write_image
from fpgallm.sim.bench import Bench, Point, params_from_env
from fpgallm.sim.stream import np_rng_for, start_clock

IMAGE_SEED = 1234


def image_bytes(cfg: AxiMemConfig) -> bytes:
    n = min(1 << cfg.words_log2, 256) * cfg.bytes_per_beat
    return np.random.default_rng(IMAGE_SEED).integers(0, 256, size=n, dtype=np.uint8).tobytes()


def _prepare(cfg: AxiMemConfig, run_dir: Path) -> tuple[str, ...]:
    path = write_image(run_dir / "image.hex", image_bytes(cfg), cfg.data_width)
    return (f"+{cfg.plusarg}={path}",)


BENCH = Bench(
    unit="axi_mem",
    description="simulation AXI4 memory model: latency, bandwidth, image loading",
    points=(
        Point("w64-lat2-full", AxiMemConfig(data_width=64, read_latency=2, words_log2=12)),
        Point("w256-lat20-half", AxiMemConfig(data_width=256, read_latency=20, rate_num=1,
                                              rate_den=2, words_log2=12)),
        Point("w512-lat7-3of4", AxiMemConfig(data_width=512, read_latency=7, rate_num=3,
                                             rate_den=4, words_log2=10, max_outstanding=4)),
    ),
    generate=design,
    test_module=__name__,
    prepare=_prepare,
)


def _master(dut):
    from cocotbext.axi import AxiBus, AxiMaster

    return AxiMaster(AxiBus.from_prefix(dut, "s_axi"), dut.clk, dut.rst)


@cocotb.test()
async def test_image_loaded_from_plusarg(dut):
    cfg = params_from_env(AxiMemConfig)
    await start_clock(dut)
    master = _master(dut)
    img = image_bytes(cfg)
    got = await master.read(0, len(img))
    assert got.data == img, "memory image differs from the file given by the plusarg"


@cocotb.test()
async def test_random_bursts_against_model(dut):
    cfg = params_from_env(AxiMemConfig)
    await start_clock(dut)
    master = _master(dut)
    rng = np_rng_for("bursts")
    size = min(1 << cfg.words_log2, 256) * cfg.bytes_per_beat
    model = bytearray(image_bytes(cfg))
    for k in range(40):
        beats = int(rng.integers(1, 20))
        length = beats * cfg.bytes_per_beat
        addr = int(rng.integers(0, (size - length) // cfg.bytes_per_beat + 1)) * cfg.bytes_per_beat
        if rng.random() < 0.5:
            payload = rng.integers(0, 256, size=length, dtype=np.uint8).tobytes()
            await master.write(addr, payload, awid=int(rng.integers(0, 1 << cfg.id_width)))
            model[addr:addr + length] = payload
        else:
            got = await master.read(addr, length, arid=int(rng.integers(0, 1 << cfg.id_width)))
            exp = bytes(model[addr:addr + length])
            if got.data != exp:
                first = next(i for i in range(length) if got.data[i] != exp[i])
                raise AssertionError(f"burst {k} addr {addr:#x}: mismatch at byte {first}: "
                                     f"expected {exp[first]:#04x}, got {got.data[first]:#04x}")


@cocotb.test()
async def test_partial_strobes(dut):
    cfg = params_from_env(AxiMemConfig)
    await start_clock(dut)
    master = _master(dut)
    base = 3 * cfg.bytes_per_beat
    before = (await master.read(base, cfg.bytes_per_beat)).data
    await master.write(base + 5, b"\xAA\xBB\xCC")  # unaligned: only 3 byte lanes strobed
    after = (await master.read(base, cfg.bytes_per_beat)).data
    expect = bytearray(before)
    expect[5:8] = b"\xAA\xBB\xCC"
    assert after == bytes(expect)


@cocotb.test()
async def test_latency_and_bandwidth(dut):
    """Drive AR directly: first beat READ_LATENCY cycles after the handshake, then the
    configured rate (measured over back-to-back bursts)."""
    cfg = params_from_env(AxiMemConfig)
    await start_clock(dut)
    dut.s_axi_rready.value = 1
    bursts, beats_per = 8, 16
    issued = 0
    ar_cycle, first_r, r_cycles = None, None, []
    cycle = 0
    while len(r_cycles) < bursts * beats_per:
        if issued < bursts:
            dut.s_axi_arvalid.value = 1
            dut.s_axi_araddr.value = issued * beats_per * cfg.bytes_per_beat
            dut.s_axi_arlen.value = beats_per - 1
            dut.s_axi_arid.value = 0
        else:
            dut.s_axi_arvalid.value = 0
        await ReadOnly()
        if issued < bursts and dut.s_axi_arready.value:
            if ar_cycle is None:
                ar_cycle = cycle
            issued += 1
        if dut.s_axi_rvalid.value:
            r_cycles.append(cycle)
            if first_r is None:
                first_r = cycle
        await RisingEdge(dut.clk)
        cycle += 1
        assert cycle < 100_000, "timeout"
    assert first_r - ar_cycle == cfg.read_latency, (ar_cycle, first_r)
    span = r_cycles[-1] - r_cycles[0]
    rate = (len(r_cycles) - 1) / span
    expected = cfg.rate_num / cfg.rate_den
    dut._log.info(f"latency {first_r - ar_cycle} cycles, {rate:.4f} beats/cycle (configured {expected:.4f})")
    assert abs(rate - expected) <= 0.02 * expected, (rate, expected)
    assert int(dut.read_beats.value) >= len(r_cycles)
