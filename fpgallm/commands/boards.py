"""``fpgallm boards``: list the board database, or show one board."""

from __future__ import annotations

import json

from fpgallm.errors import UserError

NAME = "boards"
HELP = "list the board database (boards/*.yaml), or show one board"


def configure(p):
    p.add_argument("action", nargs="?", choices=("list", "show"), default="list",
                   help="list (default) or show NAME")
    p.add_argument("name", nargs="?", metavar="NAME", help="board name for show, or the path of a board file")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.add_argument("--yaml", action="store_true",
                   help="show: the board's YAML file as it is (a template for a board file of your own)")


def _memory_column(b) -> str:
    return " + ".join(f"{m.type}{'(PS)' if m.side == 'ps' else ''}" for m in b.memory)


def _list(boards, as_json: bool) -> int:
    if as_json:
        print(json.dumps({n: b.summary() for n, b in boards.items()}, indent=2, sort_keys=True))
        return 0
    rows = [("NAME", "VENDOR", "PART", "MEMORY", "GB/s", "DSPs")]
    for b in boards.values():
        rows.append((b.name, b.vendor, b.part, _memory_column(b),
                     f"{b.offchip_bandwidth_gbps():g}", f"{b.resources.dsp} {b.resources.dsp_type.split(' (')[0]}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) if i in (0, 1, 2, 3) else c.rjust(w) if i == 4 else c
                        for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    return 0


def show_text(b) -> str:
    r = b.resources
    lines = [
        f"{b.name}: {b.title}",
        f"  vendor       {b.vendor}",
        f"  device       {b.part} ({b.family}, package {b.package}, speed grade {b.speed_grade})",
        f"  toolchain    {b.toolchain}",
        f"  LUT          {r.lut} ({r.lut_inputs}-input)",
        f"  FF           {r.ff}",
        f"  DSP          {r.dsp} x {r.dsp_type}",
        f"  BRAM         {r.bram} x {r.bram_kbit:g} kbit{f' ({r.bram_type})' if r.bram_type else ''}",
        f"  URAM         {r.uram} x {r.uram_kbit:g} kbit{f' ({r.uram_type})' if r.uram_type else ''}",
    ]
    if b.shell is not None:
        s = b.shell.reserved
        lines.append(f"  shell        {b.shell.name}: reserves about LUT {s.lut:.0%}, FF {s.ff:.0%}, "
                     f"DSP {s.dsp:.0%}, BRAM {s.bram:.0%}, URAM {s.uram:.0%}")
        avail = b.available
        lines.append("  available    " + ", ".join(f"{k.upper()} {v}" for k, v in avail.items()))
    for m in b.memory:
        lines.append(f"  memory       {m.name}: {m.describe()}{'' if m.writable else ', read-only'}")
    lines.append(f"  bandwidth    {b.offchip_bandwidth_gbps():g} GB/s off-chip "
                 f"(PL {b.offchip_bandwidth_gbps('pl'):g}, PS {b.offchip_bandwidth_gbps('ps'):g})")
    ref = b.clocks.reference
    pin = f", pin {ref.pin} ({ref.iostandard})" if ref.pin else ""
    lines.append(f"  ref clock    {ref.mhz:g} MHz {ref.name}{pin}")
    lines.append(f"  fabric clock {b.clocks.fabric_mhz:g} MHz typical for DSP-heavy designs")
    p = b.power
    lines.append(f"  power        device static {p.device_static_w:g} W, board idle {p.board_idle_w:g} W, "
                 f"max {p.max_w:g} W")
    if b.notes:
        lines.append(f"  notes        {b.notes}")
    lines.append("  sources")
    lines += [f"    - {s}" for s in b.sources]
    return "\n".join(lines)


def run(args) -> int:
    from fpgallm.boards import all_boards, board_file, load_board

    if args.action == "list":
        if args.name:
            raise UserError(f"unexpected argument {args.name!r}; use: fpgallm boards show NAME")
        return _list(all_boards(), args.json)
    if not args.name:
        raise UserError("boards show needs a board NAME; see: fpgallm boards")
    if args.json and args.yaml:
        raise UserError("boards show takes --json or --yaml, not both")
    path = board_file(args.name)
    b = load_board(path)                 # checked, also when only its text is shown
    if args.yaml:
        print(path.read_text(encoding="utf-8"), end="")
    elif args.json:
        print(json.dumps(b.summary(), indent=2, sort_keys=True))
    else:
        print(show_text(b))
    return 0
