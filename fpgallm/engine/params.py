"""``EngineParams``: the knobs of one generated decode engine, validated on construction.

One engine (one bitstream) runs any model whose weights and KV cache fit the board's
memory and whose dimensions fit the on-chip buffers.  The compiler checks a model against
these parameters; the project writer checks them against a board.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from fpgallm.hdl.check import check_enum, check_int
from fpgallm.units.weights import WeightFormat  # the hardware formats (one definition)

__all__ = ["ActFormat", "WeightFormat", "KVFormat", "EngineParams", "MAX_HEAD_DIM", "MIN_PREFETCH_WORDS"]

MAX_HEAD_DIM = 256      # the largest head_dim an engine can be built for
MIN_PREFETCH_WORDS = 64  # two prefetch requests (rtl/prefetch.py CHUNK) in flight


class ActFormat(enum.Enum):
    """Activation format fed to the matrix engines (per-vector scale)."""

    INT8 = "int8"
    INT16 = "int16"

    @property
    def bits(self) -> int:
        return 8 if self is ActFormat.INT8 else 16


class KVFormat(enum.Enum):
    """Precision of the KV cache in off-chip memory (per-head-vector scale for INT8)."""

    INT8 = "int8"
    INT16 = "int16"

    @property
    def bits(self) -> int:
        return 8 if self is KVFormat.INT8 else 16


@dataclass(frozen=True)
class EngineParams:
    """Parameters of a decode engine.

    - ``gemv_lanes`` x ``gemv_macs``: output rows computed in parallel x multiply-accumulates
      per row per cycle.  ``gemv_lanes * gemv_macs * weight bits`` should equal the weight
      bits arriving per cycle (``mem_ports * port_width``) for a bandwidth-matched engine.
    - ``mem_ports`` x ``port_width``: AXI4 read/write ports to off-chip memory (bits).
    - ``max_dim`` / ``max_ffn``: largest hidden and FFN widths the on-chip buffers hold;
      ``vregs``: number of vector registers of ``max(max_dim, max_ffn)`` elements per sequence.
    - ``max_context``: positions per sequence in the KV cache.
    - ``max_head_dim``: largest head_dim the attention, KV-append and RoPE head buffers hold
      (1..``MAX_HEAD_DIM``; their registers and adders scale with it).
    - ``batch``: sequences decoded together (1..8); each weight word is fetched once and
      applied to all of them.  The batch datapaths are also the engine's prefill GEMM: one
      prompt prefills ``batch`` consecutive positions a run (``CHUNK``; there is no separate
      systolic array, docs/ARCHITECTURE.md "Prefill GEMM").
    - ``vector_lanes``: elements per cycle of the vector units (norms, softmax, RoPE, ...).
    - ``clock_mhz``: fabric clock target.
    - ``mem_bytes``: off-chip memory the engine may use (weights, tables, KV cache).
    - ``mem_latency``: cycles from a memory request to its first data beat; the cycle model
      charges it once per instruction that touches off-chip memory (0: ideal memory; the
      estimator sets it from the board's memory type and the clock).
    - ``prefetch_words``: depth in stripe words (``mem_ports * port_width`` bits) of the weight
      prefetch buffer, 0 for none.  With a buffer the compiler emits ``PREFETCH`` for every run
      of GEMVs whose matrices follow one another in memory, and the memory keeps streaming
      weights into it while the vector units, attention and the controller work
      (:mod:`fpgallm.engine.rtl.prefetch`); a power of two in [64, 65536].
    - ``weight_formats``: the GEMV's hardware formats (:class:`fpgallm.units.weights.WeightFormat`;
      the compiler maps a model's ``QuantScheme`` onto them: Q8_0 -> INT8_GROUP, Q4_0 ->
      INT4_GROUP, Q4_1 -> INT4_GROUP_MIN, per-channel INT8 -> INT8_ROW).
    """

    gemv_lanes: int = 8
    gemv_macs: int = 32
    act_format: ActFormat = ActFormat.INT8
    weight_formats: tuple[WeightFormat, ...] = (WeightFormat.INT8_ROW, WeightFormat.INT8_GROUP,
                                                WeightFormat.INT4_GROUP,
                                                WeightFormat.INT4_GROUP_MIN)
    mem_ports: int = 4
    port_width: int = 256
    max_dim: int = 4096
    max_ffn: int = 14336
    vregs: int = 8
    max_context: int = 2048
    max_head_dim: int = MAX_HEAD_DIM
    kv_format: KVFormat = KVFormat.INT8
    batch: int = 1
    vector_lanes: int = 8
    clock_mhz: float = 200.0
    max_vocab: int = 131072
    mem_bytes: int = 4 << 30
    mem_latency: int = 0
    prefetch_words: int = 0

    def __post_init__(self):
        o = "EngineParams"
        check_int(o, "gemv_lanes", self.gemv_lanes, 1, 1024)
        check_int(o, "gemv_macs", self.gemv_macs, 1, 1024)
        check_int(o, "mem_ports", self.mem_ports, 1, 64)
        check_int(o, "port_width", self.port_width, 32, 1024)
        if self.port_width & (self.port_width - 1):
            raise ValueError(f"{o}.port_width must be a power of two, got {self.port_width}")
        check_int(o, "max_dim", self.max_dim, 8, 65536)
        check_int(o, "max_ffn", self.max_ffn, 8, 262144)
        check_int(o, "vregs", self.vregs, 4, 16)
        check_int(o, "max_context", self.max_context, 1, 1 << 20)
        check_int(o, "max_head_dim", self.max_head_dim, 1, MAX_HEAD_DIM)
        check_int(o, "batch", self.batch, 1, 8)
        check_int(o, "vector_lanes", self.vector_lanes, 1, 256)
        check_int(o, "max_vocab", self.max_vocab, 2, 1 << 20)
        check_int(o, "mem_bytes", self.mem_bytes, 1 << 16, 1 << 40)
        check_int(o, "mem_latency", self.mem_latency, 0, 100000)
        if self.prefetch_words != 0:
            check_int(o, "prefetch_words", self.prefetch_words, MIN_PREFETCH_WORDS, 65536)
            if self.prefetch_words & (self.prefetch_words - 1):
                raise ValueError(f"{o}.prefetch_words must be 0 or a power of two, got {self.prefetch_words}")
        for name, enum_type in (("act_format", ActFormat), ("kv_format", KVFormat)):
            check_enum(o, name, getattr(self, name), enum_type)
        if not self.weight_formats or not all(isinstance(f, WeightFormat) for f in self.weight_formats):
            raise ValueError(f"{o}.weight_formats must be a non-empty tuple of WeightFormat, "
                             f"got {self.weight_formats!r}")
        if not isinstance(self.clock_mhz, (int, float)) or not 1 <= self.clock_mhz <= 1000:
            raise ValueError(f"{o}.clock_mhz must be a number in [1, 1000], got {self.clock_mhz!r}")

    @property
    def bytes_per_cycle(self) -> int:
        """Peak off-chip bytes per fabric cycle over all ports."""
        return self.mem_ports * self.port_width // 8

    @property
    def peak_bandwidth_gbs(self) -> float:
        return self.bytes_per_cycle * self.clock_mhz * 1e6 / 1e9

    @property
    def macs_per_cycle(self) -> int:
        return self.gemv_lanes * self.gemv_macs

    @property
    def vreg_elems(self) -> int:
        return max(self.max_dim, self.max_ffn)
