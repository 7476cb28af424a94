from pathlib import Path

import numpy as np
import pytest

from fpgallm.model.hf_dir import load_hf, save_hf
from fpgallm.model.load import load_preset
from fpgallm.model.model import quantize_model
from fpgallm.model.quant import INT8_PER_CHANNEL
from fpgallm.model.reference import Reference

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gpt2"])
def test_logits_match_transformers(name, tmp_path):
    """Fixture: transformers' logits for the preset written as an HF directory (see
    benchmarks/make_reference_fixtures.py); here the same directory goes through load_hf."""
    z = np.load(FIXTURES / "reference_tiny.npz")
    ids, want = z[f"{name}/ids"], z[f"{name}/logits"]
    model = load_hf(save_hf(load_preset(name), tmp_path / name))
    got = Reference(model).logits(ids)
    rel = np.abs(got - want).max() / np.abs(want).max()
    print(f"{name}: max |diff| / max |logit| = {rel:.2e}")
    assert rel < 1e-4
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert np.array_equal(got.argmax(axis=1), want.argmax(axis=1))


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gpt2"])
def test_prefill_plus_decode_equals_full_recomputation(name, seed):
    m = load_preset(name)
    r = Reference(m)
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, m.spec.vocab_size, size=40)
    full = r.logits(ids)
    cache = r.new_cache(64)
    parts = [r.prefill(ids[:17], cache)] + [r.decode(int(t), cache)[None] for t in ids[17:30]] + \
        [r.forward(ids[30:], cache)]
    inc = np.concatenate(parts)
    assert cache.length == 40
    np.testing.assert_allclose(inc, full, rtol=0, atol=1e-5 * np.abs(full).max())
    # generation = argmax of the full recomputation at each step
    g = r.generate(ids[:10], 8, stop_at_eos=False)
    seq = list(ids[:10]) + g.ids
    again = r.logits(seq)
    assert [int(again[9 + k].argmax()) for k in range(8)] == g.ids


def test_trace_gives_every_layer():
    m = load_preset("tiny-llama")
    r = Reference(m)
    tr = {}
    ids = [256, 1, 2, 3, 4]
    logits = r.forward(ids, r.new_cache(8), trace=tr)
    assert np.array_equal(tr["logits"], logits)
    for i in range(m.spec.n_layers):
        for k, w in (("attn_in", 128), ("q", 128), ("k", 64), ("v", 64), ("attn", 128), ("ffn_hidden", 256),
                     ("out", 128)):
            assert tr[f"blk.{i}.{k}"].shape == (5, w)
    # the residual stream adds up
    x1 = tr["blk.0.out"]
    np.testing.assert_allclose(x1, tr["embd"] + tr["blk.0.attn_out"] + tr["blk.0.ffn_out"], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gpt2"])
def test_fake_quant_mode_is_close_but_not_equal(name):
    m = load_preset(name)
    ids = list(range(250, 258)) + list(b"the quick brown fox")
    ref = Reference(m).logits(ids)
    w8a8 = Reference(quantize_model(m, INT8_PER_CHANNEL), act_quant=True).logits(ids)
    cos = np.sum(ref * w8a8, axis=1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(w8a8, axis=1)
    print(f"{name}: W8A8 min cosine {cos.min():.5f}")
    assert not np.array_equal(ref, w8a8) and cos.min() > 0.999


def test_bad_inputs():
    r = Reference(load_preset("tiny-llama"))
    with pytest.raises(ValueError, match=r"token id out of range \[0, 258\)"):
        r.logits([300])
    c = r.new_cache(4)
    with pytest.raises(ValueError, match="5 positions exceed the cache capacity 4"):
        r.forward([1, 2, 3, 4, 5], c)
    with pytest.raises(ValueError, match="exceeds max_seq_len=128"):
        r.new_cache(129)
