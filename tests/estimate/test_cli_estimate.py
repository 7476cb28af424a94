"""``fpgallm estimate``: table, JSON schema, --compare, --report, one-line errors."""

import json
import re
import subprocess
import sys

import pytest

from fpgallm.cli import main


def fpgallm(*args):
    return subprocess.run([sys.executable, "-m", "fpgallm", *args], capture_output=True, text=True)


def _err(capsys, args) -> str:
    assert main(["estimate", *args]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    lines = out.err.strip().splitlines()
    assert len(lines) == 1, out.err
    return lines[0]


def test_table(capsys):
    assert main(["estimate", "smollm2-135m", "--board", "kv260", "--context", "256"]) == 0
    out = capsys.readouterr().out
    for text in ("smollm2-135m", "kv260", "batch 1, context 256 tokens", "DSP (DSP48E2)", "URAM (URAM288)",
                 "decode cycles / run", "decode tokens/s", "time to first token", "memory-bound ceiling",
                 "tokens/J", "bottleneck", "power"):
        assert text in out, text


def test_json_schema_and_clean_stdout():
    r = fpgallm("estimate", "llama2-7b", "--board", "u280", "--batch", "8", "--context", "512",
                "--weights", "q4_0", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)                      # stdout is exactly one JSON document
    assert d["schema"] == 1
    assert (d["model"], d["board"], d["batch"], d["context"], d["weights"]) == ("llama2-7b", "u280", 8, 512, "Q4_0")
    for k in ("engine", "cycles", "ttft_s", "tokens_per_s", "bytes", "memory", "ceiling_tokens_per_s",
              "ceiling_fraction", "bottleneck", "notes", "resources", "power", "tokens_per_j", "params"):
        assert k in d, k
    assert set(d["resources"]["used"]) == {"lut", "ff", "dsp", "bram", "uram"}
    for k, u in d["resources"]["utilization"].items():
        assert u == pytest.approx(d["resources"]["used"][k] / d["resources"]["available"][k], abs=1e-4)
    e = d["engine"]
    assert d["tokens_per_s"] == pytest.approx(8 * d["clock_mhz"] * 1e6 / d["cycles"]["decode_per_run"])
    assert d["tokens_per_j"] == pytest.approx(d["tokens_per_s"] / d["power"]["total_w"], rel=1e-3)
    assert d["ceiling_fraction"] == pytest.approx(d["tokens_per_s"] / d["ceiling_tokens_per_s"])
    assert e["port_bandwidth_gbps"] <= d["memory"]["peak_gbps"]
    assert sum(d["cycles"]["decode_by_op"].values()) == d["cycles"]["decode_per_run"]


def test_knobs_change_the_engine(capsys):
    assert main(["estimate", "smollm2-135m", "--board", "u280", "--vector-lanes", "32", "--clock-mhz", "200",
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["engine"]["vector_lanes"] == 32 and d["clock_mhz"] == 200.0


def test_prefetch_buffer_knob(capsys):
    """--prefetch-words gives the engine a weight prefetch buffer: its block RAM shows in the
    resources, PREFETCH in the program, and the GEMVs stop waiting for memory."""
    base = ["estimate", "smollm2-135m", "--board", "u280", "--vector-lanes", "16", "--json"]
    out = {}
    for words in (0, 256):
        assert main(base + ["--prefetch-words", str(words)]) == 0
        out[words] = json.loads(capsys.readouterr().out)
    a, b = out[0], out[256]
    assert a["engine"]["prefetch_words"] == 0 and b["engine"]["prefetch_words"] == 256
    assert "prefetch" not in a["resources"]["parts"]
    assert b["resources"]["parts"]["prefetch"]["bram"] > 0
    assert b["cycles"]["decode_by_op"]["PREFETCH"] == 3
    assert b["cycles"]["decode_by_op"]["GEMV"] < a["cycles"]["decode_by_op"]["GEMV"]
    assert b["tokens_per_s"] > a["tokens_per_s"]


def test_unknown_board(capsys):
    assert _err(capsys, ["llama2-7b", "--board", "nosuch"]) == (
        "fpgallm estimate: error: unknown board 'nosuch'; boards: arty-a7-100t, icebreaker, kv260, pynq-z2, "
        "s10mx, u250, u280, u55c, ulx3s, v80, vck190, vcu128, zcu102, zcu104 (or a path to a board file, "
        "see: fpgallm boards show NAME --yaml)")


def test_unknown_model(capsys):
    assert _err(capsys, ["nosuch-model", "--board", "u280"]).startswith(
        "fpgallm estimate: error: unknown model 'nosuch-model': not a preset")


def test_model_does_not_fit_board_memory(capsys):
    assert _err(capsys, ["llama3-8b", "--board", "kv260"]) == (
        "fpgallm estimate: error: llama3-8b does not fit kv260: off-chip memory for weights 4.73 GiB + KV "
        "cache for 1024 tokens x batch 1 0.06 GiB + tables and buffers = 4.80 GiB, the engine's DDR4 "
        "(ps_ddr) has 4.00 GiB")


def test_engine_does_not_fit_board_resources(capsys):
    # 64 vector lanes: the vector units alone need ten times the PYNQ-Z2's LUTs (and several
    # times its DSPs; the message names the resource short by the largest factor), and the
    # planner may not shrink a knob the user set
    line = _err(capsys, ["smollm2-135m", "--board", "pynq-z2", "--vector-lanes", "64"])
    m = re.fullmatch(r"fpgallm estimate: error: pynq-z2 is too small for the decode engine: LUT needs "
                     r"(\d+), the board has 53200 \(LUT6\) at the smallest engine with vector_lanes=64 "
                     r"as given", line)
    assert m and int(m[1]) > 10 * 53200, line
    # without knobs the planner shrinks the vector lanes until the engine (head buffers sized
    # to SmolLM2's head_dim of 64) fits the Zynq-7020's LUTs
    assert main(["estimate", "smollm2-135m", "--board", "pynq-z2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["engine"]["max_head_dim"] == 64 and d["engine"]["vector_lanes"] == 2, d["engine"]
    assert all(u <= 1 for u in d["resources"]["utilization"].values()), d["resources"]


def test_engine_is_shrunk_to_fit_and_says_so(capsys):
    assert main(["estimate", "smollm2-135m", "--board", "kv260", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    shrunk = [n for n in d["notes"] if n.startswith("shrunk to fit kv260: ")]
    assert len(shrunk) == 1, d["notes"]
    # LUT-bound: fewer GEMV and vector lanes (the cheapest knobs for decode throughput),
    # keeping the 512 bits one DDR4 channel feeds, and it fits
    assert d["engine"]["mem_ports"] * d["engine"]["port_width"] == 512, shrunk
    assert all(u <= 1 for u in d["resources"]["utilization"].values()), d["resources"]
    assert "gemv lanes 8 -> " in shrunk[0] and "vector lanes 8 -> " in shrunk[0], shrunk
    assert "port width" not in shrunk[0], shrunk


def test_board_without_writable_memory(capsys):
    assert _err(capsys, ["smollm2-135m", "--board", "icebreaker"]) == (
        "fpgallm estimate: error: icebreaker has no writable off-chip memory for weights and the KV cache "
        "(only QSPI-NOR 16 MiB 1x4b @ 50 MT/s = 0.025 GB/s (PL))")


@pytest.mark.parametrize("args,msg", [
    (["--batch", "9"], "fpgallm estimate: error: argument --batch: must be in 1..8, got 9 (see: fpgallm estimate --help)"),
    (["--context", "0"], "fpgallm estimate: error: argument --context: must be >= 1, got 0 (see: fpgallm estimate --help)"),
    (["--context", "9000"],
     "fpgallm estimate: error: --context 9000: must be in [1, 8192] (max_seq_len of smollm2-135m)"),
    (["--clock-mhz", "0"], "fpgallm estimate: error: argument --clock-mhz: must be in [1, 1000], got 0 (see: fpgallm estimate --help)"),
    (["--clock-mhz", "nan"], "fpgallm estimate: error: argument --clock-mhz: must be a finite number, got nan (see: fpgallm estimate --help)"),
    (["--clock-mhz", "1e9"], "fpgallm estimate: error: argument --clock-mhz: must be in [1, 1000], got 1e+09 (see: fpgallm estimate --help)"),
    (["--clock-mhz", "fast"], "fpgallm estimate: error: argument --clock-mhz: must be a number, got 'fast' (see: fpgallm estimate --help)"),
    (["--activity", "0"], "fpgallm estimate: error: argument --activity: must be in (0, 1], got 0 (see: fpgallm estimate --help)"),
    (["--weights", ""], "fpgallm estimate: error: argument --weights: must not be empty (see: fpgallm estimate --help)"),
    (["--batch", "two"], "fpgallm estimate: error: argument --batch: must be an integer, got 'two' (see: fpgallm estimate --help)"),
    (["--weights", "q3_k"], "fpgallm estimate: error: unknown --weights 'q3_k'; choose one of q8_0, q4_0, q4_1, "
                            "int8, int4-g64, int4-g128, int4-g64-min, int4-g128-min"),
    (["--ports", "2", "--port-width", "1024"],
     "fpgallm estimate: error: the engine's ports (2 x 1024 bits at 250 MHz = 64.0 GB/s) exceed the DDR4 "
     "peak of kv260 (19.2 GB/s); lower --ports, --port-width or --clock-mhz"),
    (["--lanes", "0"], "fpgallm estimate: error: argument --lanes: must be >= 1, got 0 (see: fpgallm estimate --help)"),
    (["--lanes", "2000"], "fpgallm estimate: error: EngineParams.gemv_lanes must be an integer in [1, 1024], got 2000"),
    (["--prefetch-words", "100"],
     "fpgallm estimate: error: EngineParams.prefetch_words must be 0 or a power of two, got 100"),
])
def test_bad_input(capsys, args, msg):
    assert _err(capsys, ["smollm2-135m", "--board", "kv260", *args]) == msg


def test_compare_lists_same_board_points(capsys):
    assert main(["estimate", "llama2-7b", "--board", "u280", "--compare"]) == 0
    out = capsys.readouterr().out
    assert "published decode results" in out and "arXiv:2410.04466" in out
    assert "same board (u280" in out and "FlightLLM, U280" in out and "TerEffic, U280" in out
    assert "best of each platform class" in out
    # a small model: same-board points only, with the caveat
    assert main(["estimate", "smollm2-135m", "--board", "u280", "--compare"]) == 0
    out = capsys.readouterr().out
    assert "FlightLLM, U280" in out and "only same-board points are listed" in out


def test_compare_json(capsys):
    assert main(["estimate", "llama2-7b", "--board", "vcu128", "--compare", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    works = [p["work"] for p in d["compare"]["same_board"]]
    assert works == ["EdgeLLM, VCU128"]
    assert d["compare"]["same_size"] is True


def test_report(tmp_path, capsys):
    out_dir = tmp_path / "rep"
    assert main(["estimate", "llama2-7b", "--board", "u280", "--report", str(out_dir), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["report"] == str(out_dir / "index.html")
    for f in ("index.html", "roofline.png", "resources.png", "tokens_per_j.png", "estimate.json"):
        p = out_dir / f
        assert p.is_file() and p.stat().st_size > 0, f
    for f in ("roofline.png", "resources.png", "tokens_per_j.png"):
        assert (out_dir / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out_dir / "index.html").read_text()
    for img in ("roofline.png", "resources.png", "tokens_per_j.png"):
        assert f'<img src="{img}"' in page
    # the page carries the estimate's numbers
    assert f"{d['tokens_per_s']:.4g}" in page
    assert f"{d['power']['total_w']:.3g} W" in page
    assert f"{d['tokens_per_j']:.4g}" in page
    assert f"{d['cycles']['decode_per_run']:,d}" in page
    assert "FlightLLM, U280" in page and "arXiv:2410.04466" in page
    assert json.loads((out_dir / "estimate.json").read_text())["tokens_per_s"] == d["tokens_per_s"]


def test_model_file_keeps_its_quantization(capsys):
    from fpgallm.model.load import package_file
    from fpgallm.model.spec import PRESETS

    f = package_file(PRESETS["smollm2-135m"])
    assert main(["estimate", str(f), "--board", "kv260", "--context", "128", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["weights"] == "Q4_1 (token_embd.weight Q8_0)"
    # the preset with all-Q4_1 weights differs only in the LM head (tied embedding) bytes
    assert main(["estimate", "smollm2-135m", "--board", "kv260", "--context", "128", "--json"]) == 0
    q = json.loads(capsys.readouterr().out)
    assert q["weights"] == "Q4_1" and q["bytes"]["weights"] < d["bytes"]["weights"]


def test_ulx3s_estimate_says_how_the_project_drives_the_sdram(capsys):
    assert main(["estimate", "tiny-llama", "--board", "ulx3s", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert ("the generated ulx3s project drives the SDRAM from the engine clock (18.75 MHz by default: "
            "0.0375 GB/s); this estimate assumes a controller at the memory's 166 MT/s") in d["notes"]
    assert d["clock_mhz"] == 18.75            # the board's engine_mhz, the project's clock
    assert d["engine"]["max_head_dim"] == 32
    assert all(u <= 1 for u in d["resources"]["utilization"].values()), d["resources"]


def test_a_narrow_word_with_open_lanes_gets_lanes_the_rtl_builds():
    """--ports/--port-width narrow the U280's word to 512 bits; the planned 32 GEMV lanes'
    group scales (34 bits each for Q4_1-style weights) no longer fit one word, so the lanes
    the user left open halve to 8 (16 MACs each) and a note says why."""
    r = fpgallm("estimate", "tiny-llama", "--board", "u280", "--ports", "2", "--port-width", "256", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert (d["engine"]["gemv_lanes"], d["engine"]["gemv_macs"]) == (8, 16)
    assert any(n.startswith("GEMV lanes 32 -> 8 x 16 MACs: the RTL cannot build 32 on a 512-bit word")
               for n in d["notes"]), d["notes"]


def test_lanes_the_rtl_cannot_build_are_one_line(capsys):
    assert _err(capsys, ["tiny-llama", "--board", "u280", "--ports", "2", "--port-width", "256",
                         "--lanes", "32"]) == (
        "fpgallm estimate: error: the engine RTL cannot build these knobs: EngineParams: gemv_lanes 32 x 34 "
        "scale bits of int4-group-min = 1088 must fit one stripe word (mem_ports * port_width = 512); "
        "choose the GEMV lanes, the ports and the port width together")
