"""Power model: device static + dynamic power per used resource + off-chip memory energy.

    W = P_static + P_dynamic + P_memory                         tokens/J = tokens/s / W

* ``P_static``: the device's static power from the board file (``power.device_static_w``,
  sourced there).
* ``P_dynamic``: per used resource (the resource model's counts) at the clock ``f`` and a
  toggle rate ``alpha``, with the *form* and *coefficients* of the open-source Rapid Power
  Estimator (RPE, github.com/os-fpga/rapid_power_estimator, ``backend/submodule/*.py`` and
  ``backend/etc/devices/mpw1/*.json``; a 16 nm FPGA, the node of UltraScale+), scaled by
  the family's core voltage squared (``V**2``, the ``C V**2 f`` law):

  - LUT: ``V**2 * n * f_MHz * alpha * (LUT_CAP + LUT_INT_CAP)``
  - FF:  ``V**2 * n * (f_MHz * alpha * (FF_CAP + FF_INT_CAP) + f_MHz * FF_CLK_CAP)``
  - DSP: ``V**2 * n * f_MHz * alpha * (a + b) * (DSP_MULT_CAP + DSP_INT_CAP) + n * f_MHz * DSP_MULT_CAP2``
    with ``a + b`` the multiplier input bits (8-bit activations x 8-bit weight lanes)
  - BRAM / URAM: ``n * w * f_MHz * alpha * (r * (READ_CAP + INT_CAP) + wr * WRITE_CAP)``
    with ``w`` the port width and read / write enable rates ``r``, ``wr``
  - a resource active only part of the time (the GEMV's DSPs outside GEMV instructions)
    has its signal rate multiplied by its busy fraction from the performance model.

* ``P_memory``: bits moved per second (the performance model's bytes per token x tokens/s)
  x energy per bit of the memory type (:data:`DRAM_PJ_PER_BIT`).

Every coefficient has its source beside it; our own assumptions say so.  No coefficient is
fitted to published tokens/s or W (those are only compared against, in ``compare.py``).

Also reported: ``board_w`` = ``W`` + the rest of the board at idle
(``power.board_idle_w - power.device_static_w`` of the board file), the figure a power
meter on the card would see.
"""

from __future__ import annotations

from dataclasses import dataclass

from fpgallm.boards import Board, Memory

# --- fabric coefficients (RPE mpw1 device; W per V^2 per MHz of signal rate per element) ---
RPE = ("Rapid Power Estimator (os-fpga/rapid_power_estimator), "
       "backend/etc/devices/mpw1/{file} and backend/submodule/{module}")
LUT_CAP = 3.0e-7        # RPE fabric_le.json LUT_CAP      (per LUT6)
LUT_INT_CAP = 2.0e-8    # RPE fabric_le.json LUT_INT_CAP  (interconnect, per LUT6)
FF_CAP = 3.5e-7         # RPE fabric_le.json FF_CAP
FF_INT_CAP = 4.0e-8     # RPE fabric_le.json FF_INT_CAP
FF_CLK_CAP = 2.91375291375291e-9   # RPE fabric_le.json FF_CLK_CAP (clock pin, per MHz of clock)
DSP_MULT_CAP = 1.5e-6   # RPE dsp.json DSP_MULT_CAP  (per input bit)
DSP_MULT_CAP2 = 7.0e-8  # RPE dsp.json DSP_MULT_CAP2 (per multiplier per MHz of clock, no V**2)
DSP_INT_CAP = 1.0e-7    # RPE dsp.json DSP_INT_CAP   (per input bit)
BRAM_READ_CAP = 2.5e-6  # RPE bram.json BRAM_READ_CAP  (per port bit; RPE's BRAM formula has no V**2)
BRAM_WRITE_CAP = 2.0e-6 # RPE bram.json BRAM_WRITE_CAP
BRAM_INT_CAP = 3.5e-7   # RPE bram.json BRAM_INT_CAP
# URAM: RPE has none; OUR ASSUMPTION: a URAM288 port bit costs what a BRAM port bit costs.
URAM_PORT_BITS = 72     # AMD UG573 (UltraRAM: 72-bit ports)

ALPHA = 0.125           # toggle rate: the default of AMD's XPE (UG440) and of RPE (toggle_rate 0.125)
BRAM_READ_RATE = 0.5    # RPE PortProperties default read_enable_rate
BRAM_WRITE_RATE = 0.5   # RPE PortProperties default write_enable_rate
MULT_BITS = 16          # a + b: INT8 activation x INT8 (or INT4) weight, OUR assumption of the GEMV's DSP use

