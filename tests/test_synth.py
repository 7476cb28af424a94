import json

from fpgallm.synth import SynthTarget, compare_with_baseline, synthesize
from fpgallm.units.elementwise import ElementwiseOp, ElementwiseParams, generate


def test_elementwise_maps_multipliers_to_dsps(tmp_path, monkeypatch):
    monkeypatch.setenv("FPGALLM_CACHE", str(tmp_path))
    design = generate(ElementwiseParams(op=ElementwiseOp.ADD, lanes=2))
    ecp5 = synthesize(design, SynthTarget.ECP5)
    xil = synthesize(design, SynthTarget.XILINX_US_PLUS)
    # ADD: two multipliers (a*mult_a, b*mult_b) per lane, each fits one DSP
    assert ecp5.group("DSP") == 4, ecp5.cells
    assert xil.group("DSP") == 4, xil.cells
    assert ecp5.group("LUT") > 0 and xil.group("FF") > 0
    # cached: a second call reads the cache file
    assert synthesize(design, SynthTarget.ECP5).cells == ecp5.cells


def test_baseline_growth_is_reported(tmp_path):
    from fpgallm.synth import SynthResult

    base = tmp_path / "b.json"
    base.write_text(json.dumps({"u": {"ecp5": {"LUT": 100, "FF": 50}}}))
    grown = SynthResult(SynthTarget.ECP5, "t", {"LUT4": 111, "TRELLIS_FF": 50})
    assert compare_with_baseline(grown, base, "u") == [
        "u/ecp5: LUT grew from 100 to 111 (> 10%); update the baseline if intended"]
    same = SynthResult(SynthTarget.ECP5, "t", {"LUT4": 109, "TRELLIS_FF": 40})
    assert compare_with_baseline(same, base, "u") == []
