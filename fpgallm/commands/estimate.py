"""``fpgallm estimate MODEL --board BOARD``: resources, cycles, tokens/s, W, tokens/J, bottleneck."""

from __future__ import annotations

import json

from fpgallm import cli_args as A
from fpgallm.errors import UserError

NAME = "estimate"
HELP = ("estimate an engine for MODEL on a board before synthesis: utilization, cycles, "
        "tokens/s, power, tokens/J and the bottleneck (MODEL: a preset, weights not needed, or a file)")


def configure(p):
    from fpgallm.estimate.perf import DEFAULT_CONTEXT, DEFAULT_WEIGHTS, WEIGHT_SCHEMES
    from fpgallm.estimate.power import ALPHA

    p.add_argument("model", metavar="MODEL", help="a preset (fpgallm models; shapes suffice) or a "
                   ".gguf / Hugging Face directory / .npz (its spec and quantization)")
    p.add_argument("--board", type=A.nonempty, required=True,
                   help="a board (fpgallm boards) or the path of a board file")
    p.add_argument("--batch", type=A.batch, default=1, metavar="B", help="sequences decoded together, 1..8 (default 1)")
    p.add_argument("--context", type=A.positive_int, default=None, metavar="N",
                   help=f"tokens in the KV cache: decode at length N, prefill of an N-token prompt "
                        f"(default {DEFAULT_CONTEXT}, at most the model's max_seq_len)")
    p.add_argument("--weights", type=A.nonempty, default=None, metavar="SCHEME",
                   help=f"weight quantization: {', '.join(WEIGHT_SCHEMES)} (default {DEFAULT_WEIGHTS}; "
                        "a quantized model file keeps its own)")
    g = p.add_argument_group("engine knobs (default: the board's engine plan)")
    g.add_argument("--lanes", type=A.positive_int, default=None, help="GEMV lanes (output rows in parallel)")
    g.add_argument("--macs", type=A.positive_int, default=None, help="GEMV multiply-accumulates per lane per cycle")
    g.add_argument("--ports", type=A.positive_int, default=None, help="AXI memory ports")
    g.add_argument("--port-width", type=A.positive_int, default=None, metavar="BITS", help="bits per memory port")
    g.add_argument("--clock-mhz", type=A.clock_mhz, default=None, metavar="MHZ", help="fabric clock")
    g.add_argument("--vector-lanes", type=A.positive_int, default=None, help="elements per cycle of the vector units")
    g.add_argument("--prefetch-words", type=A.nonneg_int, default=None, metavar="N",
                   help="weight prefetch buffer in memory words (a power of two >= 64; default 0: none)")
    g.add_argument("--kv", default=None, choices=("int8", "int16"), help="KV-cache precision (default int8)")
    g.add_argument("--activity", type=A.float_in(0, 1, lo_open=True), default=ALPHA, metavar="ALPHA",
                   help=f"toggle rate of the power model (default {ALPHA})")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.add_argument("--compare", action="store_true",
                   help="print published decode results for the same board or model size beside the estimate")
    p.add_argument("--report", type=A.nonempty, metavar="DIR", default=None,
                   help="write an HTML report with plots (roofline, resources, tokens/J vs published) to DIR")


def run(args) -> int:
    from fpgallm.estimate import compare as cmp
    from fpgallm.estimate.estimator import estimate, format_table, resolve_model
    from fpgallm.estimate.perf import Knobs

    spec, scheme = resolve_model(args.model, args.weights)
    knobs = Knobs(lanes=args.lanes, macs=args.macs, ports=args.ports, port_width=args.port_width,
                  clock_mhz=args.clock_mhz, vector_lanes=args.vector_lanes, kv_format=args.kv,
                  prefetch_words=args.prefetch_words)
    try:
        e = estimate(spec, args.board, scheme, args.batch, args.context, knobs, alpha=args.activity)
    except ValueError as exc:          # a Params object refused a knob (message names it)
        raise UserError(str(exc)) from None
    comp = cmp.comparable(e.board.name, e.n_params) if (args.compare or args.report) else None
    report_path = None
    if args.report:
        from fpgallm.estimate.report import write_report

        report_path = write_report(e, args.report, comp)
    if args.json:
        d = e.as_dict()
        if comp is not None and args.compare:
            d["compare"] = comparison_dict(comp)
        if report_path is not None:
            d["report"] = str(report_path)
        print(json.dumps(d, indent=1))
        return 0
    print(format_table(e))
    if args.compare:
        print()
        print(format_compare(e, comp))
    if report_path is not None:
        print()
        print(f"report: {report_path}")
    return 0


def comparison_dict(comp) -> dict:
    return {"source": _source(),
            "same_board": [p.as_dict() for p in comp["same_board"]],
            "same_size": comp["same_size"],
            "fpga_same_size": [p.as_dict() for p in comp["fpga"]],
            "best_by_platform": {k: {m: v[m].as_dict() for m in v} for k, v in comp["best_by_platform"].items()}}


def _source() -> str:
    from fpgallm.estimate.compare import SOURCE
    return SOURCE


def format_compare(e, comp) -> str:
    pe, pw = e.perf, e.power
    L = [f"published decode results (comparison only; source: {_source()})"]
    head = f"  {'platform':<8s} {'work':<36s} {'year':>4s} {'tokens/s':>9s} {'W':>7s} {'tokens/J':>9s}"
    L.append(head)
    L.append(f"  {'fpgallm':<8s} {'estimate: ' + e.spec.name + ' on ' + e.board.name:<36.36s} {'':>4s} "
             f"{pe.tokens_per_s:>9.3g} {pw.total_w:>7.3g} {pw.tokens_per_j:>9.3g}")
    L.append(f"  {'':<8s} {'  (board power)':<36s} {'':>4s} {'':>9s} {pw.board_w:>7.3g} {pw.tokens_per_j_board:>9.3g}")

    def row(p):
        return (f"  {p.platform:<8s} {p.work:<36.36s} {p.year:>4s} {p.tokens_per_s:>9.3g} {p.power_w:>7.3g} "
                f"{p.tokens_per_j:>9.3g}")
    if comp["same_board"]:
        L.append(f"  same board ({e.board.name}; published models are ~7B):")
        L.extend(row(p) for p in comp["same_board"])
    else:
        L.append(f"  no published point on {e.board.name}")
    if comp["same_size"]:
        if comp["fpga"]:
            L.append("  FPGA, other boards (~7B models):")
            L.extend(row(p) for p in comp["fpga"])
        L.append("  best of each platform class (~7B models):")
        for k, v in comp["best_by_platform"].items():
            L.append(row(v["tokens_per_s"]))
            if v["tokens_per_j"] is not v["tokens_per_s"]:
                L.append(row(v["tokens_per_j"]))
    else:
        L.append(f"  (the published points are ~7B models; {e.spec.name} has {e.n_params / 1e9:.2g} B "
                 "parameters, so only same-board points are listed)")
    return "\n".join(L)
