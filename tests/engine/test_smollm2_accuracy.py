"""SmolLM2-135M through compiler + golden engine against the float reference (issue 6,
point 5 and 7): 3 prompts x 64 teacher-forced tokens per format, per-layer hidden-state
cosine >= 0.99, top-1 agreement >= 95%, and under 10 s per decode token."""

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
    assert r["seconds_per_token"] < 10, r
