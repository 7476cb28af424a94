"""Weight prefetch buffer of the decode engine: a stream buffer on the memory read port.

It sits between the shared memory read port of the execution units and the controller
(``fg``, :func:`~fpgallm.engine.rtl.iface.mem_read_signature`) and the memory system
(``mem``).  The controller's ``PREFETCH`` starts a *stream* (``cmd``: byte address ``addr``
of a stripe word, ``words`` stripe words); from then on the buffer reads the stream from
memory in requests of :data:`CHUNK` words whenever it has room for them, while the
execution units work (vector units, attention, the controller's fetches: their reads go
past it to memory, ahead of the stream's requests).

Contract:

- ``cmd`` (stream of :func:`prefetch_cmd_layout`) is accepted when no stream word is in
  flight from memory and no buffered read is being served; it drops what the buffer holds
  and starts the new stream.
- A ``fg`` read request ``{addr, beats}`` *hits* when ``addr`` is the stream's next
  unread word and ``beats`` <= the stream's words not yet read: its words come from the
  buffer, the first one the cycle after the request is accepted when the buffer holds it
  (memory's read latency otherwise, as far as it is left), then one a cycle.  Any other
  request is passed to memory unchanged (a *miss*: the timing of the memory system).  Hits
  and misses are served in request order (a hit waits for earlier misses' data, a miss for
  the hit being served).
- The buffer never refuses a word it requested: a request is issued only with room for
  all its words (``prefetch_words`` deep, at most :data:`MAX_INFLIGHT` requests in
  flight), so memory's in-order read data always drains and misses cannot deadlock
  behind the stream.
- Memory traffic: a stream's words are read exactly once; a stream that is not read to
  its end stops when the buffer is full.

Sizes: ``prefetch_words`` stripe words of buffer (block RAM), a few 40-bit counters.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, ResetInserter, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from fpgallm.engine.params import MIN_PREFETCH_WORDS, EngineParams
from fpgallm.engine.rtl import iface

__all__ = ["CHUNK", "MAX_INFLIGHT", "IDLE_CHUNK", "IDLE_INFLIGHT", "WORDS_BITS", "prefetch_cmd_layout",
           "Prefetcher"]

CHUNK = MIN_PREFETCH_WORDS // 2    # stripe words per memory request of the stream
MAX_INFLIGHT = 2                   # stream requests in flight while a hit is served
IDLE_CHUNK = 8                     # words of a stream request otherwise ...
IDLE_INFLIGHT = 1                  # ... of which this many may be in flight
WORDS_BITS = 40                    # words of one stream: the ISA's n | m << 20


def prefetch_cmd_layout() -> data.StructLayout:
    return data.StructLayout({"addr": unsigned(iface.ADDR_BITS), "words": unsigned(WORDS_BITS)})


class Prefetcher(wiring.Component):
    """The stream buffer (module docstring); ``params.prefetch_words`` must be > 0."""

    def __init__(self, params: EngineParams):
        if params.prefetch_words == 0:
            self._MustUse__silence = True   # rejected, so never elaborated: no unused warning
            raise ValueError("EngineParams.prefetch_words is 0: the engine has no prefetch buffer")
        self.params = params
        super().__init__({
            "cmd": In(stream.Signature(prefetch_cmd_layout())),
            "fg": In(iface.mem_read_signature(params)),
            "mem": Out(iface.mem_read_signature(params)),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        D = p.prefetch_words
        sbytes = p.mem_ports * p.port_width // 8
        flush = Signal()                      # a new stream: drop the buffered words
        buf = ResetInserter(flush)(fifo.SyncFIFOBuffered(width=iface.stripe_bits(p), depth=D))
        m.submodules.buf = buf
        # which requester each memory request belongs to (1: the stream), in order
        m.submodules.tags = tags = fifo.SyncFIFO(width=1, depth=8)

        s_next = Signal(iface.ADDR_BITS)      # next stream word to request
        s_left = Signal(WORDS_BITS)           # stream words not yet requested
        h_addr = Signal(iface.ADDR_BITS)      # next stream word to hand to a hit
        h_left = Signal(WORDS_BITS)           # stream words not yet handed out (or asked for)
        serve = Signal(iface.BEATS_BITS)      # words of the hit being served still to send
        inflight = Signal(range(MAX_INFLIGHT * CHUNK + 1))   # stream words requested, not arrived
        reqs = Signal(range(max(MAX_INFLIGHT, IDLE_INFLIGHT) + 1))  # stream requests in flight
        misses = Signal(range(9))             # miss requests whose data has not all gone

        fg, mem, cmd = self.fg, self.mem, self.cmd

        # ---- requests
        hit = Signal()
        m.d.comb += hit.eq((h_left != 0) & (fg.req.payload.addr == h_addr)
                           & (fg.req.payload.beats != 0) & (fg.req.payload.beats <= h_left))
        take_hit = Signal()
        miss_go = Signal()
        m.d.comb += [take_hit.eq(fg.req.valid & hit & (serve == 0) & (misses == 0)),
                     miss_go.eq(fg.req.valid & ~hit & (serve == 0))]
        # while a hit streams to the requester (nothing else reads then) requests of CHUNK
        # words, MAX_INFLIGHT of them; otherwise IDLE_INFLIGHT of IDLE_CHUNK, so that a miss
        # finds at most IDLE_INFLIGHT * IDLE_CHUNK stream words ahead of its data
        # (MAX_INFLIGHT * CHUNK just after a hit).  Measured on tiny-llama (2 x 128-bit
        # ports, 128 words; benchmarks/engine_prefetch.py): 2 x 32 always 16,115 cycles per
        # run, 1 x 8 when idle 16,030, 3 x 8 when idle 16,054 (and 17,744 vs 17,796 with
        # the memory at 4/5 of the port rate)
        serving = Signal()
        m.d.comb += serving.eq(serve != 0)
        size = Signal(range(CHUNK + 1))
        m.d.comb += size.eq(Mux(serving, CHUNK, IDLE_CHUNK))
        n = Signal(range(CHUNK + 1))
        m.d.comb += n.eq(Mux(s_left < size, s_left, size))
        room = Signal()
        m.d.comb += room.eq(buf.level + inflight + n <= D)
        pf_go = Signal()
        m.d.comb += pf_go.eq(~miss_go & ~flush & (s_left != 0) & room
                             & (reqs < Mux(serving, MAX_INFLIGHT, IDLE_INFLIGHT)))

        m.d.comb += [mem.req.valid.eq((miss_go | pf_go) & tags.w_rdy),
                     mem.req.payload.addr.eq(Mux(miss_go, fg.req.payload.addr, s_next)),
                     mem.req.payload.beats.eq(Mux(miss_go, fg.req.payload.beats, n)),
                     fg.req.ready.eq(take_hit | (miss_go & mem.req.ready & tags.w_rdy)),
                     tags.w_data.eq(~miss_go), tags.w_en.eq(mem.req.valid & mem.req.ready)]
        pf_issue = Signal()
        m.d.comb += pf_issue.eq(pf_go & mem.req.ready & tags.w_rdy)
        miss_issue = Signal()
        m.d.comb += miss_issue.eq(miss_go & mem.req.ready & tags.w_rdy)
        with m.If(pf_issue):
            m.d.sync += [s_next.eq(s_next + n * sbytes), s_left.eq(s_left - n)]
        with m.If(take_hit):
            m.d.sync += [serve.eq(fg.req.payload.beats),
                         h_addr.eq(h_addr + fg.req.payload.beats * sbytes),
                         h_left.eq(h_left - fg.req.payload.beats)]

        # ---- read data: memory -> the miss's requester or the buffer
        to_buf = Signal()
        m.d.comb += to_buf.eq(tags.r_rdy & tags.r_data)
        arrive = Signal()
        m.d.comb += arrive.eq(mem.data.valid & to_buf)
        m.d.comb += [buf.w_data.eq(mem.data.payload.data), buf.w_en.eq(arrive)]
        miss_beat = Signal()
        m.d.comb += miss_beat.eq(tags.r_rdy & ~tags.r_data & mem.data.valid & fg.data.ready
                                 & (serve == 0))
        m.d.comb += mem.data.ready.eq(to_buf | (tags.r_rdy & ~tags.r_data & fg.data.ready & (serve == 0)))
        m.d.comb += tags.r_en.eq((arrive | miss_beat) & mem.data.payload.last)
        m.d.sync += inflight.eq(inflight + Mux(pf_issue, n, 0) - arrive)
        m.d.sync += reqs.eq(reqs + pf_issue - (arrive & mem.data.payload.last))
        m.d.sync += misses.eq(misses + miss_issue - (miss_beat & mem.data.payload.last))

        # ---- data to the requester: the hit being served, else the miss at the head
        with m.If(serve != 0):
            m.d.comb += [fg.data.valid.eq(buf.r_rdy), fg.data.payload.data.eq(buf.r_data),
                         fg.data.payload.last.eq(serve == 1), buf.r_en.eq(fg.data.ready)]
            with m.If(buf.r_rdy & fg.data.ready):
                m.d.sync += serve.eq(serve - 1)
        with m.Else():
            m.d.comb += [fg.data.valid.eq(tags.r_rdy & ~tags.r_data & mem.data.valid),
                         fg.data.payload.eq(mem.data.payload)]

        # ---- a new stream: drop the buffer's words (none in flight, none being served)
        m.d.comb += [cmd.ready.eq((inflight == 0) & (serve == 0)), flush.eq(cmd.valid & cmd.ready)]
        with m.If(flush):
            m.d.sync += [s_next.eq(cmd.payload.addr), s_left.eq(cmd.payload.words),
                         h_addr.eq(cmd.payload.addr), h_left.eq(cmd.payload.words)]
        return m