# core voltage per family (the vendors' data sheets, nominal VCCINT)
VCCINT = (
    ("Versal", 0.80, "AMD DS957 Versal AI Core / DS950 Versal data sheets: VCCINT 0.80 V nominal"),
    ("UltraScale+", 0.85, "AMD DS922/DS923/DS925 UltraScale+ data sheets: VCCINT 0.85 V nominal"),
    ("Zynq-7000", 1.00, "AMD DS187 Zynq-7000 data sheet: VCCINT 1.0 V"),
    ("Artix-7", 1.00, "AMD DS181 Artix-7 data sheet: VCCINT 1.0 V"),
    ("Stratix 10", 0.90, "Intel Stratix 10 device data sheet: VCC 0.8-0.94 V (SmartVID); 0.90 V taken"),
    ("ECP5", 1.10, "Lattice ECP5 family data sheet FPGA-DS-02012: VCC 1.1 V"),
    ("iCE40", 1.20, "Lattice iCE40 UltraPlus data sheet FPGA-DS-02008: VCC 1.2 V"),
)
RPE_VCC = 0.8           # OUR assumption of the voltage RPE's caps were characterised at (not used: caps x V**2)


def vccint(board: Board) -> tuple[float, str]:
    for key, v, src in VCCINT:
        if key.lower() in board.family.lower():
            return v, src
    return 0.85, "OUR ASSUMPTION: 0.85 V (family not in the table)"


# --- off-chip memory energy per bit moved -------------------------------------------------------
_DDR3 = 30.0
DRAM_PJ_PER_BIT: dict[str, tuple[float, str]] = {
    "HBM2": (3.97, "O'Connor et al., 'Fine-Grained DRAM: Energy-Efficient DRAM for Extreme Bandwidth "
                   "Systems', MICRO 2017: HBM2 baseline access energy (activation + data movement + I/O), "
                   "as cited from the paper (number not re-read in this session)"),
    "HBM2e": (3.97, "OUR ASSUMPTION: the HBM2 figure (same interface and array organisation)"),
    "DDR3": (_DDR3, "Horowitz, 'Computing's energy problem', ISSCC 2014: a 64-bit DRAM access costs "
                    "1.3-2.6 nJ = 20-41 pJ/bit; the midpoint"),
    "DDR3L": (round(_DDR3 * (1.35 / 1.5) ** 2, 2), "derived: DDR3 x (VDD 1.35 V / 1.5 V)^2 (JEDEC JESD79-3-1)"),
    "DDR4": (round(_DDR3 * (1.2 / 1.5) ** 2, 2), "derived: DDR3 x (VDD 1.2 V / 1.5 V)^2 (JEDEC JESD79-4)"),
    "LPDDR4": (round(_DDR3 * (1.1 / 1.5) ** 2, 2), "derived: DDR3 x (VDD2 1.1 V / 1.5 V)^2 (JEDEC JESD209-4); "
                                                    "an upper bound: unterminated low-swing I/O costs less"),
    "GDDR5": (14.0, "OUR ASSUMPTION: order of the GPU-DRAM figures in Chatterjee et al., HPCA 2017 "
                    "(no board here uses it)"),
    "GDDR6": (7.5, "OUR ASSUMPTION: order of vendor statements for GDDR6 (no board here uses it)"),
    "SDRAM": (round(_DDR3 * (3.3 / 1.5) ** 2, 1), "derived: DDR3 x (3.3 V LVTTL / 1.5 V)^2"),
    "QSPI-NOR": (330.0, "derived, OUR ASSUMPTION on the current: ~20 mA read current at 3.3 V (typical "
                        "quad-SPI NOR data sheets) streaming 25 MB/s = 66 mW / 200 Mbit/s"),
}
DEFAULT_PJ = (_DDR3, "OUR ASSUMPTION: the DDR3 figure (memory type not in the table)")


def dram_pj_per_bit(mem: Memory) -> tuple[float, str]:
    return DRAM_PJ_PER_BIT.get(mem.type, DEFAULT_PJ)


def bram_port_bits(board: Board) -> int:
    """Port width of one block RAM in its widest simple-dual-port mode."""
    kbit = board.resources.bram_kbit
    if kbit >= 36:
        return 72       # RAMB36: 512 x 72 SDP (AMD UG573)
    if kbit >= 18:
        return 36       # DP16KD / RAMB18: x36
    if kbit >= 16:
        return 40       # M20K: x40 (Intel)
    return 16           # SB_RAM40_4K: x16


