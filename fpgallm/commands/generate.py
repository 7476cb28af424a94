"""``fpgallm generate``: write a synthesizable project for a board.

With no arguments it runs on the documented default, ``tiny-llama`` on ``ulx3s``, into
``./fpgallm-tiny-llama-ulx3s``: the decode engine for the model on the ULX3S's SDRAM, with
the UART host bridge (about 20 s).  Steps: resolve the model and the board, pick the design
for the board (the engine for the model when it fits), check the fit, optionally synthesize
(``--synth``), plan every file (pure), write the folder atomically.
"""

from __future__ import annotations

from pathlib import Path

from fpgallm import cli_args as A
from fpgallm import progress

NAME = "generate"
HELP = "write a synthesizable project (RTL, board top, constraints, toolchain scripts) for a board"

DEFAULT_BOARD = "ulx3s"


def configure(p):
    from fpgallm.project.model_ref import DEFAULT_MODEL

    p.add_argument("model", nargs="?", default=DEFAULT_MODEL, metavar="MODEL",
                   help=f"preset name, .gguf / .npz file or Hugging Face folder (default {DEFAULT_MODEL})")
    p.add_argument("--board", type=A.nonempty, default=DEFAULT_BOARD,
                   help=f"board name, see `fpgallm boards`, or the path of a board file (default {DEFAULT_BOARD})")
    p.add_argument("--out", type=A.nonempty, default=None,
                   help="project folder (default ./fpgallm-MODEL-BOARD)")
    p.add_argument("--force", action="store_true",
                   help="replace an earlier project (a folder written by fpgallm generate)")
    p.add_argument("--clock-mhz", type=A.clock_mhz, default=None,
                   help="clock to constrain (default: the board clock on open-source boards, "
                        "the board's typical fabric clock otherwise)")
    p.add_argument("--synth", action="store_true",
                   help="run Yosys synthesis on the design, check the fit with its counts and "
                        "record them in the manifest")
    p.add_argument("--design", choices=("auto", "engine", "elementwise"), default="auto",
                   help="auto (default): the decode engine for MODEL when the board can hold it, "
                        "else the elementwise bring-up design; engine: exit 2 when it does not fit")
    g = p.add_argument_group("engine knobs (default: planned for the board and the model)")
    g.add_argument("--ports", type=A.positive_int, default=None, help="AXI4 memory ports")
    g.add_argument("--port-width", type=A.positive_int, default=None, help="bits per memory port")
    g.add_argument("--gemv-lanes", type=A.positive_int, default=None, help="GEMV output lanes")
    g.add_argument("--vector-lanes", type=A.positive_int, default=None, help="vector-unit lanes")
    g.add_argument("--prefetch-words", type=A.nonneg_int, default=None, metavar="N",
                   help="weight prefetch buffer in memory words (a power of two >= 64; default 0: none)")
    g.add_argument("--batch", type=A.batch, default=None, help="sequences per run, 1..8 (default 1)")
    g.add_argument("--context", type=A.positive_int, default=None,
                   help="KV-cache length in tokens (default 256, at most the model's)")
    b = p.add_argument_group("bring-up design knobs (--design elementwise)")
    b.add_argument("--lanes", type=A.positive_int, default=None,
                   help="parallel lanes (default: fits half the board's DSPs)")
    b.add_argument("--op", choices=("add", "mul"), default=None, help="elementwise operation (default add)")


def run(args) -> int:
    from fpgallm.boards import get_board
    from fpgallm.project import build

    board = get_board(args.board)
    knobs = {"design": None if args.design == "auto" else args.design, "lanes": args.lanes, "op": args.op,
             "ports": args.ports, "port_width": args.port_width, "gemv_lanes": args.gemv_lanes,
             "vector_lanes": args.vector_lanes, "batch": args.batch, "context": args.context,
             "prefetch_words": args.prefetch_words}
    model_name = Path(args.model).stem if Path(args.model).exists() else args.model
    out = Path(args.out) if args.out is not None else Path(f"fpgallm-{model_name}-{board.name}")
    with progress.reporting("fpgallm generate"):
        result = build.generate(args.model, board, out, force=args.force, clock_mhz=args.clock_mhz,
                                knobs=knobs, synth=args.synth)
    fit = result.fit
    short = ", ".join(f"{k.upper()} {v['need']}/{v['available']}" for k, v in fit.items())
    print(f"wrote {out} ({len(result.plan.files)} files) for {board.name}: {result.design.name} "
          f"[{result.design.need_basis if not result.synthesis else 'synthesized'}] {short}")
    if result.design.stand_in:
        why = (result.design.engine or {}).get("fallback")
        print("note: bring-up design (the elementwise unit), not the decode engine"
              + (f": {why}" if why else ""))
    else:
        e = result.design.engine
        print(f"engine for {e['model']}: context {e['context']}, batch {e['batch']}, memory image "
              f"{e['image_bytes'] / 2**20:.2f} MiB in {len(result.design.axi_masters)} port files; "
              f"verify with: fpgallm test --project {out}")
    return 0
