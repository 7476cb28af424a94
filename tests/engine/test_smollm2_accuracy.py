"""SmolLM2-135M through compiler + golden engine against the float reference (issue 6,
point 5 and 7): 3 prompts x 64 teacher-forced tokens per format, per-layer hidden-state
cosine >= 0.99, top-1 agreement >= 95% (the seconds per decode token are the benchmark's to
report, not a test's).

Measured (benchmarks/engine_accuracy.py, 2026-11-26, INT8 KV cache):

========  ======  ==================  ===================  =============  ==========
format    top-1   greedy prefixes     min hidden cosine    min logits cos  s/token
========  ======  ==================  ===================  =============  ==========
Q4_1      0.953   19, 6, 5            0.9904               0.9675          1.36
W8A8      0.979   26, 21, 3           0.9912               0.9719          0.88
========  ======  ==================  ===================  =============  ==========

(Q4_1: the file's own weights, the reference is the float model of the same weights, so
the error is the activation / KV / fixed-point arithmetic alone; W8A8: every matrix
re-quantized to Q8_0.  Q4_1 passes the 95% bar with 61/64 per prompt: little margin.
With an INT16 KV cache, Q4_1 reaches 0.969 and 0.984 on the fibonacci and robot prompts
(prefixes 12 and 6): the INT8 KV cache costs 2-3 points of top-1.)
"""

import pytest

from fpgallm.engine.accuracy import PROMPTS, measure
from fpgallm.model.load import load_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2():
    return load_model("smollm2-135m")


@pytest.mark.parametrize("fmt", ["q4_1", "w8a8"])
def test_smollm2_accuracy(smollm2, fmt):
    r = measure(smollm2, fmt, 64, PROMPTS, log=lambda *a: None)
    assert r["layer_cos_min"] >= 0.99, r
    assert r["top1"] >= 0.95, r
