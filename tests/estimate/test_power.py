"""Power model: each term by hand from the documented coefficients; every coefficient sourced."""

import pytest

from fpgallm.boards import all_boards, get_board
from fpgallm.estimate import power as W
from fpgallm.estimate.estimator import estimate
from fpgallm.estimate.perf import weight_scheme
from fpgallm.model.spec import PRESETS


def test_terms_by_hand():
    b = get_board("u280")                 # UltraScale+: VCCINT 0.85 V, 72-bit RAMB36 ports
    mem = b.memory[0]                     # HBM2
    used = {"lut": 100_000, "ff": 200_000, "dsp": 1000, "bram": 100, "uram": 10}
    f, a = 300.0, 0.125
    pw = W.estimate_power(b, used, f, tokens_per_s=20.0, bytes_per_token=4e9, mem=mem,
                          dsp_busy=0.5, alpha=a)
    v2 = 0.85 ** 2
    sr = f * a
    assert pw.lut_w == pytest.approx(v2 * 100_000 * sr * (3.0e-7 + 2.0e-8))
    assert pw.ff_w == pytest.approx(v2 * 200_000 * (sr * (3.5e-7 + 4.0e-8) + f * 2.91375291375291e-9))
    assert pw.dsp_w == pytest.approx(v2 * 1000 * sr * 0.5 * 16 * (1.5e-6 + 1.0e-7) + 1000 * f * 7.0e-8)
    per_bit = sr * (0.5 * (2.5e-6 + 3.5e-7) + 0.5 * 2.0e-6)
    assert pw.bram_w == pytest.approx(100 * 72 * per_bit)
    assert pw.uram_w == pytest.approx(10 * 72 * per_bit)
    assert pw.memory_w == pytest.approx(4e9 * 8 * 20.0 * 3.97e-12)
    assert pw.static_w == b.power.device_static_w == 12.0
    assert pw.total_w == pytest.approx(pw.static_w + pw.dynamic_w + pw.memory_w)
    assert pw.board_w == pytest.approx(pw.total_w + 30.0 - 12.0)
    assert pw.tokens_per_j == pytest.approx(20.0 / pw.total_w)
    assert pw.tokens_per_j_board == pytest.approx(20.0 / pw.board_w)


def test_more_activity_more_power():
    b = get_board("kv260")
    used = {"lut": 50_000, "ff": 80_000, "dsp": 500, "bram": 50, "uram": 20}
    lo = W.estimate_power(b, used, 250.0, 10.0, 1e8, b.memory[0], alpha=0.1)
    hi = W.estimate_power(b, used, 250.0, 10.0, 1e8, b.memory[0], alpha=0.3)
    assert hi.dynamic_w > lo.dynamic_w and hi.static_w == lo.static_w and hi.memory_w == lo.memory_w
    with pytest.raises(ValueError, match="alpha must be in"):
        W.estimate_power(b, used, 250.0, 10.0, 1e8, b.memory[0], alpha=0)


def test_every_board_has_sourced_coefficients():
    """Every memory type and family of the board files has its own entry (no fallback), and
    every entry names its source or says it is our assumption."""
    for name, b in all_boards().items():
        for m in b.memory:
            assert m.type in W.DRAM_PJ_PER_BIT, (name, m.type)
        v, src = W.vccint(b)
        assert "OUR ASSUMPTION" not in src, (name, b.family)
    for t, (pj, src) in W.DRAM_PJ_PER_BIT.items():
        assert pj > 0 and len(src) > 20, t
    assert W.DRAM_PJ_PER_BIT["HBM2"][0] < W.DRAM_PJ_PER_BIT["LPDDR4"][0] < W.DRAM_PJ_PER_BIT["DDR4"][0] \
        < W.DRAM_PJ_PER_BIT["DDR3"][0]


def test_estimate_power_is_consistent_with_perf():
    e = estimate(PRESETS["smollm2-135m"].spec, "zcu104", weight_scheme("q4_1"), 1, 256)
    pw, pe = e.power, e.perf
    assert pw.tokens_per_s == pe.tokens_per_s
    pj = W.DRAM_PJ_PER_BIT["DDR4"][0]
    assert pw.memory_w == pytest.approx(pe.bytes_per_token * 8 * pe.tokens_per_s * pj * 1e-12)
    d = e.as_dict()
    assert d["tokens_per_j"] == pytest.approx(d["tokens_per_s"] / d["power"]["total_w"], rel=1e-3)
    assert set(d["power"]["sources"]) >= {"static_w", "fabric", "vccint", "toggle_rate", "memory_pj_per_bit"}
