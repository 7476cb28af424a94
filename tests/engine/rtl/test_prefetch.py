"""The weight prefetch buffer (fpgallm/engine/rtl/prefetch.py) in Amaranth's simulator: a
requester on ``fg`` mixing stream hits, misses and stream restarts under random stalls
against a pipelined in-order memory model on ``mem``.  Scoreboard: every read returns the
memory's words in order; every stream word is read from memory at most once; misses reach
memory unchanged; hits never do; a buffered hit's first word comes the next cycle."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
from amaranth.sim import Simulator

from fpgallm.engine.params import EngineParams
from fpgallm.engine.rtl.prefetch import CHUNK, MAX_INFLIGHT, Prefetcher

SB = 8                                 # stripe bytes: 1 port x 64 bits


def params(depth=64):
    return EngineParams(mem_ports=1, port_width=64, prefetch_words=depth)


def word(addr: int) -> int:
    return (addr // SB) * 0x9E3779B1 % (1 << 64)


def simulate(depth: int, ops: list, seed: int, stall: float, latency: int = 6):
    """Run ``ops`` (``("cmd", addr, words)``, ``("req", addr, beats)``, ``("drain",)``,
    ``("idle", n)``) on a Prefetcher; returns the memory's request log, the log of the
    requester's reads ``(addr, beats, accept cycle, first word cycle)`` and the peak of
    stream words requested ahead of the requester."""
    dut = Prefetcher(params(depth))
    rng = np.random.default_rng(seed)
    mem_log, reads = [], []

    async def memory(ctx):
        queue, cur, i, cycle = deque(), None, 0, 0
        while True:
            rdy = rng.random() >= stall
            ctx.set(dut.mem.req.ready, rdy)
            if cur is None and queue and queue[0][0] <= cycle:
                cur, i = queue.popleft(), 0
            dv = cur is not None and rng.random() >= stall
            ctx.set(dut.mem.data.valid, dv)
            if dv:
                ctx.set(dut.mem.data.payload, {"data": word(cur[1] + i * SB), "last": int(i == cur[2] - 1)})
            *_clk, rv, addr, beats, dr = await ctx.tick().sample(
                dut.mem.req.valid, dut.mem.req.payload.addr, dut.mem.req.payload.beats, dut.mem.data.ready)
            if rdy and rv:
                mem_log.append((int(addr), int(beats)))
                queue.append((cycle + latency, int(addr), int(beats)))
            if dv and dr:
                i += 1
                if i == cur[2]:
                    cur = None
            cycle += 1

    async def requester(ctx):
        expected = deque()            # (index into reads, expected word)
        cycle = 0
        todo = deque(ops)
        while todo or expected:
            op = todo[0] if todo else ("drain",)
            ctx.set(dut.cmd.valid, op[0] == "cmd")
            ctx.set(dut.fg.req.valid, op[0] == "req")
            if op[0] == "cmd":
                ctx.set(dut.cmd.payload, {"addr": op[1], "words": op[2]})
            if op[0] == "req":
                ctx.set(dut.fg.req.payload, {"addr": op[1], "beats": op[2]})
            dr = stall == 0 or rng.random() >= stall
            ctx.set(dut.fg.data.ready, dr)
            *_clk, cv, cr, qv, qr, dv, data, last = await ctx.tick().sample(
                dut.cmd.valid, dut.cmd.ready, dut.fg.req.valid, dut.fg.req.ready,
                dut.fg.data.valid, dut.fg.data.payload.data, dut.fg.data.payload.last)
            if dv and dr:
                k, want = expected.popleft()
                assert int(data) == want, (cycle, k, reads[k], hex(int(data)), hex(want))
                assert int(last) == (not expected or expected[0][0] != k), (cycle, k)
                if reads[k][3] is None:
                    reads[k][3] = cycle
            if op[0] == "cmd" and cv and cr:
                todo.popleft()
            elif op[0] == "req" and qv and qr:
                reads.append([op[1], op[2], cycle, None])
                expected.extend((len(reads) - 1, word(op[1] + j * SB)) for j in range(op[2]))
                todo.popleft()
            elif op[0] == "drain" and not expected and todo:
                todo.popleft()
            elif op[0] == "idle":
                todo[0] = ("idle", op[1] - 1)
                if op[1] <= 1:
                    todo.popleft()
            cycle += 1
            assert cycle < 20000, ("stuck at", op)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_process(memory)
    sim.add_testbench(requester)
    sim.run()
    return mem_log, reads


def stream_requests(mem_log, base, words):
    return [(a, b) for a, b in mem_log if base <= a < base + words * SB]


# a stream of 200 words at 0x1000 read as a GEMV does (header, then the body) with misses
# in between; a second stream abandoned after 1 word; a third read to its end; a request
# longer than what is left of a stream; a stream restarted while its requests are in flight
OPS = [("cmd", 0x1000, 200), ("req", 0x8000, 3), ("req", 0x1000, 1), ("req", 0x9000, 5),
       ("drain",), ("req", 0x1008, 150), ("req", 0xA000, 2), ("req", 0x1000 + 151 * SB, 49),
       ("drain",),
       ("cmd", 0x4000, 500), ("req", 0x4000, 1), ("req", 0xB000, 70), ("drain",),
       ("cmd", 0x6000, 90), ("idle", 40), ("req", 0x6000, 1), ("drain",), ("req", 0x6008, 89),
       ("cmd", 0x7000, 100), ("req", 0x7000, 101), ("drain",),
       ("cmd", 0x2000, 300), ("cmd", 0x3000, 40), ("req", 0x3000, 40), ("drain",)]
MISSES = [(0x8000, 3), (0x9000, 5), (0xA000, 2), (0xB000, 70), (0x7000, 101)]
STREAMS = [(0x1000, 200, True), (0x4000, 500, False), (0x6000, 90, True), (0x7000, 100, False),
           (0x2000, 300, False), (0x3000, 40, True)]


@pytest.mark.parametrize("depth", [64, 128])
@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_prefetch_hits_misses_and_restarts(seed, depth, stall):
    mem_log, reads = simulate(depth, OPS, seed + depth, stall)
    # misses reach memory unchanged, hits never do
    assert [r for r in mem_log if r in MISSES] == MISSES, mem_log
    rest = [r for r in mem_log if r not in MISSES]
    assert all(any(b <= a < b + w * SB for b, w, _ in STREAMS) for a, _n in rest), rest
    for base, words, consumed in STREAMS:
        got = stream_requests(rest, base, words)
        addrs = [a + j * SB for a, n in got for j in range(n)]
        # each stream word from memory at most once, in order, in requests of <= CHUNK
        assert addrs == [base + j * SB for j in range(len(addrs))], (hex(base), got)
        assert all(n <= CHUNK for _a, n in got), got
        if consumed:
            assert len(addrs) == words, (hex(base), len(addrs))
        else:   # abandoned: what fits the buffer plus the requests in flight
            assert len(addrs) <= min(words, depth + MAX_INFLIGHT * CHUNK), (hex(base), len(addrs))
    assert len(reads) == sum(1 for op in OPS if op[0] == "req")


def test_buffered_hit_answers_the_next_cycle(seed):
    """With the stream in the buffer (idle while it fills) a hit's first word comes one cycle
    after the request is accepted; a miss pays the memory's latency."""
    ops = [("cmd", 0x1000, 64), ("idle", 60), ("req", 0x1000, 1), ("drain",),
           ("req", 0x1008, 63), ("drain",), ("req", 0x9000, 4), ("drain",)]
    _mem_log, reads = simulate(64, ops, seed, 0.0, latency=6)
    lat = [first - acc for _a, _b, acc, first in reads]
    assert lat[:2] == [1, 1], reads
    assert lat[2] >= 6, reads


def test_prefetcher_needs_a_buffer():
    with pytest.raises(ValueError) as exc:
        Prefetcher(EngineParams())
    assert str(exc.value) == "EngineParams.prefetch_words is 0: the engine has no prefetch buffer"


@pytest.mark.parametrize("bad", [32, 100, 1 << 17])
def test_prefetch_words_validation(bad):
    with pytest.raises(ValueError) as exc:
        EngineParams(prefetch_words=bad)
    msg = str(exc.value)
    if bad == 100:
        assert msg == "EngineParams.prefetch_words must be 0 or a power of two, got 100"
    else:
        assert msg == f"EngineParams.prefetch_words must be an integer in [64, 65536], got {bad}"