@dataclass
class PowerEstimate:
    static_w: float
    lut_w: float
    ff_w: float
    dsp_w: float
    bram_w: float
    uram_w: float
    memory_w: float
    board_rest_w: float        # board idle minus device static (fans, regulators, DRAM idle ...)
    tokens_per_s: float
    vcc: float
    alpha: float
    pj_per_bit: float
    sources: dict

    @property
    def dynamic_w(self) -> float:
        return self.lut_w + self.ff_w + self.dsp_w + self.bram_w + self.uram_w

    @property
    def total_w(self) -> float:
        return self.static_w + self.dynamic_w + self.memory_w

    @property
    def board_w(self) -> float:
        return self.total_w + self.board_rest_w

    @property
    def tokens_per_j(self) -> float:
        return self.tokens_per_s / self.total_w

    @property
    def tokens_per_j_board(self) -> float:
        return self.tokens_per_s / self.board_w

    def as_dict(self) -> dict:
        r = lambda x: round(x, 4)  # noqa: E731
        return {"static_w": r(self.static_w), "dynamic_w": r(self.dynamic_w),
                "dynamic_by_resource_w": {"lut": r(self.lut_w), "ff": r(self.ff_w), "dsp": r(self.dsp_w),
                                          "bram": r(self.bram_w), "uram": r(self.uram_w)},
                "memory_w": r(self.memory_w), "total_w": r(self.total_w), "board_w": r(self.board_w),
                "tokens_per_j": self.tokens_per_j, "tokens_per_j_board": self.tokens_per_j_board,
                "vccint": self.vcc, "toggle_rate": self.alpha, "memory_pj_per_bit": self.pj_per_bit,
                "sources": dict(self.sources)}


def estimate_power(board: Board, used: dict[str, int], clock_mhz: float, tokens_per_s: float,
                   bytes_per_token: float, mem: Memory, dsp_busy: float = 1.0,
                   alpha: float = ALPHA) -> PowerEstimate:
    """Power of an engine using ``used`` resources (``lut``, ``ff``, ``dsp``, ``bram``, ``uram``)
    at ``clock_mhz`` while decoding ``tokens_per_s`` tokens/s that move ``bytes_per_token``
    bytes each through ``mem``.  ``dsp_busy``: fraction of cycles the DSPs compute."""
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
    if not 0 <= dsp_busy <= 1:
        raise ValueError(f"dsp_busy must be in [0, 1], got {dsp_busy!r}")
    v, vsrc = vccint(board)
    v2 = v * v
    f = clock_mhz
    sr = f * alpha                                   # MHz of signal transitions
    lut_w = v2 * used.get("lut", 0) * sr * (LUT_CAP + LUT_INT_CAP)
    ff_w = v2 * used.get("ff", 0) * (sr * (FF_CAP + FF_INT_CAP) + f * FF_CLK_CAP)
    n_dsp = used.get("dsp", 0)
    dsp_w = (v2 * n_dsp * sr * dsp_busy * MULT_BITS * (DSP_MULT_CAP + DSP_INT_CAP)
             + n_dsp * f * DSP_MULT_CAP2)
    per_bit = sr * (BRAM_READ_RATE * (BRAM_READ_CAP + BRAM_INT_CAP) + BRAM_WRITE_RATE * BRAM_WRITE_CAP)
    bram_w = used.get("bram", 0) * bram_port_bits(board) * per_bit
    uram_w = used.get("uram", 0) * URAM_PORT_BITS * per_bit
    pj, psrc = dram_pj_per_bit(mem)
    memory_w = bytes_per_token * 8 * tokens_per_s * pj * 1e-12
    rest = max(0.0, board.power.board_idle_w - board.power.device_static_w)
    sources = {
        "static_w": f"board file {board.name}.yaml power.device_static_w (see its sources)",
        "fabric": RPE.format(file="fabric_le.json, dsp.json, bram.json",
                             module="fabric_logic_element.py, dsp.py, bram.py"),
        "vccint": vsrc,
        "toggle_rate": "AMD UG440 (Xilinx Power Estimator) default toggle rate 12.5%; RPE default 0.125",
        "uram": "OUR ASSUMPTION: URAM port bit = BRAM port bit (RPE has no URAM)",
        "dsp_busy": "performance model: fraction of decode cycles in GEMV instructions",
        "memory_pj_per_bit": f"{mem.type}: {psrc}",
        "board_rest_w": f"board file {board.name}.yaml power.board_idle_w - power.device_static_w",
    }
    return PowerEstimate(static_w=board.power.device_static_w, lut_w=lut_w, ff_w=ff_w, dsp_w=dsp_w,
                         bram_w=bram_w, uram_w=uram_w, memory_w=memory_w, board_rest_w=rest,
                         tokens_per_s=tokens_per_s, vcc=v, alpha=alpha, pj_per_bit=pj, sources=sources)
