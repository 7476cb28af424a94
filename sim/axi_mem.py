"""The fast Verilog AXI4 memory model (``sim/models/fpgallm_axi_mem.v``) as a design.

:class:`AxiMemConfig` holds the model's Verilog parameters (data width, latency,
bandwidth as ``rate_num`` beats per ``rate_den`` cycles, ...); :func:`design` returns it as an
:class:`~fpgallm.hdl.emit.Emitted` for :func:`fpgallm.sim.runner.build`, to simulate alone or
beside an engine.  :func:`write_image` writes a memory image in the ``$readmemh`` format the
model loads at time 0 from the plusarg ``+<plusarg>=<file>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fpgallm.hdl.emit import Emitted

MODEL_FILE = Path(__file__).resolve().parent / "models" / "fpgallm_axi_mem.v"
PORTS = tuple(
    [f"s_axi_{n}" for n in ("awid", "awaddr", "awlen", "awsize", "awburst", "awvalid",
                            "awready", "wdata", "wstrb", "wlast", "wvalid", "wready", "bid",
                            "bresp", "bvalid", "bready", "arid", "araddr", "arlen", "arsize",
                            "arburst", "arvalid", "arready", "rid", "rdata", "rresp", "rlast",
                            "rvalid", "rready")]
    + ["read_beats", "write_beats", "dump", "dump_lo", "dump_hi"])


@dataclass(frozen=True)
class AxiMemConfig:
    data_width: int = 256
    addr_width: int = 32
    id_width: int = 4
    words_log2: int = 16
    read_latency: int = 20
    rate_num: int = 1
    rate_den: int = 1
    max_outstanding: int = 16
    plusarg: str = "fpgallm_mem"

    def __post_init__(self):
        o = "AxiMemConfig"
        if self.data_width not in (32, 64, 128, 256, 512, 1024):
            raise ValueError(f"{o}.data_width must be one of 32, 64, ..., 1024, got {self.data_width}")
        for name, lo, hi in (("addr_width", 12, 64), ("id_width", 1, 16), ("words_log2", 4, 28),
                             ("read_latency", 2, 10000), ("rate_num", 1, 1024),
                             ("rate_den", 1, 1024), ("max_outstanding", 1, 256)):
            v = getattr(self, name)
            if not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"{o}.{name} must be an integer in [{lo}, {hi}], got {v!r}")
        if self.rate_num > self.rate_den:
            raise ValueError(f"{o}.rate_num must be <= rate_den={self.rate_den} "
                             f"(at most one beat per cycle), got {self.rate_num}")
        if self.max_outstanding & (self.max_outstanding - 1):
            raise ValueError(f"{o}.max_outstanding must be a power of two, got {self.max_outstanding}")

    @property
    def bytes_per_beat(self) -> int:
        return self.data_width // 8

    def verilog_parameters(self) -> tuple[tuple[str, object], ...]:
        return (("DATA_WIDTH", self.data_width), ("ADDR_WIDTH", self.addr_width),
                ("ID_WIDTH", self.id_width), ("WORDS_LOG2", self.words_log2),
                ("READ_LATENCY", self.read_latency), ("RATE_NUM", self.rate_num),
                ("RATE_DEN", self.rate_den), ("MAX_OUTSTANDING", self.max_outstanding),
                ("PLUSARG", f'"{self.plusarg}"'))


def design(cfg: AxiMemConfig) -> Emitted:
    return Emitted(top="fpgallm_axi_mem", text=MODEL_FILE.read_text(), ports=PORTS,
                   parameters=cfg.verilog_parameters())


def write_image(path: Path, image: bytes, data_width: int) -> Path:
    """Write ``image`` (bytes from address 0) as ``$readmemh`` words of ``data_width`` bits."""
    nbytes = data_width // 8
    pad = (-len(image)) % nbytes
    arr = np.frombuffer(image + b"\0" * pad, dtype=np.uint8).reshape(-1, nbytes)
    # $readmemh words are written most significant digit first: reverse the bytes of a word
    lines = [row[::-1].tobytes().hex() for row in arr]
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)
