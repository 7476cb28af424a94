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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from fpgallm import __version__
from fpgallm.boards import Board
from fpgallm.errors import UserError
from fpgallm.estimate.engine_plan import planned_engine
from fpgallm.paths import TEMPLATES_DIR
from fpgallm.project.design import EngineDesign, ports_of
from fpgallm.project.engine_design import csr_register_table
from fpgallm.project.flows import AXI_TOP, OPEN_TOP, flow_of
from fpgallm.project.model_ref import ModelRef
from fpgallm.units import host_bridge as HB
from fpgallm.units import sdram as SD

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
    tools = flow_of(board).open_tools.values(board, clock)
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
        "bridge_params": ip["bridge_params"], "ip": ip, "sdram_top": SDRAM_TOP, "bridge_top": BRIDGE_TOP,
        "sdram_timing": SD.timing_cycles(ip["sdram_params"]), "csr_table": csr_register_table(),
        "host": {"write": HB.CMD_WRITE, "read": HB.CMD_READ, "reg_write": HB.CMD_REG_WRITE,
                 "reg_read": HB.CMD_REG_READ, "ping": HB.CMD_PING, "ack": HB.ACK},
        **flow_of(board).open_tools.values(board, clock),
    }


def _shell_values(board: Board, clock_mhz: float) -> dict[str, Any]:
    """What every shell-facing top (AMD, Intel) says about its clock and the board."""
    shell = board.shell.name if board.shell is not None else ""
    return {"memory_ports": board.memory_channels, "period_ns": 1000.0 / clock_mhz,
            "clock_source": flow_of(board).clock_source.format(shell=shell),
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


def template_values(board: Board, design: EngineDesign, options: ProjectOptions) -> dict[str, Any]:
    """Everything the templates need (pure)."""
    flow = flow_of(board)
    if flow.open_source and not design.stand_in:
        clock_mhz = options.clock_mhz or board.clocks.engine_mhz or board.clocks.reference.mhz
        v = _open_engine_values(board, design, clock_mhz)
        v["sources"] = [f"rtl/{design.rtl_file}", f"rtl/{SDRAM_TOP}.v", f"rtl/{BRIDGE_TOP}.v",
                        f"rtl/{OPEN_TOP}.v"]
    elif flow.open_source:
        clock_mhz = options.clock_mhz or board.clocks.reference.mhz
        v = _open_values(board, design)
        v["sources"] = [f"rtl/{design.rtl_file}", f"rtl/{OPEN_TOP}.v"]
    else:
        clock_mhz = options.clock_mhz or board.clocks.fabric_mhz
        values = _axi_values if design.stand_in else _engine_axi_values
        v = values(board, design, clock_mhz)
        v["sources"] = [f"rtl/{design.rtl_file}", f"rtl/{AXI_TOP}.v"]
    v.update({
        "version": __version__, "board": board, "design": design, "flow": flow,
        "constraints": flow.constraints(board), "clock_mhz": f"{clock_mhz:g}",
        "clock_mhz_value": clock_mhz, "model": options.model, "synthesis": options.synthesis,
        "title": f"fpgallm project: {options.model.name} on {board.title}",
        "command": _command(board, options), "board_memory": board.describe_memory(),
        "design_params": json.dumps(design.params, sort_keys=True), "magic": f"0x{MAGIC:08X}",
    })
    v["engine_plan"] = planned_engine(board)
    return v


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
    for path, template, what in v["flow"].files(board, engine=not design.stand_in):
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
