"""``fpgallm estimate --report DIR``: an HTML page with three matplotlib plots.

Files written to ``DIR``: ``index.html``, ``roofline.png`` (the board's memory roof, the
engine's port roof and compute roof, the design point), ``resources.png`` (utilization of
LUT, FF, DSP, BRAM, URAM against the board's capacity after the shell), ``tokens_per_j.png``
(the design beside the published decode results of ``data/llm_decode_published.csv``, for
comparison only) and ``estimate.json`` (the same numbers as ``--json``).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from fpgallm.atomic import staged_folder
from fpgallm.errors import UserError

IMAGES = ("roofline.png", "resources.png", "tokens_per_j.png")
PLATFORM_COLORS = {"CPU": "tab:blue", "GPU": "tab:green", "FPGA": "tab:orange", "ASIC": "tab:purple",
                   "PIM/NDP": "tab:gray"}


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def roofline(e, path: Path) -> None:
    plt = _plt()
    pe, p = e.perf, e.perf.params
    f = p.clock_mhz * 1e6
    ai = 2 * pe.macs_per_run / pe.bytes_per_run               # ops per byte (a MAC = 2 ops)
    achieved = 2 * pe.macs_per_run * pe.tokens_per_s / pe.batch
    mem_bw = pe.memory_peak_gbps * 1e9
    port_bw = p.peak_bandwidth_gbs * 1e9
    compute = 2 * p.gemv_lanes * p.gemv_macs * f
    xs = [min(ai / 10, 0.05), max(ai * 100, 1e3)]
    import numpy as np
    x = np.logspace(np.log10(xs[0]), np.log10(xs[1]), 200)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.loglog(x, np.minimum(mem_bw * x, compute), label=f"board memory {pe.memory_peak_gbps:g} GB/s")
    ax.loglog(x, np.minimum(port_bw * x, compute), "--", label=f"engine ports {p.peak_bandwidth_gbs:.1f} GB/s")
    ax.axhline(compute, color="gray", lw=0.8, ls=":", label=f"GEMV compute {compute / 1e12:.2g} TOP/s")
    ax.loglog([ai], [achieved], "r*", ms=14, label=f"design: {pe.tokens_per_s:.3g} tokens/s")
    ax.set_xlabel("arithmetic intensity (ops / off-chip byte)")
    ax.set_ylabel("ops / s (1 MAC = 2 ops)")
    ax.set_title(f"{e.spec.name} on {e.board.name}, batch {pe.batch}, context {pe.context}")
    ax.grid(True, which="both", lw=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def resource_bars(e, path: Path) -> None:
    plt = _plt()
    keys = list(e.fit)
    util = [100 * e.utilization[k] for k in keys]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    bars = ax.bar([k.upper() for k in keys], util, color=["tab:red" if u > 100 else "tab:blue" for u in util])
    ax.axhline(100, color="k", lw=1)
    for b, k in zip(bars, keys):
        v = e.fit[k]
        ax.annotate(f"{v['need']}/{v['available']}", (b.get_x() + b.get_width() / 2, b.get_height()),
                    ha="center", va="bottom", fontsize=7)
    ax.set_ylabel("% of the board (after the shell)")
    ax.set_ylim(0, max(110, max(util) * 1.15))
    ax.set_title(f"engine resources on {e.board.name}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def tokens_per_j_plot(e, comp, path: Path) -> None:
    plt = _plt()
    from fpgallm.estimate.compare import published

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    seen = set()
    same = {id(p) for p in (comp or {}).get("same_board", [])}
    for p in published():
        lab = p.platform if p.platform not in seen else None
        seen.add(p.platform)
        ax.scatter(p.tokens_per_s, p.tokens_per_j, s=28 if id(p) in same else 14,
                   c=PLATFORM_COLORS.get(p.platform, "k"), alpha=0.9 if id(p) in same else 0.45,
                   edgecolors="k" if id(p) in same else "none", label=lab)
    pw = e.power
    ax.scatter([e.perf.tokens_per_s], [pw.tokens_per_j], marker="*", s=220, c="red", edgecolors="k",
               label=f"fpgallm estimate ({e.spec.name}, device W)", zorder=5)
    ax.scatter([e.perf.tokens_per_s], [pw.tokens_per_j_board], marker="*", s=120, c="white",
               edgecolors="red", label="fpgallm estimate (board W)", zorder=5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("decode tokens/s")
    ax.set_ylabel("tokens/J")
    ax.set_title("published decode results (~7B models, batch 1) vs the estimate")
    ax.grid(True, which="both", lw=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _row(k, v) -> str:
    return f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"


def write_report(e, directory, comp=None) -> Path:
    """Write the report of estimate ``e`` into ``directory``; returns the ``index.html`` path."""
    from fpgallm.estimate import compare as cmp

    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise UserError(f"--report {directory}: exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not (target / "estimate.json").is_file():
        raise UserError(f"--report {directory}: folder is not empty and holds no earlier report; "
                        "name a new or empty folder")
    if comp is None:
        comp = cmp.comparable(e.board.name, e.n_params)
    with staged_folder(target, "--report", "the report") as d:
        _write_files(e, comp, d)
    return target / "index.html"


def _write_files(e, comp, d: Path) -> None:
    from fpgallm.estimate import compare as cmp

    roofline(e, d / "roofline.png")
    resource_bars(e, d / "resources.png")
    tokens_per_j_plot(e, comp, d / "tokens_per_j.png")
    doc = e.as_dict()
    (d / "estimate.json").write_text(json.dumps(doc, indent=1))
    pe, pw, p = e.perf, e.power, e.perf.params
    rows = [
        ("model", f"{e.spec.name} ({e.n_params / 1e6:.1f} M parameters), weights {pe.scheme}"),
        ("board", f"{e.board.name}: {e.board.title}"),
        ("batch / context", f"{pe.batch} / {pe.context} tokens"),
        ("engine", f"GEMV {p.gemv_lanes} x {p.gemv_macs}, {p.mem_ports} x {p.port_width}-bit ports at "
                   f"{p.clock_mhz:g} MHz ({p.peak_bandwidth_gbs:.1f} GB/s), {p.vector_lanes} vector lanes, "
                   f"memory latency {p.mem_latency} cycles"),
        ("decode cycles per run", f"{pe.decode_cycles:,d}"),
        ("decode tokens/s", f"{pe.tokens_per_s:.4g}"),
        ("time to first token", f"{pe.ttft_s:.4g} s (prompt of {pe.context} tokens)" if pe.batch == 1 else
         f"{pe.ttft_s:.4g} s ({pe.batch} prompts of {pe.context} tokens together); one prompt alone "
         f"{pe.ttft_one_prompt_s:.4g} s (prefilled {pe.batch} positions a run)"),
        ("bytes per token", f"{pe.bytes_per_token / 1e6:.4g} MB"),
        ("memory-bound ceiling", f"{pe.ceiling_tokens_per_s:.4g} tokens/s ({pe.memory}, "
                                 f"{pe.memory_peak_gbps:g} GB/s); design at {pe.ceiling_fraction:.1%}"),
        ("power", f"{pw.total_w:.3g} W (static {pw.static_w:.3g}, dynamic {pw.dynamic_w:.3g}, memory "
                  f"{pw.memory_w:.3g}); board {pw.board_w:.3g} W"),
        ("tokens/J", f"{pw.tokens_per_j:.4g} (board power: {pw.tokens_per_j_board:.4g})"),
        ("bottleneck", pe.bottleneck),
    ]
    util = "".join(f"<tr><th>{k.upper()}</th><td>{v['need']}</td><td>{v['available']}</td>"
                   f"<td>{e.utilization[k]:.1%}</td></tr>" for k, v in e.fit.items())
    pub = "".join(f"<tr><td>{html.escape(q.platform)}</td><td>{html.escape(q.work)}</td><td>{q.year}</td>"
                  f"<td>{q.tokens_per_s:.4g}</td><td>{q.power_w:.4g}</td><td>{q.tokens_per_j:.3g}</td></tr>"
                  for q in comp["same_board"] + comp["fpga"])
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in pe.notes)
    srcs = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in pw.sources.items())
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>fpgallm estimate: {html.escape(e.spec.name)} on {html.escape(e.board.name)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}} img{{max-width:100%}}</style></head>
<body>
<h1>fpgallm estimate: {html.escape(e.spec.name)} on {html.escape(e.board.name)}</h1>
<p>Derived from the design (the golden engine's cycle model on the compiled program, the
resource model, the power model with sourced coefficients); nothing is fitted to published results.</p>
<table>{''.join(_row(k, v) for k, v in rows)}</table>
<h2>Roofline</h2>
<img src="roofline.png" alt="roofline">
<h2>Resources</h2>
<table><tr><th>resource</th><th>used</th><th>available</th><th>utilization</th></tr>{util}</table>
<img src="resources.png" alt="resource utilization">
<h2>tokens/J against published results</h2>
<img src="tokens_per_j.png" alt="tokens per joule">
<p>Published points: {html.escape(cmp.SOURCE)} (decode at batch 1, ~7B models; comparison only).</p>
<table><tr><th>platform</th><th>work</th><th>year</th><th>tokens/s</th><th>W</th><th>tokens/J</th></tr>{pub}</table>
<h2>Notes</h2><ul>{notes}</ul>
<h2>Power coefficients and their sources</h2><ul>{srcs}</ul>
<p>All numbers: <a href="estimate.json">estimate.json</a>.</p>
</body></html>
"""
    (d / "index.html").write_text(page)
