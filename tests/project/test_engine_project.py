"""Projects that carry the decode engine (issue 8): the engine RTL sized for the model and
fitted to the board, a shell-facing top exposing its AXI4 masters and AXI4-Lite registers,
the memory image per port, the memory map, and `fpgallm test --project` re-verifying the
project's own (possibly hand-edited) RTL against the golden engine."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fpgallm as fpgallm_pkg
from fpgallm.boards import get_board
from fpgallm.cli import main
from fpgallm.engine.golden import GoldenEngine
from fpgallm.engine.image import image_bytes, join_ports
from fpgallm.errors import UserError
from fpgallm.hdl.emit import Emitted
from fpgallm.model.load import load_model
from fpgallm.project import build
from fpgallm.project.design import ports_of
from fpgallm.project.verify import engine_params_of, verify_board_top, verify_project
from fpgallm.sim.runner import lint

SMALL_ENGINE = {"ports": 2, "port_width": 128, "gemv_lanes": 2, "vector_lanes": 2, "context": 32}
ENGINE_BOARDS = ("kv260", "u280", "s10mx")


def fpgallm(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "fpgallm", *args], capture_output=True, text=True, cwd=cwd)


def _ansi_ports(verilog: str) -> dict[str, tuple[str, int]]:
    """Ports of the (ANSI-style) board top: name -> (direction, width)."""
    head = verilog[verilog.index("module fpgallm_top ("):]
    head = head[: head.index(");")]
    return {m[4]: ("in" if m[1] == "input" else "out", int(m[3]) + 1 if m[3] else 1)
            for m in re.finditer(r"(input|output)\s+wire\s+(\[(\d+):0\]\s+)?(\w+)", head)}


@pytest.fixture(scope="module")
def engine_plans():
    return {name: build.make_plan("tiny-llama", get_board(name), knobs=SMALL_ENGINE) for name in ENGINE_BOARDS}


@pytest.fixture(scope="module")
def kv260_project(tmp_path_factory):
    return build.generate("tiny-llama", get_board("kv260"), tmp_path_factory.mktemp("eng") / "p",
                          knobs=SMALL_ENGINE).out


def test_manifest_of_an_older_engine_with_a_systolic_key(engine_plans):
    """Manifests written before the engine dropped ``EngineParams.systolic`` (always None
    there) still load; one that asks for an array is refused with one clear line."""
    m = json.loads(engine_plans["kv260"][0].files["manifest.json"])
    m["design"]["params"]["systolic"] = None
    assert engine_params_of(m).gemv_lanes == 2
    m["design"]["params"]["systolic"] = {"rows": 8, "cols": 8}
    with pytest.raises(UserError) as exc:
        engine_params_of(m)
    assert str(exc.value) == "the project's engine has a systolic array, which the engine RTL does not build"


@pytest.mark.parametrize("name", ENGINE_BOARDS)
def test_engine_project_files(engine_plans, name):
    plan, design, fit, _ = engine_plans[name]
    board, files = get_board(name), plan.files
    m = json.loads(files["manifest.json"])
    assert not design.stand_in and m["design"]["stand_in"] is False
    assert m["design"]["top"] == "fpgallm_engine" and m["board"]["part"] == board.part
    p = m["design"]["params"]
    assert (p["mem_ports"], p["port_width"], p["gemv_lanes"], p["vector_lanes"], p["max_context"]) == \
        (2, 128, 2, 2, 32)
    assert m["engine"]["model"] == "tiny-llama" and m["engine"]["context"] == 32
    # every file hashed, bytes and text alike; every named source exists
    assert set(m["files"]) == set(files) - {"manifest.json"}
    for path, digest in m["files"].items():
        data = files[path] if isinstance(files[path], bytes) else files[path].encode()
        assert hashlib.sha256(data).hexdigest() == digest, path
    for src in m["sources"] + [m["constraints"]]:
        assert src in files
    # the memory image: the port files joined are exactly the compiled image
    g = GoldenEngine(load_model("tiny-llama"), engine_params_of(m), context=32)
    parts = [files[f"sw/mem{j}.bin"] for j in range(p["mem_ports"])]
    assert join_ports(parts, g.compiled.params) == image_bytes(g.compiled)
    mm = json.loads(files["sw/memory_map.json"])
    assert mm["program"] == g.compiled.symbols["program"] == m["engine"]["program"]
    assert {r["name"] for r in mm["regions"]} >= {"token_embd.weight", "output.weight"}
    assert [r["offset"] for r in mm["registers"]][:3] == ["0x00", "0x04", "0x08"]
    # the top: every engine port reaches the shell under its AXI name; the clock is constrained
    top = _ansi_ports(files["rtl/fpgallm_top.v"])
    names = set(top)
    engine_ports = ports_of(files["rtl/fpgallm_engine.v"], "fpgallm_engine")
    assert sum(q.name.startswith("axil__") for q in engine_ports) == \
        sum(n.startswith("s_axi_control_") for n in names) > 10
    for j in range(2):
        assert sum(q.name.startswith(f"axi{j}__") for q in engine_ports) == \
            sum(n.startswith(f"m_axi_gmem{j}_") for n in names) == 29
    assert top["m_axi_gmem1_rdata"] == ("in", 128) and top["m_axi_gmem1_araddr"][0] == "out"
    assert {"ap_clk", "ap_rst_n", "interrupt"} <= names
    if board.vendor == "amd":
        tcl = files["vivado/build.tcl"]
        assert re.findall(r"read_verilog \$root/(\S+)", tcl) == ["rtl/fpgallm_engine.v", "rtl/fpgallm_top.v"]
        assert f"create_clock -period {1000 / board.clocks.fabric_mhz:.3f} -name ap_clk" in files[m["constraints"]]
    else:
        qsf = files["quartus/fpgallm.qsf"]
        assert re.findall(r"VERILOG_FILE \.\./(\S+)", qsf) == ["rtl/fpgallm_engine.v", "rtl/fpgallm_top.v"]
    readme = files["README.md"]
    assert "**The decode engine for tiny-llama**" in readme and "fpgallm test --project ." in readme
    assert "| `m_axi_gmem1` | AXI4 master | 128-bit data; memory image `sw/mem1.bin` at its address 0 |" in readme
    assert fit["lut"]["need"] == design.need["lut"] <= board.available["lut"]


def test_engine_project_top_is_lint_clean(engine_plans):
    files = engine_plans["kv260"][0].files
    top = Emitted(top="fpgallm_top", text=files["rtl/fpgallm_top.v"], ports=())
    assert lint(top, extra_sources=(("fpgallm_engine.v", files["rtl/fpgallm_engine.v"]),)) == []


def test_ulx3s_engine_top_is_lint_clean():
    """The open-source board top: the engine, the SDRAM controller and the UART host bridge
    wired by name (a wrong name or width is a lint error), with the ECP5 ODDRX1F model."""
    plan, design, _fit, _ = build.make_plan("tiny-llama", get_board("ulx3s"))
    files = plan.files
    assert not design.stand_in and design.params["max_head_dim"] == 32
    top = Emitted(top="fpgallm_board_top", text=files["rtl/fpgallm_board_top.v"], ports=())
    extra = tuple((n, files[f"rtl/{n}"]) for n in ("fpgallm_engine.v", "fpgallm_sdram.v",
                                                   "fpgallm_host_bridge.v"))
    models = tuple((n, (Path(fpgallm_pkg.__file__).parent / "hdl/sim_models" / n).read_text())
                   for n in ("ODDRX1F.v", "EHXPLLL.v"))
    assert lint(top, extra_sources=extra + models) == []
    # the engine port is the SDRAM controller's port 0, the bridge's memory master its port 1
    text = files["rtl/fpgallm_board_top.v"]
    for a, b in (("axi0__arvalid(em_arvalid)", "s0__arvalid(em_arvalid)"),
                 ("mem__arvalid(hm_arvalid)", "s1__arvalid(hm_arvalid)"),
                 ("axil__awaddr(cs_awaddr)", "csr__awaddr(cs_awaddr)")):
        assert f".{a}" in text and f".{b}" in text, (a, b)


def test_ulx3s_engine_clock_from_the_pll():
    """--clock-mhz other than the 25 MHz board clock: an EHXPLLL (dividers computed here),
    the SDRAM timings and the UART divider at the new clock; lint clean."""
    from fpgallm.project.plan import ecp5_pll

    assert ecp5_pll(25.0, 20.0) == {"clki_div": 5, "clkfb_div": 4, "clkop_div": 30, "clkop_cphase": 15,
                                    "out_mhz": 20.0, "vco_mhz": 600.0}
    with pytest.raises(UserError) as e:
        ecp5_pll(25.0, 1.0)
    assert str(e.value) == "--clock-mhz 1: the ECP5 PLL cannot make it from the 25 MHz board clock"
    plan, design, _fit, _ = build.make_plan("tiny-llama", get_board("ulx3s"), clock_mhz=20.0)
    text = plan.files["rtl/fpgallm_board_top.v"]
    assert ".CLKI_DIV(5)" in text and ".CLKFB_DIV(4)" in text and ".CLKOP_DIV(30)" in text
    assert "1,000,000 baud" in plan.files["README.md"] and "at 20 MHz: an EHXPLLL" in plan.files["README.md"]
    assert "tRCD/tRP/tRAS/tRFC = 1/1/1/2 cycles, a refresh every 156 cycles" in plan.files["README.md"]
    top = Emitted(top="fpgallm_board_top", text=text, ports=())
    extra = tuple((n, plan.files[f"rtl/{n}"]) for n in ("fpgallm_engine.v", "fpgallm_sdram.v",
                                                        "fpgallm_host_bridge.v"))
    models = tuple((n, (Path(fpgallm_pkg.__file__).parent / "hdl/sim_models" / n).read_text())
                   for n in ("ODDRX1F.v", "EHXPLLL.v"))
    assert lint(top, extra_sources=extra + models) == []


def test_ulx3s_engine_needs_one_narrow_port():
    import dataclasses

    from fpgallm.project.plan import board_ip

    _plan, design, _fit, _ = build.make_plan("tiny-llama", get_board("ulx3s"))
    for ports, width in ((2, 64), (1, 256)):
        wide = dataclasses.replace(design, params={**design.params, "mem_ports": ports, "port_width": width})
        with pytest.raises(UserError) as e:
            board_ip(get_board("ulx3s"), wide, 25.0)
        assert str(e.value) == (f"ulx3s: the SDRAM controller serves one engine port of 16..128 bits, the "
                                f"engine has {ports} x {width} bits (use --ports 1 --port-width 64)")


def test_generate_prints_the_engine_and_how_to_verify(tmp_path):
    out = tmp_path / "p"
    r = fpgallm("generate", "tiny-llama", "--board", "kv260", "--out", str(out),
                *[f"--{k.replace('_', '-')}={v}" for k, v in SMALL_ENGINE.items()])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == (f"engine for tiny-llama: context 32, batch 1, memory image "
                                         f"{json.loads((out / 'manifest.json').read_text())['engine']['image_bytes'] / 2**20:.2f}"
                                         f" MiB in 2 port files; verify with: fpgallm test --project {out}")


def test_design_engine_on_a_board_too_small_fails_naming_the_resource(tmp_path):
    r = fpgallm("generate", "--board", "pynq-z2", "--design", "engine", "--vector-lanes", "64",
                "--out", str(tmp_path / "p"))
    assert r.returncode == 2
    assert re.fullmatch(r"fpgallm generate: error: pynq-z2 is too small for the decode engine: LUT needs \d+, "
                        r"the board has 53200 \(LUT6\) at the smallest engine with vector_lanes=64 as given\n",
                        r.stderr), r.stderr
    assert not (tmp_path / "p").exists()


def test_project_test_refuses_bring_up_projects_and_stale_images(tmp_path, kv260_project):
    bring_up = build.generate("tiny-llama", get_board("icebreaker"), tmp_path / "b").out
    with pytest.raises(UserError) as e:
        verify_project(bring_up)
    assert str(e.value).startswith(f"--project {bring_up}: the project wraps the elementwise bring-up design, "
                                   "not the decode engine (icebreaker has no writable off-chip memory ")
    assert str(e.value).endswith("; its unit is verified by: fpgallm test elementwise")
    # an image that is not what fpgallm compiles for the model is reported, not simulated
    import shutil
    stale = tmp_path / "stale"
    shutil.copytree(kv260_project, stale)
    img = bytearray((stale / "sw/mem1.bin").read_bytes())
    img[100] ^= 0x01
    (stale / "sw/mem1.bin").write_bytes(bytes(img))
    with pytest.raises(UserError) as e:
        verify_project(stale)
    assert str(e.value).startswith(f"--project {stale}: sw/mem1.bin is not the image fpgallm compiles for "
                                   "tiny-llama on this engine (first difference at byte 100; sha256 ")


def _corrupt_writes_wrapper(verilog: str) -> str:
    """A hand edit: the engine renamed, and a wrapper flips bit 0 of every word it writes on
    port 0 (logits and KV cache land wrong; the program and the weights are read intact)."""
    ports = ports_of(verilog, "fpgallm_engine")
    text = re.sub(r"^module fpgallm_engine\(", "module fpgallm_engine_core(", verilog, count=1, flags=re.M)
    decl, conn = [], []
    for q in ports:
        w = f"[{q.width - 1}:0] " if q.width > 1 else ""
        decl.append(f"  {'input' if q.direction == 'in' else 'output'} wire {w}{q.name};")
        conn.append(f"    .{q.name}({'core_wdata' if q.name == 'axi0__wdata' else q.name})")
    width = next(q.width for q in ports if q.name == "axi0__wdata")
    return (text + "\nmodule fpgallm_engine(" + ", ".join(q.name for q in ports) + ");\n"
            + "\n".join(decl) + f"\n  wire [{width - 1}:0] core_wdata;\n"
            + "  assign axi0__wdata = core_wdata ^ 1;\n"
            + "  fpgallm_engine_core u (\n" + ",\n".join(conn) + "\n  );\nendmodule\n")


@pytest.mark.slow
def test_default_ulx3s_engine_project_is_verified(tmp_path, seed):
    """The README's main job: the ULX3S engine project's own RTL (head buffers of 32 lanes,
    one 64-bit port) against the golden engine."""
    out = build.generate("tiny-llama", get_board("ulx3s"), tmp_path / "u").out
    check = verify_project(out, new_tokens=2, seed=seed)
    prompt = load_model("tiny-llama").tokenizer.encode("The cat")
    assert check.passed and check.runs == len(prompt) + 2 - 1


@pytest.mark.slow
def test_default_ulx3s_board_design_runs_over_its_serial_line(tmp_path, seed, capsys):
    """The whole ULX3S design (board top, engine, SDRAM controller, UART host bridge) with an
    SDRAM model: registers and logits through the serial line equal the golden engine."""
    out = build.generate("tiny-llama", get_board("ulx3s"), tmp_path / "u").out
    assert main(["test", "--project", str(out), "--board-top", "--tokens", "1", "--seed", str(seed)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(rf"PASS {re.escape(str(out))}: 8 program runs of tiny-llama on the board design "
                        r"\(over its serial line\) equal the golden engine \(logits and next tokens\), "
                        r"\d+\.\.\d+ cycles per run \(.*\)", last), last


def test_board_top_check_needs_an_open_source_board_top(kv260_project, capsys):
    with pytest.raises(UserError) as e:
        verify_board_top(kv260_project)
    assert str(e.value) == (f"--project {kv260_project}: no open-source board top with the SDRAM "
                            "controller (rtl/fpgallm_board_top.v, rtl/fpgallm_sdram.v)")
    assert main(["test", "--board-top"]) == 2
    assert capsys.readouterr().err == "fpgallm test: error: --board-top needs --project DIR\n"


@pytest.mark.slow
def test_project_rtl_is_reverified_and_a_hand_edit_is_caught(tmp_path, kv260_project, seed):
    rc = main(["test", "--project", str(kv260_project), "--tokens", "4", "--seed", str(seed)])
    assert rc == 0
    check = verify_project(kv260_project, new_tokens=2, seed=seed)
    prompt = load_model("tiny-llama").tokenizer.encode("The cat")
    assert check.passed and check.runs == len(prompt) + 2 - 1     # one run per prompt token, then per new one
    import shutil
    edited = tmp_path / "edited"
    shutil.copytree(kv260_project, edited)
    rtl = edited / "rtl/fpgallm_engine.v"
    rtl.write_text(_corrupt_writes_wrapper(rtl.read_text()))
    bad = verify_project(edited, new_tokens=2, seed=seed)
    assert not bad.passed and bad.runs == 0
    assert re.fullmatch(r"run 0 \(tokens \[\d+\], positions \[0\]\): logits\[0, \d+\] RTL -?\d+, golden -?\d+",
                        bad.mismatch), bad.mismatch
    assert main(["test", "--project", str(edited), "--tokens", "2", "--seed", str(seed)]) == 1


def test_every_preset_is_a_model_and_shape_only_presets_need_weights(tmp_path):
    from fpgallm.model.spec import PRESETS
    from fpgallm.project.model_ref import preset_names

    assert preset_names() == tuple(PRESETS) and "tiny-gpt2" in preset_names()
    r = fpgallm("generate", "llama2-7b", "--board", "u280", "--out", str(tmp_path / "p"))
    assert r.returncode == 2
    assert r.stderr == ("fpgallm generate: error: preset 'llama2-7b' has shapes only (for the estimator); "
                        "pass its weights as a .gguf file, a Hugging Face directory or an .npz\n")
    assert not (tmp_path / "p").exists()


def test_knobs_of_the_other_design_are_refused(tmp_path):
    r = fpgallm("generate", "--board", "kv260", "--design", "elementwise", "--ports", "2",
                "--out", str(tmp_path / "p"))
    assert r.returncode == 2
    assert r.stderr == ("fpgallm generate: error: --ports: a knob of the decode engine; the bring-up design "
                        "(--design elementwise) takes --lanes and --op\n")
    r = fpgallm("generate", "--board", "kv260", "--lanes", "2", "--out", str(tmp_path / "p"),
                *[f"--{k.replace('_', '-')}={v}" for k, v in SMALL_ENGINE.items()])
    assert r.returncode == 2
    assert r.stderr == ("fpgallm generate: error: --lanes: a knob of the bring-up design, and kv260 holds the "
                        "decode engine; use --design elementwise for the bring-up design\n")
    assert not (tmp_path / "p").exists()
