"""Performance model: prefill and decode cycles of a model on an engine and a board.

The cycles are the golden engine's own cycle model (:class:`fpgallm.engine.cycles.CycleModel`,
the cost of every instruction of the compiled program), evaluated on a program compiled
without weights (:func:`fpgallm.engine.compiler.compile_shapes`: same program, same memory
layout, same region sizes as a compile with weights).  Nothing here is fitted to published
numbers.

Definitions (``B`` = batch, ``N`` = context, ``f`` = clock):

* one *program run* decodes one token for each of the ``B`` sequences; its cycles at
  attention length ``l`` are ``CycleModel.run(l)`` (the units' cycles, dispatch and
  instruction fetches, as the engine RTL counts them);
* decode: ``tokens/s = B * f / cycles(N)`` (the token at position ``N - 1`` attending over
  ``N`` positions);
* prefill runs the program token by token as the engine does (positions ``0 .. N-1`` of a
  prompt of ``N`` tokens, ``B`` prompts together); the last run gives the first token, so
  ``TTFT = sum(cycles(l), l = 1..N) / f``; one prompt alone on a batch-``B`` engine
  prefills in chunks of ``B`` positions (``ttft_one_prompt_s``,
  :func:`prefill_chunked_cycles`): ``ceil((N - 1) / B)`` runs, then the last token;
* bytes per run: the off-chip bytes the program moves (weights streamed by GEMV, the
  embedding row, norm weights, RoPE rows, KV reads and appends, vector loads/stores);
  the board's memory-bound ceiling is ``B * peak_bandwidth / bytes_per_run`` tokens/s
  (``peak_bandwidth`` of the memory the engine uses, from the board file) and the
  design's fraction is ``tokens/s / ceiling``.

Memory latency: ``EngineParams.mem_latency`` is the memory system's read latency; each unit
waits for it where its RTL does (at least once per instruction with an off-chip operand,
twice for a GEMV's header and first weights, once per sequence for row loads), and every
instruction fetch waits for it.  The estimator sets it from
:data:`MEM_LATENCY_NS` of the board's memory type (an assumption, see there) at the clock.

Engine parameters for a board: :func:`estimate_params` starts from
:func:`fpgallm.estimate.engine_plan.initial_engine_params` and makes them realisable by the
current units, recording every change in ``notes`` (see its docstring); the estimator then
shrinks the knobs the user left open until the engine fits
(:func:`fpgallm.estimate.engine_plan.fit_engine_params`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from fpgallm.boards import Board, Memory
from fpgallm.engine import compiler as C
from fpgallm.engine.cycles import CycleModel
from fpgallm.engine.isa import Op
from fpgallm.engine.params import EngineParams
from fpgallm.errors import UserError
from fpgallm.estimate.engine_plan import (GEMV_MAX_LANES, GEMV_MAX_WORD_BITS, MIN_WORD_BITS, NoEngine,
                                          NoEngineError, engine_memory, initial_engine_params)
from fpgallm.model.quant import Q4_0, Q4_1, Q8_0, INT8_PER_CHANNEL, QuantScheme, int4_group

# Read latency of one memory request, ns, per memory type (first data beat after the
# address, page hit, at the AXI port of the user logic).  OUR ASSUMPTION, not a measurement:
# the order of the read latencies that Shuhai (Wang et al., "Shuhai: Benchmarking High
# Bandwidth Memory on FPGAs", FCCM 2020, arXiv:2005.04324) reports for the U280's HBM2 and
# DDR4 (a hundred to a few hundred ns through the vendor controllers); PS memory adds the
# SoC interconnect (HP ports); serial flash pays command + address + dummy cycles.
MEM_LATENCY_NS = {
    "HBM2": 150.0, "HBM2e": 150.0, "DDR4": 120.0, "DDR3": 120.0, "DDR3L": 120.0,
    "LPDDR4": 150.0, "GDDR6": 150.0, "SDRAM": 60.0, "QSPI-NOR": 1000.0,
}
PS_EXTRA_LATENCY_NS = 60.0   # our assumption: PL -> PS HP port -> DDR controller
DEFAULT_LATENCY_NS = 150.0   # a memory type not in the table


WEIGHT_SCHEMES: dict[str, QuantScheme] = {
    "q8_0": Q8_0, "q4_0": Q4_0, "q4_1": Q4_1, "int8": INT8_PER_CHANNEL,
    "int4-g64": int4_group(64), "int4-g128": int4_group(128),
    "int4-g64-min": int4_group(64, True), "int4-g128-min": int4_group(128, True),
}
DEFAULT_WEIGHTS = "q4_1"
DEFAULT_CONTEXT = 1024


def memory_latency_ns(mem: Memory) -> float:
    ns = MEM_LATENCY_NS.get(mem.type, DEFAULT_LATENCY_NS)
    return ns + (PS_EXTRA_LATENCY_NS if mem.side == "ps" else 0.0)


def latency_cycles(mem: Memory, clock_mhz: float) -> int:
    return int(math.ceil(memory_latency_ns(mem) * clock_mhz / 1000.0))


def weight_scheme(name: str) -> QuantScheme:
    try:
        return WEIGHT_SCHEMES[name.lower()]
    except KeyError:
        raise UserError(f"unknown --weights {name!r}; choose one of {', '.join(WEIGHT_SCHEMES)}") from None


def _pow2_floor(x: float) -> int:
    return 1 << max(0, int(math.floor(math.log2(max(x, 1)))))


@dataclass(frozen=True)
class Knobs:
    """User overrides of the engine parameters (None: the board's default)."""

    lanes: int | None = None          # gemv_lanes
    macs: int | None = None           # gemv_macs
    ports: int | None = None          # mem_ports
    port_width: int | None = None
    clock_mhz: float | None = None
    vector_lanes: int | None = None
    kv_format: str | None = None      # "int8" / "int16"
    prefetch_words: int | None = None  # weight prefetch buffer (stripe words; 0: none)


def estimate_params(board: Board, batch: int = 1, context: int = DEFAULT_CONTEXT,
                    knobs: Knobs = Knobs(), spec=None) -> tuple[EngineParams, Memory, list[str]]:
    """Engine parameters for ``board``, the memory they stream from, and notes.

    Start: :func:`~fpgallm.estimate.engine_plan.initial_engine_params` (one port per channel
    of the fastest writable memory, ports as wide as a channel at the fabric clock rounded
    up to a power of two).  Then, unless the user set the knob:

    * the port width is rounded *down* to a power of two a channel can sustain at the clock
      (ports faster than the memory would make the cycle model promise bandwidth the
      board does not have);
    * the GEMV takes one word of at most ``GEMV_MAX_WORD_BITS`` bits with at most
      ``GEMV_MAX_LANES`` lanes (the unit's limits): the number of ports is cut to fit;
    * ``mem_bytes`` = the memory's capacity, ``max_context`` >= ``context``, ``batch``,
      ``mem_latency`` from :func:`latency_cycles`;
    * with ``spec``: the on-chip buffers are sized to that model (``max_dim``, ``max_ffn``,
      ``max_vocab`` = its dimensions, ``max_context`` = ``context``): the engine generated for
      it, whose resources the resource model then checks against the board.

    User knobs are taken as given; a port bandwidth above the memory's peak is an error.
    """

    notes: list[str] = []
    try:
        p = initial_engine_params(board)
        mem = engine_memory(board)
    except NoEngine as e:
        raise NoEngineError(str(e)) from None
    clock = float(knobs.clock_mhz if knobs.clock_mhz is not None else p.clock_mhz)
    ports = p.mem_ports if knobs.ports is None else knobs.ports
    width = p.port_width
    if knobs.port_width is not None:
        width = knobs.port_width
    else:
        chan_bits = mem.peak_gbps / mem.channels * 8e9 / (clock * 1e6)
        fit = max(MIN_WORD_BITS, min(1024, _pow2_floor(chan_bits)))
        if fit != width:
            notes.append(f"port width {width} -> {fit} bits: one {mem.type} channel carries "
                         f"{chan_bits:.0f} bits per cycle at {clock:g} MHz")
            width = fit
    if knobs.ports is None:
        ports = min(64, mem.channels)         # the planner's ports were for its own width
    if knobs.ports is None and ports * width > GEMV_MAX_WORD_BITS:
        cut = max(1, GEMV_MAX_WORD_BITS // width)
        notes.append(f"memory ports {ports} -> {cut}: the GEMV consumes one word of at most "
                     f"{GEMV_MAX_WORD_BITS} bits per cycle ({cut} x {width} bits); "
                     f"{ports - cut} of the {mem.channels} {mem.type} channels stay unused")
        ports = cut
    lanes = p.gemv_lanes if knobs.lanes is None else knobs.lanes
    if knobs.lanes is None and lanes > GEMV_MAX_LANES:
        notes.append(f"GEMV lanes {lanes} -> {GEMV_MAX_LANES} (the unit's limit)")
        lanes = GEMV_MAX_LANES
    if knobs.lanes is None:
        while lanes > 1 and (ports * width) % (lanes * 8):
            lanes //= 2
    kw = dict(gemv_lanes=lanes, mem_ports=ports, port_width=width, clock_mhz=clock,
              batch=batch, max_context=max(p.max_context, context),
              mem_bytes=min(1 << 40, max(1 << 16, mem.capacity_bytes)))
    if spec is not None:
        up = lambda x, m: max(m, -(-x // m) * m)  # noqa: E731
        kw.update(max_dim=up(spec.d_model, 64), max_ffn=up(spec.d_ffn, 64),
                  max_vocab=max(2, spec.vocab_size), max_context=context,
                  max_head_dim=spec.head_dim)
    if knobs.macs is not None:
        kw["gemv_macs"] = knobs.macs
    if knobs.vector_lanes is not None:
        kw["vector_lanes"] = knobs.vector_lanes
    if knobs.prefetch_words is not None:
        kw["prefetch_words"] = knobs.prefetch_words
    if knobs.kv_format is not None:
        from fpgallm.engine.params import KVFormat
        try:
            kw["kv_format"] = KVFormat(knobs.kv_format)
        except ValueError:
            raise UserError(f"--kv {knobs.kv_format!r}: choose int8 or int16") from None
    if (knobs.clock_mhz, knobs.ports, knobs.port_width) == (None, None, None) and \
            ports * width / 8 * clock * 1e6 > mem.peak_gbps * 1e9 * 1.0001:
        slow = math.floor(mem.peak_gbps * 1e9 / (ports * width / 8) / 1e6 * 10) / 10
        notes.append(f"clock {clock:g} -> {slow:g} MHz: {ports} x {width}-bit ports (the narrowest) "
                     f"would outrun the {mem.type}'s {mem.peak_gbps:g} GB/s")
        clock = slow
        kw["clock_mhz"] = clock
    try:
        params = dataclasses.replace(p, **kw)
        params = dataclasses.replace(params, mem_latency=latency_cycles(mem, clock))
    except ValueError as e:
        raise UserError(str(e)) from None
    port_gbs = params.peak_bandwidth_gbs
    if port_gbs > mem.peak_gbps * 1.0001:
        raise UserError(f"the engine's ports ({params.mem_ports} x {params.port_width} bits at "
                        f"{params.clock_mhz:g} MHz = {port_gbs:.1f} GB/s) exceed the {mem.type} "
                        f"peak of {board.name} ({mem.peak_gbps:g} GB/s); lower --ports, --port-width "
                        f"or --clock-mhz")
    return params, mem, notes


# --- bytes moved ------------------------------------------------------------------------------

def bytes_moved(compiled: C.Compiled, ins, length: int) -> tuple[int, int]:
    """(bytes read, bytes written) off-chip by one instruction for all ``B`` sequences."""
    p, B, s = compiled.params, compiled.params.batch, compiled.spec
    op = ins.op
    if op is Op.GEMV:
        return compiled.image.by_addr[ins.addr].nbytes, 0
    if op is Op.EMBED:
        r = compiled.image.by_addr[ins.addr]
        rows = r.data.rows
        return B * -(-r.nbytes // rows), 0
    if op is Op.LOADV:
        return B * 4 * ins.n, 0
    if op is Op.STOREV:
        return 0, B * 4 * ins.n
    if op is Op.NORM:
        return compiled.image.by_addr[ins.addr].nbytes, 0
    if op is Op.ROPE:
        return B * 2 * ins.n, 0                      # cos + sin (hd/2 each, 2 bytes) of one position
    if op is Op.KVAPPEND:
        hd = s.head_dim
        return 0, B * 2 * (ins.n // hd) * (hd * p.kv_format.bits // 8 + 1)
    if op is Op.ATTN:
        hd, KVH = ins.n, ins.m >> 10
        return B * 2 * KVH * length * (hd * p.kv_format.bits // 8 + 1), 0
    return 0, 0


# --- the estimate -----------------------------------------------------------------------------

@dataclass
class PerfEstimate:
    model: str
    board: str
    params: EngineParams
    scheme: str
    batch: int
    context: int
    clock_mhz: float
    decode_cycles: int                 # one program run at attention length = context
    decode_by_op: dict[str, int]
    prefill_cycles: int                # B prompts of `context` tokens together, token by token
    bytes_read: int                    # per decode run (all B sequences)
    bytes_written: int
    weight_bytes: int
    kv_bytes: int                      # KV cache region bytes (all layers, B sequences, context)
    image_bytes: int                   # everything the engine keeps off-chip
    memory: str                        # the memory the engine streams from
    memory_peak_gbps: float
    mem_latency_cycles: int
    notes: list[str] = field(default_factory=list)

    @property
    def f_hz(self) -> float:
        return self.clock_mhz * 1e6

    @property
    def tokens_per_s(self) -> float:
        return self.batch * self.f_hz / self.decode_cycles

    @property
    def ttft_s(self) -> float:
        """Time to first token of ``batch`` prompts prefilled together, token by token."""
        return self.prefill_cycles / self.f_hz

    @property
    def ttft_one_prompt_s(self) -> float:
        """Time to first token of one prompt alone, prefilled in chunks of ``batch`` positions."""
        return (self.prefill_chunked_cycles or self.prefill_cycles) / self.f_hz

    @property
    def bytes_per_run(self) -> int:
        return self.bytes_read + self.bytes_written

    @property
    def bytes_per_token(self) -> float:
        return self.bytes_per_run / self.batch

    @property
    def ceiling_tokens_per_s(self) -> float:
        """The board's memory-bound ceiling: peak bandwidth / bytes per token."""
        return self.memory_peak_gbps * 1e9 / self.bytes_per_token

    @property
    def ceiling_fraction(self) -> float:
        return self.tokens_per_s / self.ceiling_tokens_per_s

    @property
    def achieved_gbps(self) -> float:
        return self.bytes_per_run * self.tokens_per_s / self.batch / 1e9

    @property
    def bottleneck(self) -> str:
        """What limits decode: the opcode class with the most cycles, and whether it waits on
        memory (ports) or on compute."""
        gemv = self.decode_by_op.get("GEMV", 0)
        attn = self.decode_by_op.get("ATTN", 0)
        total = self.decode_cycles
        lat = self.mem_latency_cycles * self.latency_count
        port_bytes = self.params.bytes_per_cycle
        stream = self.bytes_per_run / port_bytes
        if lat > 0.3 * total:
            return f"memory latency ({lat / total:.0%} of cycles)"
        if stream > 0.6 * total:
            return (f"memory ports ({self.params.mem_ports} x {self.params.port_width} bits: "
                    f"{self.params.peak_bandwidth_gbs:.1f} GB/s of the {self.memory_peak_gbps:g} GB/s "
                    f"{self.memory})")
        top = max(self.decode_by_op, key=self.decode_by_op.get)
        share = f"{self.decode_by_op[top] / total:.0%} of cycles"
        if top == "ATTN":
            kv_cycles = self.attn_bytes / port_bytes
            if kv_cycles < 0.5 * attn:
                return (f"attention compute on {self.params.vector_lanes} vector lanes ({share}; its KV "
                        f"reads need {kv_cycles / attn:.0%} of them): raise --vector-lanes")
            return f"attention KV-cache reads ({share})"
        if top == "GEMV":
            return f"GEMV ({share}; weight streaming needs {stream / total:.0%} of the cycles)"
        return f"{top} ({share}; GEMV {gemv / total:.0%}, ATTN {attn / total:.0%})"

    latency_count: int = 0
    attn_bytes: int = 0                # KV bytes ATTN reads per run
    macs_per_run: int = 0              # GEMV and attention multiply-accumulates per run
    prefill_chunked_cycles: int = 0    # one prompt of `context` tokens in chunks of B positions

    def as_dict(self) -> dict:
        p = self.params
        return {
            "model": self.model, "board": self.board, "weights": self.scheme, "batch": self.batch,
            "context": self.context, "clock_mhz": self.clock_mhz,
            "engine": {"gemv_lanes": p.gemv_lanes, "gemv_macs": p.gemv_macs, "mem_ports": p.mem_ports,
                       "port_width": p.port_width, "vector_lanes": p.vector_lanes,
                       "kv_format": p.kv_format.value, "max_context": p.max_context,
                       "max_head_dim": p.max_head_dim, "mem_latency_cycles": p.mem_latency,
                       "prefetch_words": p.prefetch_words,
                       "port_bandwidth_gbps": round(p.peak_bandwidth_gbs, 3)},
            "cycles": {"decode_per_run": self.decode_cycles, "decode_by_op": dict(self.decode_by_op),
                       "prefill": self.prefill_cycles, "prefill_one_prompt": self.prefill_chunked_cycles,
                       "macs_per_run": self.macs_per_run},
            "ttft_s": self.ttft_s,
            "ttft_one_prompt_s": self.ttft_one_prompt_s,
            "tokens_per_s": self.tokens_per_s,
            "bytes": {"per_run_read": self.bytes_read, "per_run_written": self.bytes_written,
                      "per_token": self.bytes_per_token, "weights": self.weight_bytes,
                      "kv_cache": self.kv_bytes, "image": self.image_bytes},
            "memory": {"name": self.memory, "peak_gbps": self.memory_peak_gbps,
                       "achieved_gbps": self.achieved_gbps},
            "ceiling_tokens_per_s": self.ceiling_tokens_per_s,
            "ceiling_fraction": self.ceiling_fraction,
            "bottleneck": self.bottleneck,
            "notes": list(self.notes),
        }


def program_cycles(compiled: C.Compiled, length: int) -> tuple[int, dict[str, int]]:
    """Cycles of one program run at attention length ``length`` (as the golden engine counts
    them), total and per opcode."""
    return CycleModel(compiled).run(length)


def prefill_cycles(compiled: C.Compiled, prompt: int) -> int:
    """Cycles of a prompt of ``prompt`` tokens run token by token (lengths 1..prompt), all
    ``batch`` sequences in every run (``batch`` prompts prefilled together).

    An instruction whose cost is the same at length 1 and at ``prompt`` is counted
    ``prompt`` times at that cost (costs do not decrease with the length: more positions
    never take fewer cycles); the others are evaluated at every length."""
    return _runs_cycles(CycleModel(compiled), [[length] * compiled.params.batch
                                               for length in range(1, prompt + 1)])


def prefill_chunked_cycles(compiled: C.Compiled, prompt: int) -> int:
    """Cycles until the first generated token of ONE prompt of ``prompt`` tokens on the
    engine, prefilled as :func:`fpgallm.engine.generation.greedy_schedule` runs it: all but
    the last prompt token in chunks of ``batch`` consecutive positions (one run each, lane
    ``i`` attending over the positions up to its own), then the last token alone.  Equal to
    a batch-1 engine's :func:`prefill_cycles`."""
    from fpgallm.engine.generation import drive, greedy_schedule

    runs = []

    def step(tokens, positions, chunk):   # record the run's attention lengths; next ids: 0
        runs.append([pos + 1 for pos in positions])
        return [0] * len(tokens)

    drive(greedy_schedule([[0] * prompt], 1, max(prompt, 1), None, False, chunk=compiled.params.batch), step)
    return _runs_cycles(CycleModel(compiled), runs)


def _runs_cycles(cm: CycleModel, runs: list[list[int]]) -> int:
    """Total cycles of program runs at the given attention lengths (one list per run, one
    length per active sequence).  Runs with the same number of sequences share the cost of
    every instruction whose cost is the same at their shortest and longest lengths."""
    total = len(runs) * cm.control_cycles()
    by_nseq: dict[int, list[list[int]]] = {}
    for r in runs:
        by_nseq.setdefault(len(r), []).append(r)
    for group in by_nseq.values():
        lo, hi = min(group, key=max), max(group, key=max)
        for ins in cm.body():
            c_lo, c_hi = cm.cost(ins, lo), cm.cost(ins, hi)
            if c_lo == c_hi:
                total += len(group) * c_lo
            else:
                total += sum(cm.cost(ins, r) for r in group)
    return total


def perf_of_compiled(compiled: C.Compiled, context: int, board_name: str = "", memory: str = "",
                     memory_peak_gbps: float = 0.0, scheme: str = "", notes=()) -> PerfEstimate:
    """The estimate of an already compiled program (with or without weights)."""
    p = compiled.params
    cyc, per = program_cycles(compiled, context)
    rd = wr = 0
    nlat = attn_bytes = macs = 0
    from fpgallm.engine.cycles import MEM_OPS
    for ins in compiled.program:
        if ins.op is Op.HALT:
            break
        r, w = bytes_moved(compiled, ins, context)
        rd += r
        wr += w
        nlat += ins.op in MEM_OPS
        if ins.op is Op.ATTN:
            attn_bytes += r
            macs += p.batch * 2 * (ins.m & 0x3FF) * context * ins.n
        elif ins.op is Op.GEMV:
            macs += p.batch * ins.n * ins.m
    summ = compiled.image.summary()
    weights = summ.get("matrix", 0)
    est = PerfEstimate(model=compiled.model_name, board=board_name, params=p, scheme=scheme,
                       batch=p.batch, context=context, clock_mhz=float(p.clock_mhz),
                       decode_cycles=cyc, decode_by_op=per,
                       prefill_cycles=prefill_cycles(compiled, context),
                       bytes_read=rd, bytes_written=wr, weight_bytes=weights,
                       kv_bytes=summ.get("kv", 0), image_bytes=compiled.image.nbytes,
                       memory=memory, memory_peak_gbps=memory_peak_gbps or p.peak_bandwidth_gbs,
                       mem_latency_cycles=p.mem_latency, notes=list(notes))
    est.latency_count = nlat
    est.attn_bytes = attn_bytes
    est.macs_per_run = macs
    est.prefill_chunked_cycles = (est.prefill_cycles if p.batch == 1
                                  else prefill_chunked_cycles(compiled, context))
    return est


def scheme_names(schemes: dict) -> str:
    """``Q4_1 (token_embd.weight Q8_0)``: the most common scheme and the exceptions."""
    from collections import Counter

    most = Counter(s.name for s in schemes.values()).most_common(1)[0][0]
    odd = [f"{n} {s.name}" for n, s in schemes.items() if s.name != most]
    if not odd:
        return most
    return f"{most} ({', '.join(odd[:3])}{', ...' if len(odd) > 3 else ''})"


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def estimate_perf(spec, board: Board, scheme: QuantScheme | dict | None = None, batch: int = 1,
                  context: int | None = None, knobs: Knobs = Knobs(),
                  params: EngineParams | None = None) -> PerfEstimate:
    """Estimate ``spec`` (a :class:`~fpgallm.model.spec.ModelSpec`) on ``board``.

    Raises :class:`UserError` naming the resource when the model does not fit (on-chip
    buffers of the engine, or the board memory for weights + tables + KV cache)."""
    if batch not in range(1, 9):
        raise UserError(f"--batch {batch}: must be 1..8")
    ctx = min(context or DEFAULT_CONTEXT, spec.max_seq_len)
    if context is not None and context > spec.max_seq_len:
        raise UserError(f"--context {context}: {spec.name} has max_seq_len {spec.max_seq_len}")
    if context is not None and context < 1:
        raise UserError(f"--context {context}: must be at least 1")
    if params is None:
        params, mem, notes = estimate_params(board, batch, ctx, knobs, spec=spec)
    else:
        mem, notes = engine_memory(board), []
    scheme = scheme or weight_scheme(DEFAULT_WEIGHTS)
    # compile with the whole addressable space, then check the board memory ourselves
    roomy = dataclasses.replace(params, mem_bytes=1 << 40)
    compiled = C.compile_shapes(spec, roomy, scheme, context=ctx)
    need = compiled.image.nbytes
    have = mem.capacity_bytes
    if need > have:
        summ = compiled.image.summary()
        raise UserError(
            f"{spec.name} does not fit {board.name}: off-chip memory for weights {_gib(summ.get('matrix', 0))}"
            f" + KV cache for {ctx} tokens x batch {batch} {_gib(summ.get('kv', 0))} + tables and buffers"
            f" = {_gib(need)}, the engine's {mem.type} ({mem.name}) has {_gib(have)}")
    name = scheme.name if isinstance(scheme, QuantScheme) else scheme_names(scheme)
    compiled.params = params
    return perf_of_compiled(compiled, ctx, board.name, f"{mem.type} ({mem.name})", mem.peak_gbps,
                            name, notes)
